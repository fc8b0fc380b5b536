// read_json_document must accept exactly the texts nlohmann::json::parse accepts and build the same
// document, number types included: handcrafted edge cases, then many deterministic mutations of
// realistic documents.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kafka_llm/format/json_parse.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

// Equal values of equal types, recursively (json's operator== calls 1 and 1.0 equal).
bool identical(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto left = a.begin();
      auto right = b.begin();
      for (; left != a.end(); ++left, ++right) {
        if (left.key() != right.key() || !identical(left.value(), right.value())) return false;
      }
      return true;
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!identical(a[i], b[i])) return false;
      }
      return true;
    }
    default:
      return a == b;
  }
}

std::optional<json> nlohmann_parse(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// Returns a description of the disagreement, or "" when both agree.
std::string compare(const std::string& text) {
  const std::optional<json> expected = nlohmann_parse(text);
  json actual;
  const JsonReadStatus status = read_json_document(text, actual, 100000);
  if (status == JsonReadStatus::kTooDeep) return "too deep";
  if (expected.has_value() != (status == JsonReadStatus::kOk)) {
    return expected ? "rejected what nlohmann accepts" : "accepted what nlohmann rejects";
  }
  if (expected && !identical(*expected, actual)) {
    return "different document: " + actual.dump() + " instead of " + expected->dump();
  }
  JsonReader skipping(text, 100000);  // checking without building decides alike
  if ((skipping.skip() && skipping.at_end()) != expected.has_value()) return "skip() disagrees";
  return {};
}

TEST(FormatJsonDocument, EdgeCasesAgreeWithNlohmann) {
  const std::vector<std::string> cases = {
      // numbers
      "0",
      "-0",
      "1",
      "-1",
      "1.0",
      "-0.0",
      "1e5",
      "1E+5",
      "-1e-5",
      "0.1",
      "1.5e300",
      "123.456e-7",
      "18446744073709551615",
      "18446744073709551616",
      "-9223372036854775808",
      "-9223372036854775809",
      "123456789012345678901234567890",
      "1e309",
      "-1e309",
      "1e-400",
      "4.9e-324",
      "2.2250738585072011e-308",
      "01",
      "-01",
      "1.",
      ".1",
      "+1",
      "-",
      "1e",
      "1e+",
      "--1",
      "0x10",
      "1_0",
      "NaN",
      "Infinity",
      "-Infinity",
      "1.5.2",
      "1e5e5",
      "00",
      "0.0e",
      " 7 ",
      "[1,-0,0.0,-0.0]",
      // literals
      "true",
      "false",
      "null",
      "tru",
      "nulll",
      "True",
      "NULL",
      "[true,false,null]",
      "truefalse",
      // strings
      R"("")",
      R"("abc")",
      R"("\"\\\/\b\f\n\r\t")",
      R"("\u0000")",
      R"("\u00e9\u20AC")",
      R"("\ud83d\ude00")",
      R"("\ud83d")",
      R"("\ude00")",
      R"("\ud83d\u0041")",
      R"("\ud83dx")",
      R"("\u12")",
      R"("\u12g4")",
      R"("\x")",
      R"("\U0041")",
      "\"tab\there\"",
      "\"nl\nhere\"",
      "\"\x01\"",
      "\"\x1f\"",
      "\"\x7f\"",
      "\"caf\xC3\xA9\"",
      "\"\xC3\"",
      "\"\xC3\x28\"",
      "\"\xC0\x80\"",
      "\"\xC1\xBF\"",
      "\"\xE0\x80\x80\"",
      "\"\xE0\xA0\x80\"",
      "\"\xED\x9F\xBF\"",
      "\"\xED\xA0\x80\"",
      "\"\xEF\xBF\xBF\"",
      "\"\xF0\x8F\xBF\xBF\"",
      "\"\xF0\x90\x80\x80\"",
      "\"\xF4\x8F\xBF\xBF\"",
      "\"\xF4\x90\x80\x80\"",
      "\"\xF5\x80\x80\x80\"",
      "\"\xFF\"",
      "\"\x80\"",
      "\"\xE2\x82\"",
      "\"unterminated",
      "\"a\\",
      "\"",
      // structure
      "{}",
      "[]",
      "[[]]",
      R"({"a":1})",
      R"({"a":1,})",
      R"({"a" 1})",
      R"({"a":})",
      R"({a:1})",
      R"({'a':1})",
      R"({"a":1 "b":2})",
      R"([1,])",
      R"([,1])",
      R"([1 2])",
      R"({"a":1,"a":2})",
      R"({"a":{"b":1},"a":[2]})",
      R"({"":0})",
      R"({"a":[{"b":[{"c":{}}]}]})",
      "[",
      "]",
      "{",
      "}",
      "",
      " ",
      "\t\n\r {} \n",
      "\f{}",
      "\v{}",
      "{}\f",
      "{} x",
      "{}{}",
      "[] []",
      "\xEF\xBB\xBF{}",
      "\xEF\xBB\xBF",
      "\xEF\xBB{}",
      "\xEF{}",
      "{}\xEF\xBB\xBF",
      "[\xEF\xBB\xBF]",
      std::string("[1,\0]", 5),
      std::string("\"a\0b\"", 5),
      std::string("[1]\0", 4),
      std::string("[1] \0 garbage", 14),
      std::string("\0", 1),
      std::string("\0[]", 3),
  };
  for (const std::string& text : cases) {
    EXPECT_EQ(compare(text), "") << "for " << json(text).dump(-1, ' ', true, json::error_handler_t::replace);
  }
}

