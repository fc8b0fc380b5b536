// The provider body passed through as text (ResultRecord/ResponseEnvelope::body_text) instead of
// being parsed into a document and serialized again, and scan_provider_body, which reads what the
// pipeline needs from it: both must mean exactly what the document path meant.

#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kafka_llm/format/provider_response.hpp"
#include "kafka_llm/format/response_envelope.hpp"
#include "kafka_llm/format/result_record.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

// Provider bodies of every shape the readers care about (valid JSON objects).
const std::vector<std::string>& sample_bodies() {
  static const std::vector<std::string> bodies = {
      R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}})",
      // Pretty-printed, as OpenAI sends it, with escapes, non-ASCII text and a second choice.
      "{\n  \"id\": \"x\",\n  \"model\": \"m\",\n  \"choices\": [\n    {\"index\": 0, \"message\": "
      "{\"role\": \"assistant\", \"content\": \"caf\\u00e9 \\\"quoted\\\"\\n\\/ \xC3\xA9 "
      "\xF0\x9F\x98\x80\"}, "
      "\"logprobs\": {\"content\": [{\"token\": \"a\", \"logprob\": -0.1e-3}]}, \"finish_reason\": null},\n"
      "    {\"index\": 1, \"message\": {\"content\": \"second\"}}\n  ],\n"
      "  \"usage\": {\"prompt_tokens\": 1, \"completion_tokens\": 2}\r\n}\n",
      R"({"model":"m","choices":[{"text":" world","index":0,"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":16,"total_tokens":17}})",
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,1e2,-3]}],"model":"e","usage":{"prompt_tokens":5,"total_tokens":5}})",
      R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"image","text":"no"},{"text":"b"}]}}]})",
      R"({"choices":[]})",
      R"({"choices":{"0":{}}})",
      R"({"choices":["text"]})",
      R"({"choices":[{"message":"not an object"}]})",
      R"({"choices":[{"message":{"content":7}}]})",
      R"({"choices":[{"finish_reason":5}]})",
      R"({"model":17})",
      R"({"usage":{"prompt_tokens":-1}})",
      R"({"usage":[1,2]})",
      R"({"error":{"message":"rate limited","type":"x"}})",
      R"({"error":"plain"})",
      R"({"error":null,"model":"m"})",
      R"({"message":"vllm style","object":"error"})",
      R"({"type":"error","error":{"message":"anthropic style"}})",
      R"({"model":"first","model":"second","choices":[{"text":"a"}],"choices":[{"text":"b"}]})",
      R"({"choices":[{"message":{"content":"x","content":"y"},"text":"t"}],"usage":{"prompt_tokens":18446744073709551615}})",
      R"({"choices":[[{"nested":[[[]]]}],{"message":{"content":"skipped"}}],"deep":{"a":[{"b":[{"c":{}}]}]}})",
      R"({})",
      "\xEF\xBB\xBF{\"model\":\"after a byte order mark\"}",
      // Deeper than the recursive reader goes: nlohmann's SAX parser reads these.
      R"({"model":"deep","choices":[{"text":"t","logprobs":)" + std::string(300, '[') +
          std::string(300, ']') + R"(}],"usage":{"prompt_tokens":1}})",
      R"({"choices":)" + std::string(300, '[') + std::string(300, ']') + "}",
  };
  return bodies;
}

// The scan and the document path on one text: "" when they agree.
std::string scan_disagreement(const std::string& text) {
  std::optional<json> document;
  try {
    document = json::parse(text);
  } catch (const json::exception&) {
  }
  const ScannedProviderBody scanned = scan_provider_body(text);
  if (scanned.valid != document.has_value()) return "valid";
  if (scanned.is_object != (document && document->is_object())) return "is_object";
  if (scanned.valid && scanned.compact != (compact_json(text) == text)) return "compact";
  if (!scanned.is_object) return scanned.members.is_null() ? "" : "members of a non-object";
  for (Endpoint endpoint : {Endpoint::kChatCompletions, Endpoint::kCompletions}) {
    const auto expected = read_provider_response(*document, ProviderApi::kOpenAi, endpoint);
    const auto actual = read_provider_response(scanned.members, ProviderApi::kOpenAi, endpoint);
    if (expected.index() != actual.index()) return "outcome";
    if (const auto* output = std::get_if<ProviderOutput>(&expected)) {
      if (!(*output == std::get<ProviderOutput>(actual))) return "output";
    } else if (std::get<FormatError>(expected).message != std::get<FormatError>(actual).message) {
      return "error message";
    }
  }
  if (provider_error_message(*document) != provider_error_message(scanned.members)) return "error text";
  return {};
}

