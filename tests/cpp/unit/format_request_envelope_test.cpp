#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "kafka_llm/format/prompt_hash.hpp"
#include "kafka_llm/format/request_envelope.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

const RecordOrigin kOrigin{"llm.requests", 3, 42};

RequestEnvelope expect_envelope(ParseRequestResult result) {
  if (auto* poison = std::get_if<PoisonRecord>(&result)) {
    ADD_FAILURE() << "unexpected poison: " << poison->message;
    return {};
  }
  return std::get<RequestEnvelope>(std::move(result));
}

PoisonRecord expect_poison(ParseRequestResult result) {
  if (std::holds_alternative<RequestEnvelope>(result)) {
    ADD_FAILURE() << "expected a poison record";
    return {};
  }
  return std::get<PoisonRecord>(std::move(result));
}

RequestEnvelope parse_ok(std::string_view value, std::optional<std::string_view> key = std::nullopt) {
  return expect_envelope(parse_request(value, key, kOrigin));
}

PoisonRecord parse_poison(std::string_view value, std::optional<std::string_view> key = std::nullopt,
                          const RequestParseOptions& options = {}) {
  return expect_poison(parse_request(value, key, kOrigin, options));
}

TEST(FormatRequestEnvelope, KubeAiCompletionPayloadWorksUnchanged) {
  const std::string record =
      R"({"metadata":{"client":"kubeai","nested":{"ids":[1,2,3]},"note":null},)"
      R"("path":"/v1/completions","body":{"model":"qwen2-500m-cpu","prompt":"Hello","max_tokens":8}})";
  const RequestEnvelope envelope = parse_ok(record);
  EXPECT_EQ(envelope.metadata, json::parse(R"({"client":"kubeai","nested":{"ids":[1,2,3]},"note":null})"));
  EXPECT_EQ(envelope.path, "/v1/completions");
  EXPECT_EQ(envelope.endpoint, Endpoint::kCompletions);
  EXPECT_EQ(envelope.body, json::parse(R"({"model":"qwen2-500m-cpu","prompt":"Hello","max_tokens":8})"));
  EXPECT_EQ(envelope.model, "qwen2-500m-cpu");
  EXPECT_EQ(envelope.provider, std::nullopt);
  EXPECT_EQ(envelope.request_id, "llm.requests-3-42");
  EXPECT_EQ(envelope.request_id_source, RequestIdSource::kOrigin);
  EXPECT_FALSE(envelope.stream);
  EXPECT_EQ(envelope.prompt_bytes, 5U);
  EXPECT_EQ(envelope.prompt_hash, prompt_hash(envelope.body));
}

TEST(FormatRequestEnvelope, KubeAiChatPayloadWithoutLeadingSlash) {
  const RequestEnvelope envelope =
      parse_ok(R"({"metadata":{"k":"v"},"path":"v1/chat/completions",)"
               R"("body":{"model":"m","messages":[{"role":"user","content":"Hi"}]}})");
  EXPECT_EQ(envelope.path, "/v1/chat/completions");
  EXPECT_EQ(envelope.endpoint, Endpoint::kChatCompletions);
  EXPECT_EQ(envelope.metadata, json::parse(R"({"k":"v"})"));
}

TEST(FormatRequestEnvelope, DesignExampleParsesFully) {
  const RequestEnvelope envelope =
      parse_ok(R"({"metadata": {"any": "json, echoed back unchanged"}, "path": "/v1/chat/completions",)"
               R"( "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]},)"
               R"( "provider": "openai", "request_id": "3f2a"})",
               "ignored-key");
  EXPECT_EQ(envelope.provider, "openai");
  EXPECT_EQ(envelope.request_id, "3f2a");
  EXPECT_EQ(envelope.request_id_source, RequestIdSource::kField);
  EXPECT_EQ(envelope.model, "gpt-4o-mini");
  EXPECT_EQ(envelope.prompt_bytes, 5U);
}

