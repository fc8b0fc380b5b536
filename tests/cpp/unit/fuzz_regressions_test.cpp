// Regression tests for what the libFuzzer targets in tests/fuzz found. Each input is also in the
// target's seed corpus (tests/fuzz/corpus/<target>/regress-*), so `make fuzz-ci` replays it.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/request_envelope.hpp"
#include "kafka_llm/format/result_record.hpp"
#include "kafka_llm/format/sse_parser.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {
namespace {

using namespace std::string_literals;

bool valid_utf8(std::string_view text) {
  return !find_invalid_utf8(text).has_value();
}

// The parser's message quotes the bytes it read up to the one it rejected; that byte can be the
// lead byte of a multi-byte character, which left half a character in the message.
TEST(FuzzRegressions, JsonSyntaxErrorQuotingHalfACharacterIsValidUtf8) {
  const std::string text =
      "[\xD4\x8F"
      "ending*]";  // U+050F where a value must start
  ASSERT_FALSE(find_invalid_utf8(text).has_value());
  const auto parsed = parse_json(text);
  const auto* error = std::get_if<JsonError>(&parsed);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->kind, JsonErrorKind::kSyntax);
  EXPECT_TRUE(valid_utf8(error->message)) << error->message;
  EXPECT_NE(error->message.find("\xEF\xBF\xBD"), std::string::npos) << error->message;  // U+FFFD

  const auto result = parse_result(text);
  ASSERT_TRUE(std::holds_alternative<FormatError>(result));
  EXPECT_TRUE(valid_utf8(std::get<FormatError>(result).message));
}

TEST(FuzzRegressions, PoisonMessageForACutCharacterInAKeyIsValidUtf8) {
  const std::string record =
      R"({"path":"/v1/chat/completions","body":{"mode{")"s + "\xC3\xA9" + R"(body":1}})";
  ASSERT_FALSE(find_invalid_utf8(record).has_value());
  const auto result = parse_request(record);
  const auto* poison = std::get_if<PoisonRecord>(&result);
  ASSERT_NE(poison, nullptr);
  EXPECT_TRUE(valid_utf8(poison->message)) << poison->message;
  EXPECT_NE(poison->message.find("not valid JSON"), std::string::npos) << poison->message;
}

// After an event outgrew max_event_bytes, finish() reported as unterminated whatever part of the
// failing line earlier chunks had delivered, so the outcome depended on the split.
TEST(FuzzRegressions, FailedSseParserReportsTheSameEndHoweverTheStreamIsSplit) {
  const std::string_view stream = "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\n";
  SseParserOptions options;
  options.max_event_bytes = 36;

  SseParser whole(options);
  std::vector<SseEvent> whole_events;
  ASSERT_TRUE(whole.feed(stream, whole_events).has_value());
  const SseEnd whole_end = whole.finish();

  SseParser bytewise(options);
  std::vector<SseEvent> bytewise_events;
  for (std::size_t i = 0; i < stream.size(); ++i) (void)bytewise.feed(stream.substr(i, 1), bytewise_events);
  ASSERT_TRUE(bytewise.failed());
  const SseEnd bytewise_end = bytewise.finish();

  EXPECT_EQ(whole_events, bytewise_events);
  EXPECT_EQ(whole_end.truncated_event, bytewise_end.truncated_event);
  EXPECT_FALSE(whole_end.truncated_event.has_value());
  EXPECT_EQ(whole_end.unterminated_line_bytes, 0U);
  EXPECT_EQ(bytewise_end.unterminated_line_bytes, 0U);
}

}  // namespace
}  // namespace kafka_llm::format