TEST(FormatBodySplice, ScanReadsWhatTheDocumentReads) {
  for (const std::string& body : sample_bodies()) {
    SCOPED_TRACE(body);
    EXPECT_EQ(scan_disagreement(body), "");
    const json document = json::parse(body);
    const ScannedProviderBody scanned = scan_provider_body(body);
    ASSERT_TRUE(scanned.valid);
    ASSERT_TRUE(scanned.is_object);
    for (Endpoint endpoint : {Endpoint::kChatCompletions, Endpoint::kCompletions, Endpoint::kEmbeddings}) {
      const auto expected = read_provider_response(document, ProviderApi::kOpenAi, endpoint);
      const auto actual = read_provider_response(scanned.members, ProviderApi::kOpenAi, endpoint);
      ASSERT_EQ(expected.index(), actual.index());
      if (const auto* output = std::get_if<ProviderOutput>(&expected)) {
        EXPECT_EQ(*output, std::get<ProviderOutput>(actual));
      } else {
        EXPECT_EQ(std::get<FormatError>(expected).message, std::get<FormatError>(actual).message);
      }
    }
    EXPECT_EQ(provider_error_message(document), provider_error_message(scanned.members));
  }
}

TEST(FormatBodySplice, MutatedBodiesScanLikeTheDocumentPath) {
  const std::string alphabet =
      std::string("{}[]\",:\\0123456789eE+-.tfnrul \n") + std::string("\x00\x1f\x80\xc3\xed", 5);
  std::mt19937 rng(7);  // deterministic
  for (int round = 0; round < 20000; ++round) {
    std::string text = sample_bodies()[static_cast<std::size_t>(round) % 20];
    for (int e = 0; e < 1 + static_cast<int>(rng() % 2) && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), alphabet[rng() % alphabet.size()]);
          break;
        default:
          text.erase(at, 1 + rng() % 4);
          break;
      }
    }
    ASSERT_EQ(scan_disagreement(text), "") << json(text).dump(-1, ' ', true, json::error_handler_t::replace);
  }
}

TEST(FormatBodySplice, ScanKeepsOnlyTheMembersItReads) {
  const ScannedProviderBody scanned = scan_provider_body(sample_bodies()[1]);
  EXPECT_EQ(scanned.members,
            json::parse(R"({"model":"m","choices":[{"message":{"content":"caf\u00e9 \"quoted\"\n/ )"
                        "\xC3\xA9 \xF0\x9F\x98\x80"
                        R"("},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":2}})"));
}

TEST(FormatBodySplice, ScanAcceptsExactlyWhatTheParserAccepts) {
  const std::vector<std::string> inputs = {
      "",
      " ",
      "{",
      "{\"a\":}",
      "{\"a\":1,}",
      "{\"a\":1} x",
      "[1,2]",
      "\"text\"",
      "42",
      "null",
      "{} {}",
      "{\"a\":\"\xC3\"}",
      "{\"a\":01}",
      "{\"a\":1e999}",
      "{'a':1}",
      "{\"a\":\"\\x\"}",
      "{\"a\":tru}",
      "  {\"a\":[]}  ",
      "{\"a\":\"\x01\"}",
      "{\"a\":[1,2,]}",
      "\xEF\xBB\xBF[]",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input);
    const bool accepted = json::accept(input);
    const ScannedProviderBody scanned = scan_provider_body(input);
    EXPECT_EQ(scanned.valid, accepted);
    EXPECT_EQ(scanned.is_object, accepted && json::parse(input).is_object());
    if (!scanned.is_object) {
      EXPECT_TRUE(scanned.members.is_null());
    }
  }
}

// The body text as it comes out inside a response envelope.
std::string spliced(const std::string& body_text) {
  ResponseEnvelope response;
  response.body_text = compact_json(body_text);
  const json envelope = json::parse(serialize_response(response));
  const std::string text = serialize_response(response);
  const auto start = text.find(R"("body":)") + 7;
  const auto end = text.find(R"(,"request_id":)");
  EXPECT_EQ(json::parse(text.substr(start, end - start)), envelope["body"]);
  return text.substr(start, end - start);
}

