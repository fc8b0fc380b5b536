#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "kafka_llm/format/response_envelope.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

TEST(FormatResponseEnvelope, SuccessMatchesDesignShapeAndOrder) {
  ResponseEnvelope response;
  response.metadata = json::parse(R"({"any":"json"})");
  response.status_code = 200;
  response.body = json::parse(R"({"id":"cmpl-1","choices":[{"text":"hi"}]})");
  response.request_id = "3f2a";
  response.provider = "openai";
  response.model = "gpt-4o-mini";
  response.attempts = 1;
  response.latency_ms = 812.4;
  EXPECT_EQ(
      serialize_response(response),
      R"({"metadata":{"any":"json"},"status_code":200,"body":{"choices":[{"text":"hi"}],"id":"cmpl-1"},)"
      R"("request_id":"3f2a","provider":"openai","model":"gpt-4o-mini","attempts":1,"latency_ms":812.4})");
}

TEST(FormatResponseEnvelope, PromptVersionComesLastWhenSet) {
  ResponseEnvelope response;
  response.request_id = "r";
  response.prompt_version = "v2";
  EXPECT_EQ(serialize_response(response),
            R"({"metadata":null,"status_code":200,"body":null,"request_id":"r","provider":null,"model":null,)"
            R"("attempts":0,"latency_ms":0.0,"prompt_version":"v2"})");
}

TEST(FormatResponseEnvelope, PoisonErrorResponseHasNullsForUnknowns) {
  ResponseEnvelope response;
  response.status_code = 400;
  response.body = error_body(400, "body.model is required");
  response.request_id = "k1";
  EXPECT_EQ(serialize_response(response),
            R"({"metadata":null,"status_code":400,"body":{"error":{"code":"invalid_request","message":)"
            R"("body.model is required","type":"invalid_request_error"}},"request_id":"k1","provider":null,)"
            R"("model":null,"attempts":0,"latency_ms":0.0})");
}

TEST(FormatResponseEnvelope, MetadataIsEchoedExactly) {
  const json metadata = json::parse(R"({"z":[1,{"y":null}],"a":"é","n":1.5e300,"big":18446744073709551615})");
  ResponseEnvelope response;
  response.metadata = metadata;
  EXPECT_EQ(json::parse(serialize_response(response))["metadata"], metadata);
}

TEST(FormatResponseEnvelope, StringsAreEscapedAndSanitized) {
  ResponseEnvelope response;
  response.request_id = "quote\"back\\slash\nnew\x01";
  response.model = std::string("bad\xFFutf8");
  const std::string text = serialize_response(response);
  const json parsed = json::parse(text);
  EXPECT_EQ(parsed["request_id"], "quote\"back\\slash\nnew\x01");
  EXPECT_EQ(parsed["model"], "bad\xEF\xBF\xBDutf8");
  EXPECT_NE(text.find(R"("request_id":"quote\"back\\slash\nnew\u0001")"), std::string::npos) << text;
}

TEST(FormatResponseEnvelope, NonFiniteLatencyBecomesNull) {
  ResponseEnvelope response;
  response.latency_ms = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(json::parse(serialize_response(response))["latency_ms"].is_null());
}

TEST(FormatResponseEnvelope, ErrorKindMapping) {
  struct Case {
    int status;
    std::string_view type;
    std::string code;
  };
  const Case cases[] = {
      {400, "invalid_request_error", "invalid_request"},
      {401, "authentication_error", "unauthorized"},
      {403, "permission_error", "forbidden"},
      {404, "not_found_error", "not_found"},
      {408, "timeout_error", "request_timeout"},
      {409, "conflict_error", "conflict"},
      {413, "invalid_request_error", "request_too_large"},
      {422, "invalid_request_error", "unprocessable_entity"},
      {429, "rate_limit_error", "rate_limit_exceeded"},
      {500, "api_error", "internal_error"},
      {502, "api_error", "bad_gateway"},
      {503, "api_error", "service_unavailable"},
      {504, "timeout_error", "gateway_timeout"},
      {529, "overloaded_error", "overloaded"},
      {418, "invalid_request_error", "http_418"},
      {451, "invalid_request_error", "http_451"},
      {501, "api_error", "http_501"},
      {599, "api_error", "http_599"},
      {0, "api_error", "http_0"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(error_kind_for_status(c.status), (ErrorKind{c.type, c.code})) << c.status;
  }
}

TEST(FormatResponseEnvelope, ErrorBodyShape) {
  EXPECT_EQ(
      error_body(429, "slow down"),
      json::parse(
          R"({"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}})"));
  EXPECT_EQ(
      error_object(504, "deadline exceeded"),
      json::parse(R"({"message":"deadline exceeded","type":"timeout_error","code":"gateway_timeout"})"));
  // A message quoting bad provider bytes stays serializable with the default (strict) dump.
  EXPECT_EQ(error_body(502, "got \xC0 byte").dump(), R"({"error":{"code":"bad_gateway","message":"got )"
                                                     "\xEF\xBF\xBD"
                                                     R"( byte","type":"api_error"}})");
}