TEST(FormatJsonDocument, MutatedDocumentsAgreeWithNlohmann) {
  const std::vector<std::string> seeds = {
      R"({"request_id":"r-1","metadata":{"t0":12345.678,"user":"ü"},"path":"/v1/chat/completions",)"
      R"("body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello \"world\"\n"}],)"
      R"("max_tokens":16,"temperature":0.7,"stream":false}})",
      R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"caf\u00e9 \ud83d\ude00 ok",)"
      R"("refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}})",
      R"([1,-2,3.5e-3,18446744073709551615,-9223372036854775808,1e308,true,false,null,"",[],{}])",
      "{\n  \"a\" : [ 1 , 2 ] ,\r\n  \"b\" : \"\xE2\x82\xAC\\u20ac\\/\" \t}",
  };
  const std::string alphabet =
      std::string("{}[]\",:\\/0123456789eE+-.tfnrulsaxu \t\n\r") +
      std::string("\x00\x01\x1f\x7f\x80\xbf\xc3\xc0\xed\xe0\xf0\xf4\xff\xef\xbb\x00", 16);
  std::mt19937 rng(20261122);  // deterministic
  int checked = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string text = seeds[static_cast<std::size_t>(round) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 5) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 2:
          text.erase(at, 1 + rng() % 3);
          break;
        case 3:
          text.resize(at);
          break;
        default:
          text.insert(at, text.substr(rng() % text.size(), 1 + rng() % 8));
          break;
      }
    }
    const std::string problem = compare(text);
    ASSERT_EQ(problem, "") << "for " << json(text).dump(-1, ' ', true, json::error_handler_t::replace);
    ++checked;
  }
  EXPECT_EQ(checked, 40000);
}

TEST(FormatJsonDocument, StopsAtTheDepthLimitWithoutDeciding) {
  json out = 1;
  EXPECT_EQ(read_json_document("[[[1]]]", out, 2), JsonReadStatus::kTooDeep);
  EXPECT_EQ(out, 1);  // untouched
  EXPECT_EQ(read_json_document("[[[1]]]", out, 3), JsonReadStatus::kOk);
  EXPECT_EQ(out, json::parse("[[[1]]]"));
  EXPECT_EQ(read_json_document(std::string(100000, '[') + std::string(100000, ']'), out, 64),
            JsonReadStatus::kTooDeep);
}

TEST(FormatJsonDocument, ParseJsonStillWordsErrorsAsBefore) {
  auto parsed = parse_json("{\"a\":1,}");
  ASSERT_TRUE(std::holds_alternative<JsonError>(parsed));
  EXPECT_EQ(std::get<JsonError>(parsed).kind, JsonErrorKind::kSyntax);
  EXPECT_NE(std::get<JsonError>(parsed).message.find("at byte"), std::string::npos);
  parsed = parse_json("[1e999]");
  ASSERT_TRUE(std::holds_alternative<JsonError>(parsed));
  EXPECT_NE(std::get<JsonError>(parsed).message.find("overflow"), std::string::npos)
      << std::get<JsonError>(parsed).message;
}

}  // namespace
}  // namespace kafka_llm::format