TEST(FormatRequestEnvelope, PathNormalization) {
  struct Case {
    std::string path_json;
    std::string_view path;
    Endpoint endpoint;
  };
  const Case cases[] = {
      {"", "/v1/completions", Endpoint::kCompletions},
      {R"("path":null,)", "/v1/completions", Endpoint::kCompletions},
      {R"("path":"/v1/completions",)", "/v1/completions", Endpoint::kCompletions},
      {R"("path":"v1/completions",)", "/v1/completions", Endpoint::kCompletions},
      {R"("path":"/v1/chat/completions",)", "/v1/chat/completions", Endpoint::kChatCompletions},
      {R"("path":"v1/chat/completions",)", "/v1/chat/completions", Endpoint::kChatCompletions},
      {R"("path":"/v1/embeddings",)", "/v1/embeddings", Endpoint::kEmbeddings},
      {R"("path":"v1/embeddings",)", "/v1/embeddings", Endpoint::kEmbeddings},
  };
  for (const auto& c : cases) {
    const std::string record =
        "{" + c.path_json + R"("body":{"model":"m","prompt":"p","input":"i","messages":[{"role":"user"}]}})";
    const RequestEnvelope envelope = parse_ok(record);
    EXPECT_EQ(envelope.path, c.path) << record;
    EXPECT_EQ(envelope.endpoint, c.endpoint) << record;
  }
}

struct PoisonCase {
  std::string record;
  std::string message;
};

TEST(FormatRequestEnvelope, EveryShapeProblemHasItsMessage) {
  const std::string accepted =
      " is not supported (accepted: /v1/completions, /v1/chat/completions, /v1/embeddings)";
  const PoisonCase cases[] = {
      {"[]", "record must be a JSON object (got array)"},
      {R"("text")", "record must be a JSON object (got string)"},
      {"42", "record must be a JSON object (got number)"},
      {"null", "record must be a JSON object (got null)"},
      {"true", "record must be a JSON object (got boolean)"},
      {"{}", "body is required"},
      {R"({"request_id":5,"body":{"model":"m","prompt":"p"}})", "request_id must be a string (got number)"},
      {R"({"request_id":{"a":1},"body":{"model":"m","prompt":"p"}})",
       "request_id must be a string (got object)"},
      {R"({"path":7,"body":{"model":"m","prompt":"p"}})", "path must be a string (got number)"},
      {R"({"path":["/v1/completions"],"body":{"model":"m","prompt":"p"}})",
       "path must be a string (got array)"},
      {R"({"path":"/v1/foo","body":{"model":"m","prompt":"p"}})", "path \"/v1/foo\"" + accepted},
      {R"({"path":"v1/foo","body":{"model":"m","prompt":"p"}})", "path \"v1/foo\"" + accepted},
      {R"({"path":"","body":{"model":"m","prompt":"p"}})", "path \"\"" + accepted},
      {R"({"path":"/","body":{"model":"m","prompt":"p"}})", "path \"/\"" + accepted},
      {R"({"path":"/v1/completions/","body":{"model":"m","prompt":"p"}})",
       "path \"/v1/completions/\"" + accepted},
      {R"({"path":"/V1/completions","body":{"model":"m","prompt":"p"}})",
       "path \"/V1/completions\"" + accepted},
      {R"({"path":"//v1/completions","body":{"model":"m","prompt":"p"}})",
       "path \"//v1/completions\"" + accepted},
      {R"({"path":"/v1/completions?x=1","body":{"model":"m","prompt":"p"}})",
       "path \"/v1/completions?x=1\"" + accepted},
      {R"({"path":"/openai/v1/completions","body":{"model":"m","prompt":"p"}})",
       "path \"/openai/v1/completions\"" + accepted},
      {R"({"provider":1,"body":{"model":"m","prompt":"p"}})", "provider must be a string (got number)"},
      {R"({"provider":true,"body":{"model":"m","prompt":"p"}})", "provider must be a string (got boolean)"},
      {R"({"body":null})", "body is required"},
      {R"({"body":"model=m"})", "body must be a JSON object (got string)"},
      {R"({"body":[{"model":"m"}]})", "body must be a JSON object (got array)"},
      {R"({"body":{"prompt":"p"}})", "body.model is required"},
      {R"({"body":{"model":null,"prompt":"p"}})", "body.model is required"},
      {R"({"body":{"model":3,"prompt":"p"}})", "body.model must be a string (got number)"},
      {R"({"body":{"model":["m"],"prompt":"p"}})", "body.model must be a string (got array)"},
      {R"({"body":{"model":"","prompt":"p"}})", "body.model must not be empty"},
      {R"({"body":{"model":"m","prompt":"p","stream":"yes"}})", "body.stream must be a boolean (got string)"},
      {R"({"body":{"model":"m","prompt":"p","stream":1}})", "body.stream must be a boolean (got number)"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m"}})", "body.messages is required"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":null}})",
       "body.messages is required"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":{"role":"user"}}})",
       "body.messages must be an array (got object)"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":"Hello"}})",
       "body.messages must be an array (got string)"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":[]}})",
       "body.messages must not be empty"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x"},"hi"]}})",
       "body.messages[1] must be an object (got string)"},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":[null]}})",
       "body.messages[0] must be an object (got null)"},
      {R"({"body":{"model":"m"}})", "body.prompt is required"},
      {R"({"path":"/v1/completions","body":{"model":"m","prompt":null}})", "body.prompt is required"},
      {R"({"body":{"model":"m","prompt":{"text":"p"}}})",
       "body.prompt must be a string or an array (got object)"},
      {R"({"body":{"model":"m","prompt":12}})", "body.prompt must be a string or an array (got number)"},
      {R"({"path":"/v1/embeddings","body":{"model":"m"}})", "body.input is required"},
      {R"({"path":"/v1/embeddings","body":{"model":"m","prompt":"p"}})", "body.input is required"},
      {R"({"path":"/v1/embeddings","body":{"model":"m","input":5}})",
       "body.input must be a string or an array (got number)"},
      {R"({"path":"/v1/embeddings","body":{"model":"m","input":true}})",
       "body.input must be a string or an array (got boolean)"},
      {"", "record is empty"},
  };
  for (const auto& c : cases) {
    const PoisonRecord poison = parse_poison(c.record);
    EXPECT_EQ(poison.message, c.message) << c.record;
    EXPECT_EQ(poison.error_class, ErrorClass::kPoison) << c.record;
    EXPECT_EQ(poison.http_status, 400) << c.record;
  }
}