TEST(FormatResponseEnvelope, HeadersInOrder) {
  const HeaderList headers = response_headers("req-1", "gpt-4o-mini-2024-07-18", "abc123");
  const HeaderList expected = {{"request_message_id", "req-1"},
                               {"model_version", "gpt-4o-mini-2024-07-18"},
                               {"prompt_hash", "abc123"}};
  EXPECT_EQ(headers, expected);
}

TEST(FormatStreamFrames, ChunkFrame) {
  const json chunk = json::parse(R"({"id":"c1","choices":[{"delta":{"content":"Hel"},"index":0}]})");
  EXPECT_EQ(
      serialize_chunk_frame("r1", 0, chunk),
      R"({"request_id":"r1","seq":0,"chunk":{"choices":[{"delta":{"content":"Hel"},"index":0}],"id":"c1"}})");
  EXPECT_EQ(serialize_chunk_frame("r1", 18446744073709551615ULL, json::parse("{}")),
            R"({"request_id":"r1","seq":18446744073709551615,"chunk":{}})");
}

TEST(FormatStreamFrames, RawChunkFrameKeepsProviderBytes) {
  const std::string provider_chunk =
      R"({"id": "c1",  "choices": [{"delta": {"content": "Hel"}}], "z": 1.50})";
  const std::string frame = serialize_chunk_frame_raw("r1", 3, provider_chunk);
  EXPECT_EQ(frame, R"({"request_id":"r1","seq":3,"chunk":)" + provider_chunk + "}");
  EXPECT_EQ(json::parse(frame)["chunk"], json::parse(provider_chunk));
}

TEST(FormatStreamFrames, FinalFrameOnSuccess) {
  StreamFinalFrame frame;
  frame.request_id = "r1";
  frame.seq = 5;
  frame.status_code = 200;
  frame.finish_reason = "stop";
  frame.usage = TokenUsage{2, 3, 5};
  EXPECT_EQ(serialize_final_frame(frame),
            R"({"request_id":"r1","seq":5,"done":true,"status_code":200,"finish_reason":"stop",)"
            R"("usage":{"completion_tokens":3,"prompt_tokens":2,"total_tokens":5}})");
}

TEST(FormatStreamFrames, FinalFrameOnFailureCarriesTheError) {
  StreamFinalFrame frame;
  frame.request_id = "r1";
  frame.seq = 2;
  frame.status_code = 502;
  frame.error_message = "provider closed the stream after 2 chunks";
  EXPECT_EQ(serialize_final_frame(frame),
            R"({"request_id":"r1","seq":2,"done":true,"status_code":502,"finish_reason":null,"usage":null,)"
            R"("error":{"code":"bad_gateway","message":"provider closed the stream after 2 chunks",)"
            R"("type":"api_error"}})");
}

TEST(FormatStreamFrames, UsageSerializesByAdl) {
  const json usage = TokenUsage{1, 2, 3};
  EXPECT_EQ(usage, json::parse(R"({"prompt_tokens":1,"completion_tokens":2,"total_tokens":3})"));
}

}  // namespace
}  // namespace kafka_llm::format