TEST(FormatBodySplice, BodyTextLosesOnlyInsignificantWhitespace) {
  const std::vector<std::string> inputs = {
      R"({"a" : [ 1 , 2 ] , "b" : " spaced  string " , "c" : "esc\" aped \\" , "d" :{ } })",
      "\n\t{\r\n\"a\":\"tab\\tin\\nside\"}\n",
      "\xEF\xBB\xBF {\"bom\": true}",
      "[\"\\\\\", \" \\\\\\\" \"]",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input);
    const std::string out = spliced(input);
    EXPECT_EQ(json::parse(out), json::parse(input));
    EXPECT_EQ(out.find_first_of("\n\r\t"), std::string::npos);
    EXPECT_EQ(out.find(" , "), std::string::npos);
    EXPECT_FALSE(out.starts_with("\xEF"));
  }
  EXPECT_EQ(spliced(R"({ "k" : "v  w" , "n" : 1.50 })"), R"({"k":"v  w","n":1.50})");
  // nlohmann's parser stops at a NUL byte; so does the splice.
  const std::string with_nul("{\"a\":1} \0{junk", 14);
  ASSERT_TRUE(scan_provider_body(with_nul).is_object);
  EXPECT_EQ(spliced(with_nul), R"({"a":1})");
}

ResultRecord done_record() {
  ResultRecord record;
  record.status = ResultStatus::kDone;
  record.request_id = "req-1";
  record.provider = "mock";
  record.model = "m";
  record.output = "Hello";
  record.status_code = 200;
  record.usage = TokenUsage{9, 3, 12};
  record.attempts = 2;
  record.latency_ms = 12.375;
  record.created_ms = 1700000000000;
  record.updated_ms = 1700000000012;
  return record;
}

TEST(FormatBodySplice, ResultRecordWithBodyTextMeansTheSameAsWithTheDocument) {
  for (const std::string& body : sample_bodies()) {
    SCOPED_TRACE(body);
    ResultRecord from_document = done_record();
    from_document.body = json::parse(body);
    ResultRecord from_text = done_record();
    from_text.body_text = compact_json(body);
    const std::string old_bytes = serialize_result(from_document);
    const std::string new_bytes = serialize_result(from_text);
    EXPECT_EQ(json::parse(new_bytes), json::parse(old_bytes));
    // The stored record reads back (parse_result) as before: to the same record, or (a body
    // deeper than parse_result's nesting limit) to the same error.
    auto reread = parse_result(new_bytes);
    auto reread_before = parse_result(old_bytes);
    ASSERT_EQ(reread.index(), reread_before.index());
    if (std::holds_alternative<ResultRecord>(reread)) {
      EXPECT_EQ(std::get<ResultRecord>(reread), from_document);
    } else {
      EXPECT_EQ(std::get<FormatError>(reread).message, std::get<FormatError>(reread_before).message);
    }
    // The store-unless-done check in Redis looks at this prefix.
    EXPECT_TRUE(new_bytes.starts_with(R"({"status":"done",)"));
  }
}

TEST(FormatBodySplice, ResponseEnvelopeWithBodyTextMeansTheSameAsWithTheDocument) {
  for (const std::string& body : sample_bodies()) {
    SCOPED_TRACE(body);
    ResponseEnvelope from_document{
        json{{"t0", 1.25}, {"user", "ü"}}, 200, json::parse(body), "req-1", "mock", "m", 1, 3.5};
    ResponseEnvelope from_text = from_document;
    from_text.body = nullptr;
    from_text.body_text = compact_json(body);
    EXPECT_EQ(json::parse(serialize_response(from_text)), json::parse(serialize_response(from_document)));
  }
}

TEST(FormatBodySplice, NumbersAndUsageAreWrittenAsNlohmannWritesThem) {
  for (double value : {0.0, -0.0, 1.0, 812.4, 0.1, 1e-7, 123456789012345680.0, 1e300, -2.5e-300}) {
    ResponseEnvelope response;
    response.latency_ms = value;
    const std::string text = serialize_response(response);
    EXPECT_TRUE(text.ends_with(R"("latency_ms":)" + json(value).dump() + "}")) << text;
  }
  ResponseEnvelope response;
  response.latency_ms = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(serialize_response(response).ends_with(R"("latency_ms":null})"));
  const std::string record = serialize_result(done_record());
  EXPECT_NE(record.find(R"("usage":)" + json(TokenUsage{9, 3, 12}).dump() + ","), std::string::npos)
      << record;
}

}  // namespace
}  // namespace kafka_llm::format