TEST(FormatRequestEnvelope, DeadlineFieldsAreNonNegativeMilliseconds) {
  const auto with = [](const std::string& fields) {
    return "{" + fields + R"(,"body":{"model":"m","prompt":"p"}})";
  };
  auto envelope = parse_ok(with(R"("deadline_ms":1800000000123,"timeout_ms":2500)"));
  EXPECT_EQ(envelope.deadline_ms, 1800000000123);
  EXPECT_EQ(envelope.timeout_ms, 2500);
  envelope = parse_ok(with(R"("deadline_ms":1800000000123.7,"timeout_ms":0)"));  // Date.now() or time()*1000
  EXPECT_EQ(envelope.deadline_ms, 1800000000123);
  EXPECT_EQ(envelope.timeout_ms, 0);
  envelope = parse_ok(with(R"("deadline_ms":null)"));
  EXPECT_FALSE(envelope.deadline_ms);
  EXPECT_FALSE(envelope.timeout_ms);

  const std::string epoch = "deadline_ms must be a non-negative number of milliseconds since the epoch";
  const std::string span = "timeout_ms must be a non-negative number of milliseconds";
  const PoisonCase cases[] = {
      {with(R"("deadline_ms":-1)"), epoch + " (got -1)"},
      {with(R"("deadline_ms":"1800000000000")"), epoch + " (got string)"},
      {with(R"("deadline_ms":true)"), epoch + " (got boolean)"},
      {with(R"("deadline_ms":1e300)"), epoch + " (got 1e+300)"},
      {with(R"("deadline_ms":18446744073709551615)"), epoch + " (got 18446744073709551615)"},
      {with(R"("timeout_ms":-0.5)"), span + " (got -0.5)"},
      {with(R"("timeout_ms":[1])"), span + " (got array)"},
  };
  for (const auto& c : cases) {
    const auto poison = parse_poison(c.record);
    EXPECT_EQ(poison.message, c.message) << c.record;
    EXPECT_EQ(poison.http_status, 400);
    EXPECT_EQ(poison.error_class, ErrorClass::kPoison);
  }
}

