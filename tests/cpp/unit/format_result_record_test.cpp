#include <gtest/gtest.h>

#include <string>

#include "kafka_llm/format/result_record.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

ResultRecord done_record() {
  ResultRecord record;
  record.status = ResultStatus::kDone;
  record.request_id = "req-1";
  record.provider = "openai";
  record.model = "gpt-4o-mini";
  record.output = "Hello!";
  record.body = json::parse(R"({"id":"c1","choices":[{"message":{"role":"assistant","content":"Hello!"}}]})");
  record.status_code = 200;
  record.usage = TokenUsage{5, 2, 7};
  record.attempts = 2;
  record.latency_ms = 812.5;
  record.created_ms = 1700000000000;
  record.updated_ms = 1700000000900;
  return record;
}

ResultRecord expect_record(FormatResult<ResultRecord> result) {
  if (auto* error = std::get_if<FormatError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return {};
  }
  return std::get<ResultRecord>(std::move(result));
}

std::string expect_error(FormatResult<ResultRecord> result) {
  if (std::holds_alternative<ResultRecord>(result)) {
    ADD_FAILURE() << "expected an error";
    return {};
  }
  return std::get<FormatError>(result).message;
}

TEST(FormatResultRecord, Key) {
  EXPECT_EQ(result_key(kDefaultResultKeyPrefix, "abc"), "kafka-llm:result:abc");
  EXPECT_EQ(result_key("tenant-a", "x:y"), "tenant-a:result:x:y");
  EXPECT_EQ(result_key("", "r"), ":result:r");
}

TEST(FormatResultRecord, StatusNames) {
  EXPECT_EQ(to_string(ResultStatus::kPending), "pending");
  EXPECT_EQ(to_string(ResultStatus::kDone), "done");
  EXPECT_EQ(to_string(ResultStatus::kError), "error");
  EXPECT_EQ(to_string(ResultStatus::kCancelled), "cancelled");
}

TEST(FormatResultRecord, SerializesDoneRecordInDesignOrder) {
  EXPECT_EQ(
      serialize_result(done_record()),
      R"({"status":"done","request_id":"req-1","provider":"openai","model":"gpt-4o-mini","output":"Hello!",)"
      R"("body":{"choices":[{"message":{"content":"Hello!","role":"assistant"}}],"id":"c1"},"error":null,)"
      R"("status_code":200,"usage":{"completion_tokens":2,"prompt_tokens":5,"total_tokens":7},"attempts":2,)"
      R"("latency_ms":812.5,"created_ms":1700000000000,"updated_ms":1700000000900})");
}

TEST(FormatResultRecord, SerializesPendingRecordWithNulls) {
  ResultRecord record;
  record.request_id = "r";
  record.created_ms = 1;
  record.updated_ms = 1;
  EXPECT_EQ(serialize_result(record),
            R"({"status":"pending","request_id":"r","provider":null,"model":null,"output":null,"body":null,)"
            R"("error":null,"status_code":null,"usage":null,"attempts":0,"latency_ms":null,"created_ms":1,)"
            R"("updated_ms":1})");
}

TEST(FormatResultRecord, RoundTrips) {
  ResultRecord pending;
  pending.request_id = "p";
  ResultRecord error;
  error.status = ResultStatus::kError;
  error.request_id = "e";
  error.provider = "groq";
  error.model = "llama";
  error.error = "rate limited: \"slow\" \n down";
  error.status_code = 429;
  error.attempts = 6;
  error.latency_ms = 30000.25;
  error.body = json::parse(R"({"error":{"message":"slow down"}})");
  ResultRecord cancelled;
  cancelled.status = ResultStatus::kCancelled;
  cancelled.request_id = "c";
  cancelled.error = "cancelled: client disconnected";
  cancelled.status_code = 499;
  for (const ResultRecord& record : {done_record(), pending, error, cancelled}) {
    EXPECT_EQ(expect_record(parse_result(serialize_result(record))), record) << serialize_result(record);
  }
}

