#include <gtest/gtest.h>

#include <string>

#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

struct Utf8Case {
  const char* name;
  std::string bytes;
  std::optional<std::size_t> invalid_at;
};

TEST(FormatUtf8, FindsFirstInvalidSequence) {
  const Utf8Case cases[] = {
      {"empty", "", std::nullopt},
      {"ascii", "hello world, long enough to use the 8-byte path", std::nullopt},
      {"two byte", "caf\xC3\xA9", std::nullopt},
      {"three byte", "\xE2\x82\xAC euro", std::nullopt},
      {"four byte", "\xF0\x9F\x98\x80", std::nullopt},
      {"max code point", "\xF4\x8F\xBF\xBF", std::nullopt},
      {"stray continuation", "abc\x80", 3},
      {"overlong two byte C0", "\xC0\xAF", 0},
      {"overlong two byte C1", "\xC1\xBF", 0},
      {"overlong three byte", "ab\xE0\x80\xAF", 2},
      {"overlong four byte", "\xF0\x8F\xBF\xBF", 0},
      {"utf-16 surrogate", "x\xED\xA0\x80", 1},
      {"above U+10FFFF", "\xF4\x90\x80\x80", 0},
      {"F5 lead", "\xF5\x80\x80\x80", 0},
      {"FF byte", "0123456789\xFF", 10},
      {"truncated at end", "euro \xE2\x82", 5},
      {"missing continuation", "\xE2(\xAC", 0},
      {"invalid after long ascii run", std::string(37, 'a') + "\xFE", 37},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(find_invalid_utf8(c.bytes), c.invalid_at) << c.name;
  }
}

TEST(FormatUtf8, TruncatesOnSequenceBoundary) {
  const std::string text =
      "ab\xE2\x82\xAC"  // a, b, euro sign (3 bytes)
      "c";
  EXPECT_EQ(truncate_utf8(text, 100), text);
  EXPECT_EQ(truncate_utf8(text, 6), text);
  EXPECT_EQ(truncate_utf8(text, 5), "ab\xE2\x82\xAC");
  EXPECT_EQ(truncate_utf8(text, 4), "ab");
  EXPECT_EQ(truncate_utf8(text, 3), "ab");
  EXPECT_EQ(truncate_utf8(text, 2), "ab");
  EXPECT_EQ(truncate_utf8(text, 0), "");
  EXPECT_EQ(truncate_utf8("\xF0\x9F\x98\x80", 3), "");
}