TEST(FormatRequestEnvelope, CheckOrderReportsTheFirstProblem) {
  // request_id type before path, path before provider, provider before body.
  EXPECT_EQ(parse_poison(R"({"request_id":1,"path":"/x","provider":2})").message,
            "request_id must be a string (got number)");
  EXPECT_EQ(parse_poison(R"({"path":"/x","provider":2})").message.substr(0, 12), "path \"/x\" is");
  EXPECT_EQ(parse_poison(R"({"provider":2})").message, "provider must be a string (got number)");
  EXPECT_EQ(parse_poison(R"({"body":{"model":1,"stream":"x"}})").message,
            "body.model must be a string (got number)");
}

TEST(FormatRequestEnvelope, LongUnsupportedPathIsQuotedShort) {
  const std::string path(500, 'a');
  const PoisonRecord poison = parse_poison(R"({"path":")" + path + R"(","body":{"model":"m","prompt":"p"}})");
  EXPECT_TRUE(poison.message.starts_with("path \"" + std::string(100, 'a') + "...\" is not supported"))
      << poison.message;
}

TEST(FormatRequestEnvelope, MetadataMayBeAnyJson) {
  for (const std::string metadata : {"5", R"("text")", "[1,2]", "true", "null", R"({"a":{"b":[null]}})"}) {
    const RequestEnvelope envelope =
        parse_ok(R"({"metadata":)" + metadata + R"(,"body":{"model":"m","prompt":"p"}})");
    EXPECT_EQ(envelope.metadata, json::parse(metadata)) << metadata;
  }
  EXPECT_TRUE(parse_ok(R"({"body":{"model":"m","prompt":"p"}})").metadata.is_null());
}

TEST(FormatRequestEnvelope, UnknownFieldsAreIgnored) {
  const RequestEnvelope envelope =
      parse_ok(R"({"version":2,"trace":{"id":"x"},"body":{"model":"m","prompt":"p","custom":[1]}})");
  EXPECT_EQ(envelope.body["custom"], json::parse("[1]"));
}

TEST(FormatRequestEnvelope, InvalidJsonMessages) {
  struct Case {
    std::string record;
    std::string message;
  };
  const Case cases[] = {
      {R"({"body":)",
       "record is not valid JSON: syntax error while parsing value - unexpected end of input; expected '[', "
       "'{', or a "
       "literal at byte 8"},
      {"{} x",
       "record is not valid JSON: syntax error while parsing value - invalid literal; last read: '{} x'; "
       "expected end of "
       "input at byte 3"},
      {R"({"body":{"model":"m","prompt":"p","temperature":1e999}})",
       "record is not valid JSON: number overflow parsing '1e999'"},
      {"not json at all",
       "record is not valid JSON: syntax error while parsing value - invalid literal; last read: 'no' "
       "at byte 1"},
  };
  for (const auto& c : cases) {
    const PoisonRecord poison = parse_poison(c.record);
    EXPECT_EQ(poison.message, c.message) << c.record;
    EXPECT_EQ(poison.http_status, 400);
  }
}

TEST(FormatRequestEnvelope, InvalidUtf8IsPoisonWithOffset) {
  struct Case {
    std::string record;
    std::string message;
  };
  const Case cases[] = {
      {"{\"body\":{\"model\":\"m\xFF\"}}", "invalid UTF-8 at byte 19"},
      {"{\"body\":{\"model\":\"\xC0\xAF\"}}", "invalid UTF-8 at byte 18"},
      {"{\"body\":{\"model\":\"\xED\xA0\x80\"}}", "invalid UTF-8 at byte 18"},
      {"\xFE{}", "invalid UTF-8 at byte 0"},
      {"{\"body\":{\"model\":\"m\",\"prompt\":\"\xE2\x82", "invalid UTF-8 at byte 31"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_poison(c.record).message, c.message);
  }
}

TEST(FormatRequestEnvelope, DepthBombIsPoisonWithoutStackOverflow) {
  const std::string bomb(100000, '[');
  const PoisonRecord poison = parse_poison(bomb, "key-1");
  EXPECT_EQ(poison.message, "JSON nesting deeper than 64");
  EXPECT_EQ(poison.request_id, "key-1");

  std::string closed = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(parse_poison(closed).message, "JSON nesting deeper than 64");

  std::string in_metadata = R"({"metadata":)" + std::string(100000, '{');
  EXPECT_EQ(parse_poison(in_metadata).message, "JSON nesting deeper than 64");
}