TEST(FormatResultRecord, PromptVersionIsAppendedOnlyWhenSet) {
  ResultRecord record;
  record.status = ResultStatus::kDone;
  record.request_id = "r";
  EXPECT_EQ(serialize_result(record).find("prompt_version"), std::string::npos);
  record.prompt_version = "v2";
  const std::string text = serialize_result(record);
  EXPECT_TRUE(text.ends_with(R"(,"updated_ms":0,"prompt_version":"v2"})")) << text;
  EXPECT_TRUE(text.starts_with(R"({"status":"done",)"));  // the store-unless-done script relies on it
  EXPECT_EQ(expect_record(parse_result(text)), record);
}

TEST(FormatResultRecord, ToleratesMissingFieldsOfOlderRecords) {
  const ResultRecord record = expect_record(parse_result(R"({"status":"done","output":"hi"})"));
  ResultRecord expected;
  expected.status = ResultStatus::kDone;
  expected.output = "hi";
  EXPECT_EQ(record, expected);
}

TEST(FormatResultRecord, NullsAndUnknownFieldsAreIgnored) {
  const ResultRecord record = expect_record(parse_result(
      R"({"status":"pending","request_id":null,"provider":null,"usage":null,"attempts":null,"future":[1,2]})"));
  ResultRecord expected;
  EXPECT_EQ(record, expected);
}

TEST(FormatResultRecord, UsageTotalDefaultsToSum) {
  const ResultRecord record =
      expect_record(parse_result(R"({"status":"done","usage":{"prompt_tokens":3,"completion_tokens":4}})"));
  EXPECT_EQ(record.usage, (TokenUsage{3, 4, 7}));
}

TEST(FormatResultRecord, ErrorObjectMessageIsTaken) {
  const ResultRecord record =
      expect_record(parse_result(R"({"status":"error","error":{"message":"boom","type":"api_error"}})"));
  EXPECT_EQ(record.error, "boom");
}

TEST(FormatResultRecord, GarbageIsACleanError) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "result record is not valid JSON: empty input"},
      {"not json",
       "result record is not valid JSON: syntax error while parsing value - invalid literal; last read: "
       "'no' at byte 1"},
      {"\xFF", "result record is not valid JSON: invalid UTF-8 at byte 0"},
      {std::string(1000, '['), "result record is not valid JSON: JSON nesting deeper than 64"},
      {"[]", "result record must be a JSON object (got array)"},
      {"{}", "result record has no status"},
      {R"({"status":null})", "result record has no status"},
      {R"({"status":1})", "result field \"status\" must be a string (got number)"},
      {R"({"status":"finished"})",
       "result status \"finished\" is not one of pending, done, error, cancelled"},
      {R"({"status":"done","request_id":5})", "result field \"request_id\" must be a string (got number)"},
      {R"({"status":"done","provider":[]})", "result field \"provider\" must be a string (got array)"},
      {R"({"status":"done","model":{}})", "result field \"model\" must be a string (got object)"},
      {R"({"status":"done","output":1})", "result field \"output\" must be a string (got number)"},
      {R"({"status":"error","error":5})",
       "result field \"error\" must be a string or an object with a string message (got number)"},
      {R"({"status":"error","error":{"msg":"x"}})",
       "result field \"error\" must be a string or an object with a string message (got object)"},
      {R"({"status":"done","status_code":"200"})",
       "result field \"status_code\" must be an integer (got string)"},
      {R"({"status":"done","status_code":200.5})",
       "result field \"status_code\" must be an integer (got number)"},
      {R"({"status":"done","status_code":99999999999})",
       "result field \"status_code\" must be an integer in range (got number)"},
      {R"({"status":"done","usage":"lots"})", "result field \"usage\" must be an object (got string)"},
      {R"({"status":"done","usage":{"prompt_tokens":-1}})",
       "result field \"usage.prompt_tokens\" must be a non-negative integer (got number)"},
      {R"({"status":"done","attempts":"2"})", "result field \"attempts\" must be an integer (got string)"},
      {R"({"status":"done","latency_ms":"fast"})",
       "result field \"latency_ms\" must be a number (got string)"},
      {R"({"status":"done","created_ms":1.5})",
       "result field \"created_ms\" must be an integer (got number)"},
      {R"({"status":"done","updated_ms":true})",
       "result field \"updated_ms\" must be an integer (got boolean)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(parse_result(c.text)), c.message) << c.text;
  }
}

}  // namespace
}  // namespace kafka_llm::format