TEST(FormatUtf8, SanitizeReplacesEachBadByte) {
  EXPECT_EQ(sanitize_utf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_FALSE(find_invalid_utf8(sanitize_utf8("\xC0\xAF\xED\xA0\x80 \xF4\x90\x80\x80")).has_value());
}

TEST(FormatJsonParse, ParsesValidJson) {
  auto result = parse_json(R"({"a":[1,2,{"b":"c"}]})");
  ASSERT_TRUE(std::holds_alternative<json>(result));
  EXPECT_EQ(std::get<json>(result), json::parse(R"({"a":[1,2,{"b":"c"}]})"));
}

TEST(FormatJsonParse, RejectsEmptyInput) {
  auto result = parse_json("");
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  EXPECT_EQ(std::get<JsonError>(result).kind, JsonErrorKind::kEmpty);
  EXPECT_EQ(std::get<JsonError>(result).message, "empty input");
}

TEST(FormatJsonParse, ReportsSyntaxErrorWithoutExceptionNoise) {
  auto result = parse_json(R"({"a": tru})");
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  const auto& error = std::get<JsonError>(result);
  EXPECT_EQ(error.kind, JsonErrorKind::kSyntax);
  EXPECT_EQ(error.message,
            "syntax error while parsing value - invalid literal; last read: '\"a\": tru}' at byte 9");
  EXPECT_EQ(error.byte, 9U);
}

TEST(FormatJsonParse, BoundsQuotedTokenInMessage) {
  const std::string unterminated = "\"" + std::string(100000, 'x');
  auto result = parse_json(unterminated);
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  const auto& error = std::get<JsonError>(result);
  EXPECT_LT(error.message.size(), 300U);
  EXPECT_NE(error.message.find("xxx..."), std::string::npos) << error.message;
  EXPECT_TRUE(error.message.ends_with(" at byte 100001")) << error.message;
}

TEST(FormatJsonParse, NumberOverflowIsAnErrorValue) {
  auto result = parse_json("[1e999]");
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  EXPECT_EQ(std::get<JsonError>(result).message, "number overflow parsing '1e999'");
  EXPECT_FALSE(std::get<JsonError>(result).byte.has_value());
}

TEST(FormatJsonParse, DepthLimitIsInclusive) {
  const std::string at_limit = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(std::holds_alternative<json>(parse_json(at_limit)));
  const std::string over_limit = std::string(65, '[') + std::string(65, ']');
  auto result = parse_json(over_limit);
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  EXPECT_EQ(std::get<JsonError>(result).kind, JsonErrorKind::kTooDeep);
  EXPECT_EQ(std::get<JsonError>(result).message, "JSON nesting deeper than 64");
  EXPECT_EQ(std::get<JsonError>(result).byte, 64U);
}

TEST(FormatJsonParse, DepthCountsObjectsAndArraysTogether) {
  std::string nested;
  for (int i = 0; i < 3; ++i) nested += "{\"a\":[";
  nested += "1";
  for (int i = 0; i < 3; ++i) nested += "]}";
  EXPECT_TRUE(std::holds_alternative<json>(parse_json(nested, 6)));
  EXPECT_TRUE(std::holds_alternative<JsonError>(parse_json(nested, 5)));
}

TEST(FormatJsonParse, BracketsInsideStringsDoNotCount) {
  const std::string text = R"({"s":"[[[[{{{{ \" [[[[ \\"})";
  EXPECT_FALSE(scan_json(text, 1).has_value());
  EXPECT_TRUE(std::holds_alternative<json>(parse_json(text, 1)));
  // An escaped backslash ends the escape: the quote after it closes the string.
  EXPECT_TRUE(scan_json(R"(["\\", [[]]])", 2).has_value());
}

TEST(FormatJsonParse, DepthBombDoesNotRecurse) {
  const std::string bomb(100000, '[');
  auto result = parse_json(bomb);
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  EXPECT_EQ(std::get<JsonError>(result).kind, JsonErrorKind::kTooDeep);
  std::string object_bomb;
  for (int i = 0; i < 100000; ++i) object_bomb += "{\"a\":";
  auto object_result = parse_json(object_bomb);
  ASSERT_TRUE(std::holds_alternative<JsonError>(object_result));
  EXPECT_EQ(std::get<JsonError>(object_result).message, "JSON nesting deeper than 64");
}

TEST(FormatJsonParse, InvalidUtf8IsReportedByOffsetNotByTheParser) {
  auto result = parse_json("{\"k\":\"v\xFF\"}");
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  EXPECT_EQ(std::get<JsonError>(result).kind, JsonErrorKind::kInvalidUtf8);
  EXPECT_EQ(std::get<JsonError>(result).message, "invalid UTF-8 at byte 7");
  EXPECT_EQ(std::get<JsonError>(result).byte, 7U);
}

TEST(FormatJsonParse, LoneSurrogateEscapeIsASyntaxError) {
  auto result = parse_json(R"(["\ud800"])");
  ASSERT_TRUE(std::holds_alternative<JsonError>(result));
  EXPECT_EQ(std::get<JsonError>(result).kind, JsonErrorKind::kSyntax);
  EXPECT_NE(std::get<JsonError>(result).message.find("surrogate"), std::string::npos);
}

}  // namespace
}  // namespace kafka_llm::format