TEST(FormatRequestEnvelope, DepthLimitBoundaryAndOption) {
  const auto record_with_metadata_depth = [](int arrays) {
    return R"({"metadata":)" + std::string(arrays, '[') + std::string(arrays, ']') +
           R"(,"body":{"model":"m","prompt":"p"}})";
  };
  // The top-level object is level 1, so 63 arrays inside it reach exactly 64.
  EXPECT_EQ(parse_ok(record_with_metadata_depth(63)).metadata.size(), 1U);
  EXPECT_EQ(parse_poison(record_with_metadata_depth(64)).message, "JSON nesting deeper than 64");
  RequestParseOptions shallow;
  shallow.max_json_depth = 3;
  EXPECT_TRUE(std::holds_alternative<RequestEnvelope>(
      parse_request(record_with_metadata_depth(2), std::nullopt, kOrigin, shallow)));
  EXPECT_EQ(parse_poison(record_with_metadata_depth(3), std::nullopt, shallow).message,
            "JSON nesting deeper than 3");
}

TEST(FormatRequestEnvelope, HugeRecordIs413) {
  const std::string huge(2000000, ' ');
  const PoisonRecord poison = parse_poison(huge, "big");
  EXPECT_EQ(poison.message, "record of 2000000 bytes exceeds max_request_bytes 1048576");
  EXPECT_EQ(poison.http_status, 413);
  EXPECT_EQ(poison.error_class, ErrorClass::kPoison);
  EXPECT_EQ(poison.request_id, "big");
  EXPECT_EQ(poison.reply, ErrorReply::kSend);
}

TEST(FormatRequestEnvelope, SizeLimitIsInclusive) {
  const std::string record = R"({"body":{"model":"m","prompt":"p"}})";
  RequestParseOptions options;
  options.max_request_bytes = record.size();
  EXPECT_TRUE(std::holds_alternative<RequestEnvelope>(parse_request(record, std::nullopt, kOrigin, options)));
  options.max_request_bytes = record.size() - 1;
  EXPECT_EQ(parse_poison(record, std::nullopt, options).message,
            "record of " + std::to_string(record.size()) + " bytes exceeds max_request_bytes " +
                std::to_string(record.size() - 1));
}

TEST(FormatRequestEnvelope, OneMebibyteRecordIsAccepted) {
  const std::string prefix = R"({"body":{"model":"m","prompt":")";
  const std::string suffix = R"("}})";
  const std::string record =
      prefix + std::string(kDefaultMaxRequestBytes - prefix.size() - suffix.size(), 'a') + suffix;
  ASSERT_EQ(record.size(), kDefaultMaxRequestBytes);
  EXPECT_EQ(parse_ok(record).prompt_bytes, kDefaultMaxRequestBytes - prefix.size() - suffix.size());
}

TEST(FormatRequestEnvelope, RequestIdPrecedence) {
  struct Case {
    const char* name;
    std::string request_id_json;
    std::optional<std::string_view> key;
    std::string expected;
    RequestIdSource source;
  };
  const Case cases[] = {
      {"field beats key", R"("request_id":"rid",)", "key", "rid", RequestIdSource::kField},
      {"field without key", R"("request_id":"rid",)", std::nullopt, "rid", RequestIdSource::kField},
      {"empty field falls back to key", R"("request_id":"",)", "key", "key", RequestIdSource::kKey},
      {"null field falls back to key", R"("request_id":null,)", "key", "key", RequestIdSource::kKey},
      {"absent field uses key", "", "key", "key", RequestIdSource::kKey},
      {"empty key falls back to origin", "", "", "llm.requests-3-42", RequestIdSource::kOrigin},
      {"no key uses origin", "", std::nullopt, "llm.requests-3-42", RequestIdSource::kOrigin},
      {"non-UTF-8 key falls back to origin", "", std::string_view("\xFF\xFE", 2), "llm.requests-3-42",
       RequestIdSource::kOrigin},
      {"binary-safe UTF-8 key", "", std::string_view("a\0b", 3), std::string("a\0b", 3),
       RequestIdSource::kKey},
  };
  for (const auto& c : cases) {
    const RequestEnvelope envelope =
        parse_ok("{" + c.request_id_json + R"("body":{"model":"m","prompt":"p"}})", c.key);
    EXPECT_EQ(envelope.request_id, c.expected) << c.name;
    EXPECT_EQ(envelope.request_id_source, c.source) << c.name;
  }
}

