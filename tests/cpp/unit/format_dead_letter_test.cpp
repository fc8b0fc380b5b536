#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kafka_llm/format/dead_letter.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {
namespace {

DeadLetterFacts sample_facts() {
  DeadLetterFacts facts;
  facts.error_class = ErrorClass::kRetriesExhausted;
  facts.error = "HTTP 503 after 6 attempts";
  facts.http_status = 503;
  facts.attempts = 6;
  facts.request_id = "req-7";
  facts.provider = "openai";
  facts.model = "gpt-4o-mini";
  facts.origin = RecordOrigin{"llm.requests", 2, 1234};
  facts.first_attempt_ms = 1700000000000;
  facts.failed_at_ms = 1700000012345;
  return facts;
}

const HeaderList kExpectedTail = {
    {"x-error-class", "retries_exhausted"},
    {"x-error", "HTTP 503 after 6 attempts"},
    {"x-http-status", "503"},
    {"x-attempts", "6"},
    {"x-request-id", "req-7"},
    {"x-provider", "openai"},
    {"x-model", "gpt-4o-mini"},
    {"x-source-topic", "llm.requests"},
    {"x-source-partition", "2"},
    {"x-source-offset", "1234"},
    {"x-first-attempt-ms", "1700000000000"},
    {"x-failed-at-ms", "1700000012345"},
};

HeaderList concat(HeaderList head, const HeaderList& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

TEST(FormatDeadLetter, HeaderNamesMatchDesign) {
  std::vector<std::string> names;
  for (const auto& [name, value] : kExpectedTail) names.push_back(name);
  EXPECT_EQ(names, std::vector<std::string>(kDeadLetterHeaderNames.begin(), kDeadLetterHeaderNames.end()));
}

TEST(FormatDeadLetter, OriginalHeadersFirstThenFailureFacts) {
  const HeaderList original = {{"traceparent", "00-abc-def-01"}, {"content-type", "application/json"}};
  EXPECT_EQ(dead_letter_headers(original, sample_facts(), {}), concat(original, kExpectedTail));
}

TEST(FormatDeadLetter, NoOriginalHeaders) {
  EXPECT_EQ(dead_letter_headers({}, sample_facts(), {}), kExpectedTail);
}

TEST(FormatDeadLetter, RedrivenRecordGetsFreshValuesNotDuplicates) {
  const HeaderList first_trip = dead_letter_headers({{"traceparent", "t1"}}, sample_facts(), {});
  DeadLetterFacts second = sample_facts();
  second.error_class = ErrorClass::kPoison;
  second.error = "body.model is required";
  second.http_status = 400;
  second.attempts = 0;
  second.first_attempt_ms.reset();
  second.origin.offset = 99;
  const HeaderList headers = dead_letter_headers(first_trip, second, {});
  const HeaderList expected = {
      {"traceparent", "t1"},
      {"x-error-class", "poison"},
      {"x-error", "body.model is required"},
      {"x-http-status", "400"},
      {"x-attempts", "0"},
      {"x-request-id", "req-7"},
      {"x-provider", "openai"},
      {"x-model", "gpt-4o-mini"},
      {"x-source-topic", "llm.requests"},
      {"x-source-partition", "2"},
      {"x-source-offset", "99"},
      {"x-first-attempt-ms", ""},
      {"x-failed-at-ms", "1700000012345"},
  };
  EXPECT_EQ(headers, expected);
}

TEST(FormatDeadLetter, ReplacementIsCaseInsensitiveAndKeepsOtherXHeaders) {
  const HeaderList original = {{"X-Error-Class", "timeout"},
                               {"x-custom", "keep me"},
                               {"X-ERROR", "old"},
                               {"x-error", "older"},
                               {"k", "v"}};
  const HeaderList expected = concat({{"x-custom", "keep me"}, {"k", "v"}}, kExpectedTail);
  EXPECT_EQ(dead_letter_headers(original, sample_facts(), {}), expected);
}

TEST(FormatDeadLetter, TagHeadersOfAnEarlierTripAreDroppedButOutputTagsOfTheRequestAreKept) {
  // x-prompt-hash & co. were added by an earlier dead-lettering; prompt_hash without x- belongs to
  // the original record (a re-drive must restore it unchanged).
  const HeaderList original = {{"X-Prompt-Hash", "old"},          {"x-model-version", "m"},
                               {"x-prompt-version", "v1"},        {"x-model-output", "{}"},
                               {"x-model-output-truncated", "9"}, {"prompt_hash", "client's"}};
  const HeaderList expected = concat({{"prompt_hash", "client's"}}, kExpectedTail);
  EXPECT_EQ(dead_letter_headers(original, sample_facts(), {}), expected);
}

TEST(FormatDeadLetter, DuplicateOriginalHeadersAreKept) {
  const HeaderList original = {{"h", "1"}, {"h", "2"}};
  EXPECT_EQ(dead_letter_headers(original, sample_facts(), {}), concat(original, kExpectedTail));
}

TEST(FormatDeadLetter, AbsentFactsAreEmptyValues) {
  DeadLetterFacts facts;
  facts.error_class = ErrorClass::kPoison;
  facts.error = "record is empty";
  facts.origin = RecordOrigin{"t", 0, 5};
  facts.failed_at_ms = 7;
  const HeaderList expected = {
      {"x-error-class", "poison"},
      {"x-error", "record is empty"},
      {"x-http-status", ""},
      {"x-attempts", "0"},
      {"x-request-id", ""},
      {"x-provider", ""},
      {"x-model", ""},
      {"x-source-topic", "t"},
      {"x-source-partition", "0"},
      {"x-source-offset", "5"},
      {"x-first-attempt-ms", ""},
      {"x-failed-at-ms", "7"},
  };
  EXPECT_EQ(dead_letter_headers({}, facts, {}), expected);
}

TEST(FormatDeadLetter, EveryErrorClassName) {
  const std::pair<ErrorClass, std::string> cases[] = {
      {ErrorClass::kRetriesExhausted, "retries_exhausted"},
      {ErrorClass::kNonRetryable, "non_retryable"},
      {ErrorClass::kPoison, "poison"},
      {ErrorClass::kSchemaViolation, "schema_violation"},
      {ErrorClass::kTimeout, "timeout"},
  };
  for (const auto& [error_class, name] : cases) {
    DeadLetterFacts facts = sample_facts();
    facts.error_class = error_class;
    EXPECT_EQ(*find_header(dead_letter_headers({}, facts, {}), "x-error-class"), name);
  }
}

TEST(FormatDeadLetter, ErrorHeaderIsRedactedAndBounded) {
  DeadLetterFacts facts = sample_facts();
  facts.error = "401 from provider: invalid key my-secret-value; header Authorization: Bearer abc.def-ghi " +
                std::string(2000, 'x');
  const HeaderList headers = dead_letter_headers({}, facts, {"my-secret-value"});
  const std::string& error = *find_header(headers, "x-error");
  EXPECT_EQ(error.size(), kMaxErrorHeaderBytes);
  EXPECT_TRUE(error.starts_with("401 from provider: invalid key ***; header Authorization: Bearer *** xxx"))
      << error;
  EXPECT_TRUE(error.ends_with("x...")) << error;
  EXPECT_EQ(error.find("my-secret-value"), std::string::npos);
  EXPECT_EQ(error.find("abc.def"), std::string::npos);
}

TEST(FormatDeadLetter, CustomErrorBound) {
  DeadLetterFacts facts = sample_facts();
  facts.error = "0123456789";
  EXPECT_EQ(*find_header(dead_letter_headers({}, facts, {}, 8), "x-error"), "01234...");
  EXPECT_EQ(*find_header(dead_letter_headers({}, facts, {}, 10), "x-error"), "0123456789");
}

TEST(FormatRedact, KnownSecretsAreMasked) {
  struct Case {
    std::string text;
    std::vector<std::string> secrets;
    std::string expected;
  };
  const Case cases[] = {
      {"no secrets here", {}, "no secrets here"},
      {"key=hunter2!", {"hunter2"}, "key=***!"},
      {"hunter2hunter2", {"hunter2"}, "******"},
      {"a hunter2 b hunter2", {"hunter2"}, "a *** b ***"},
      {"token abcdef and abc", {"abc", "abcdef"}, "token *** and ***"},
      {"empty secret ignored", {""}, "empty secret ignored"},
      {"two: s1x and s2y", {"s1x", "s2y"}, "two: *** and ***"},
      {"case Hunter2 differs", {"hunter2"}, "case Hunter2 differs"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(redact_secrets(c.text, c.secrets), c.expected) << c.text;
  }
}

TEST(FormatRedact, TokenShapesAreMasked) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const Case cases[] = {
      {"Authorization: Bearer sk-abc.def/ghi+jk=", "Authorization: Bearer ***"},
      {"authorization: bearer eyJhbGciOi.eyJzdWIi.sig rest", "authorization: bearer *** rest"},
      {"BEARER   tok123", "BEARER   ***"},
      {"Bearer", "Bearer"},
      {"Bearer ", "Bearer "},
      {"Bearer: x", "Bearer: x"},
      {"NotBearer abc", "NotBearer abc"},
      {"key sk-proj-AbCdEf0123456789_xyz used", "key *** used"},
      {"sk-ant-api03-abcdefghijklmnop", "***"},
      {"(sk-abcdefgh)", "(***)"},
      {"stripe sk_live_abcdefgh1234", "stripe ***"},
      {"groq gsk_ABCDEFGH12345678 done", "groq *** done"},
      {"sk-short", "sk-short"},
      {"task-abcdefghijkl", "task-abcdefghijkl"},
      {"risk-assessment-report", "risk-assessment-report"},
      {"desk_0123456789", "desk_0123456789"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(redact_secrets(c.text, {}), c.expected) << c.text;
  }
}

TEST(FormatRedact, BoundedErrorText) {
  EXPECT_EQ(bounded_error_text("short", {}), "short");
  EXPECT_EQ(bounded_error_text("bad \xFF byte", {}), "bad \xEF\xBF\xBD byte");
  // A secret across the cut is masked before cutting, never half-kept.
  const std::string secret = "SECRETSECRETSECRET";
  const std::string text = std::string(1010, 'a') + secret;
  const std::string bounded = bounded_error_text(text, {secret});
  EXPECT_EQ(bounded, std::string(1010, 'a') + "***");
  EXPECT_EQ(bounded_error_text(std::string(1030, 'a') + secret, {secret}), std::string(1021, 'a') + "...");
  // The cut lands on a UTF-8 boundary: 1021 bytes of 'a' leave room for no part of a 3-byte sign.
  const std::string euro = "\xE2\x82\xAC";
  std::string long_text = std::string(1020, 'a');
  for (int i = 0; i < 10; ++i) long_text += euro;
  const std::string cut = bounded_error_text(long_text, {});
  EXPECT_EQ(cut, std::string(1020, 'a') + "...");
  EXPECT_FALSE(find_invalid_utf8(cut).has_value());
  EXPECT_EQ(bounded_error_text("abcdef", {}, 2), "ab");
}

}  // namespace
}  // namespace kafka_llm::format