TEST(FormatRequestEnvelope, OriginIdFormat) {
  EXPECT_EQ(origin_request_id(RecordOrigin{"t", 0, 0}), "t-0-0");
  EXPECT_EQ(origin_request_id(RecordOrigin{"a.b-c", 12, 9007199254740993}), "a.b-c-12-9007199254740993");
  EXPECT_EQ(origin_request_id(RecordOrigin{}), "--1--1");
}

TEST(FormatRequestEnvelope, PoisonIdentityAndReply) {
  struct Case {
    const char* name;
    std::string record;
    std::optional<std::string_view> key;
    std::string request_id;
    RequestIdSource source;
    ErrorReply reply;
  };
  const Case cases[] = {
      {"garbage with key", "garbage", "k1", "k1", RequestIdSource::kKey, ErrorReply::kSend},
      {"garbage without key", "garbage", std::nullopt, "llm.requests-3-42", RequestIdSource::kOrigin,
       ErrorReply::kDeadLetterOnly},
      {"field in otherwise bad JSON", R"({"request_id":"r9","body":{}})", "k1", "r9", RequestIdSource::kField,
       ErrorReply::kSend},
      {"field without key", R"({"request_id":"r9","body":5})", std::nullopt, "r9", RequestIdSource::kField,
       ErrorReply::kSend},
      {"wrong-typed field uses key", R"({"request_id":7,"body":{}})", "k1", "k1", RequestIdSource::kKey,
       ErrorReply::kSend},
      {"metadata makes it correlatable", R"({"metadata":{"m":1},"body":{}})", std::nullopt,
       "llm.requests-3-42", RequestIdSource::kOrigin, ErrorReply::kSend},
      {"nothing to correlate", R"({"body":{}})", std::nullopt, "llm.requests-3-42", RequestIdSource::kOrigin,
       ErrorReply::kDeadLetterOnly},
      {"oversized with key", std::string(100, ' '), "k2", "k2", RequestIdSource::kKey, ErrorReply::kSend},
  };
  RequestParseOptions small;
  small.max_request_bytes = 99;
  for (const auto& c : cases) {
    const PoisonRecord poison = parse_poison(c.record, c.key, small);
    EXPECT_EQ(poison.request_id, c.request_id) << c.name;
    EXPECT_EQ(poison.request_id_source, c.source) << c.name;
    EXPECT_EQ(poison.reply, c.reply) << c.name;
  }
}

TEST(FormatRequestEnvelope, PoisonCarriesWhatCouldBeRead) {
  const PoisonRecord poison =
      parse_poison(R"({"metadata":{"trace":"t1"},"provider":"groq","path":"/v1/chat/completions",)"
                   R"("body":{"model":"llama","messages":"not an array"}})");
  EXPECT_EQ(poison.message, "body.messages must be an array (got string)");
  EXPECT_EQ(poison.metadata, json::parse(R"({"trace":"t1"})"));
  EXPECT_EQ(poison.model, "llama");
  EXPECT_EQ(poison.provider, "groq");

  const PoisonRecord bare = parse_poison("[1]");
  EXPECT_TRUE(bare.metadata.is_null());
  EXPECT_EQ(bare.model, std::nullopt);
  EXPECT_EQ(bare.provider, std::nullopt);
}

TEST(FormatRequestEnvelope, StreamFlag) {
  EXPECT_TRUE(parse_ok(R"({"body":{"model":"m","prompt":"p","stream":true}})").stream);
  EXPECT_FALSE(parse_ok(R"({"body":{"model":"m","prompt":"p","stream":false}})").stream);
  EXPECT_FALSE(parse_ok(R"({"body":{"model":"m","prompt":"p","stream":null}})").stream);
  EXPECT_FALSE(parse_ok(R"({"body":{"model":"m","prompt":"p"}})").stream);
}

TEST(FormatRequestEnvelope, ProviderIsOptional) {
  EXPECT_EQ(parse_ok(R"({"provider":"openai","body":{"model":"m","prompt":"p"}})").provider, "openai");
  EXPECT_EQ(parse_ok(R"({"provider":"","body":{"model":"m","prompt":"p"}})").provider, std::nullopt);
  EXPECT_EQ(parse_ok(R"({"provider":null,"body":{"model":"m","prompt":"p"}})").provider, std::nullopt);
}

TEST(FormatRequestEnvelope, PromptBytesPerEndpoint) {
  struct Case {
    std::string record;
    std::size_t bytes;
  };
  const Case cases[] = {
      {R"({"body":{"model":"m","prompt":"four"}})", 4},
      {R"({"body":{"model":"m","prompt":["ab","cde"]}})", 5},
      {R"({"body":{"model":"m","prompt":[1,2,3]}})", 12},
      {R"({"body":{"model":"m","prompt":[[1,2],[3]]}})", 12},
      {R"({"body":{"model":"m","prompt":[]}})", 0},
      {R"({"path":"/v1/embeddings","body":{"model":"m","input":"héllo"}})", 6},
      {R"({"path":"/v1/embeddings","body":{"model":"m","input":["a","bb"]}})", 3},
      {R"({"path":"/v1/chat/completions","body":{"model":"m","messages":[)"
       R"({"role":"system","content":"be brief"},{"role":"user","content":"hi"},)"
       R"({"role":"user","content":[{"type":"text","text":"abc"},{"type":"image_url","image_url":{"url":"x"}}]},)"
       R"({"role":"assistant","content":null,"tool_calls":[]}]}})",
       13},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_ok(c.record).prompt_bytes, c.bytes) << c.record;
  }
}

TEST(FormatRequestEnvelope, PromptHashIgnoresKeyOrderAndTransportFields) {
  const RequestEnvelope a = parse_ok(
      R"({"request_id":"1","body":{"model":"m","prompt":"p","temperature":0.5,"stream":true,"user":"u1"}})");
  const RequestEnvelope b =
      parse_ok(R"({"request_id":"2","body":{"temperature":0.5,"prompt":"p","model":"m"}})");
  const RequestEnvelope c = parse_ok(R"({"body":{"temperature":0.6,"prompt":"p","model":"m"}})");
  EXPECT_EQ(a.prompt_hash, b.prompt_hash);
  EXPECT_NE(a.prompt_hash, c.prompt_hash);
  EXPECT_EQ(a.prompt_hash.size(), 64U);
}

TEST(FormatRequestEnvelope, FuzzEntryPointUsesEmptyOrigin) {
  const RequestEnvelope envelope = expect_envelope(parse_request(R"({"body":{"model":"m","prompt":"p"}})"));
  EXPECT_EQ(envelope.request_id, "--1--1");
}

TEST(FormatRequestEnvelope, NeverThrowsOnMutatedRecords) {
  const std::vector<std::string> seeds = {
      R"({"metadata":{"a":[1,2]},"path":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hé"}],"stream":true},"request_id":"r"})",
      R"({"path":"v1/embeddings","body":{"model":"m","input":["a","b"]},"provider":"p"})",
      R"({"body":{"model":"m","prompt":[1,2,3],"temperature":1e308}})",
  };
  std::mt19937 random(12345);
  const std::string alphabet = "{}[]\":,\\ntrufalse0123456789.eE+-/ \x80\xC3\xA9\xFF\xED\xF4";
  std::size_t envelopes = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string record = seeds[random() % seeds.size()];
    const int mutations = 1 + static_cast<int>(random() % 4);
    for (int m = 0; m < mutations && !record.empty(); ++m) {
      const std::size_t at = random() % record.size();
      switch (random() % 3) {
        case 0:
          record[at] = alphabet[random() % alphabet.size()];
          break;
        case 1:
          record.erase(at, 1 + random() % 3);
          break;
        default:
          record.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
      }
    }
    ParseRequestResult result;
    ASSERT_NO_THROW(result = parse_request(record)) << record;
    if (auto* envelope = std::get_if<RequestEnvelope>(&result)) {
      ++envelopes;
      EXPECT_TRUE(envelope->body.is_object());
      EXPECT_FALSE(envelope->model.empty());
      EXPECT_NO_THROW((void)envelope->body.dump());
    } else {
      EXPECT_FALSE(std::get<PoisonRecord>(result).message.empty());
      EXPECT_LT(std::get<PoisonRecord>(result).message.size(), 512U);
    }
  }
  EXPECT_GT(envelopes, 0U);
}

}  // namespace
}  // namespace kafka_llm::format
