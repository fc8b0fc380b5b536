#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kafka_llm/format/prompt_hash.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

TEST(FormatPromptHash, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string("a\0b", 3)), sha256_hex(std::string("a\0b", 3)));
  EXPECT_NE(sha256_hex(std::string("a\0b", 3)), sha256_hex("a"));
}

TEST(FormatPromptHash, FieldListIsSortedAndComplete) {
  EXPECT_TRUE(std::is_sorted(kPromptHashFields.begin(), kPromptHashFields.end()));
  EXPECT_TRUE(std::adjacent_find(kPromptHashFields.begin(), kPromptHashFields.end()) ==
              kPromptHashFields.end());
  for (const auto field : kPromptHashFields) EXPECT_FALSE(field.empty());
  for (const auto excluded : {"stream", "stream_options", "user", "metadata", "store", "request_id"}) {
    EXPECT_TRUE(std::find(kPromptHashFields.begin(), kPromptHashFields.end(), excluded) ==
                kPromptHashFields.end())
        << excluded;
  }
}

TEST(FormatPromptHash, CanonicalFormKeepsPromptFieldsInKeyOrder) {
  const json body = json::parse(
      R"({"temperature":0.7,"stream":true,"user":"u1","model":"gpt-4o-mini",)"
      R"("messages":[{"role":"user","content":"Hello"}],"stream_options":{"include_usage":true}})");
  EXPECT_EQ(canonical_prompt_json(body),
            R"({"messages":[{"content":"Hello","role":"user"}],"model":"gpt-4o-mini","temperature":0.7})");
  EXPECT_EQ(prompt_hash(body), "099de6bb42e5b7cb6fa382ba807ed9671157bf8fe50fbe0f31c694e8fc0cd183");
}

TEST(FormatPromptHash, CanonicalValues) {
  struct Case {
    std::string body;
    std::string canonical;
  };
  const Case cases[] = {
      {R"({"model":"m","temperature":1.0})", R"({"model":"m","temperature":1})"},
      {R"({"model":"m","temperature":1})", R"({"model":"m","temperature":1})"},
      {R"({"model":"m","temperature":-0.0})", R"({"model":"m","temperature":0})"},
      {R"({"model":"m","top_p":0.25})", R"({"model":"m","top_p":0.25})"},
      {R"({"model":"m","seed":1e20})", R"({"model":"m","seed":1e+20})"},
      {R"({"model":"m","max_tokens":18446744073709551615})",
       R"({"max_tokens":18446744073709551615,"model":"m"})"},
      {R"({"model":"m","logit_bias":{"50256":-100,"11":1}})",
       R"({"logit_bias":{"11":1,"50256":-100},"model":"m"})"},
      {R"({"model":"m","prompt":"quote \" backslash \\ newline \n tab \t ctrl \u0001"})",
       R"({"model":"m","prompt":"quote \" backslash \\ newline \n tab \t ctrl \u0001"})"},
      {R"({"model":"m","prompt":"caf\u00e9"})", "{\"model\":\"m\",\"prompt\":\"caf\xC3\xA9\"}"},
      {R"({"model":"m","prompt":null,"temperature":null})", R"({"model":"m"})"},
      {R"({"model":"m","stop":["a","b"],"n":2,"echo":false})",
       R"({"echo":false,"model":"m","n":2,"stop":["a","b"]})"},
      {R"({"model":"m","input":[[1,2],[3]],"dimensions":256,"encoding_format":"float"})",
       R"({"dimensions":256,"encoding_format":"float","input":[[1,2],[3]],"model":"m"})"},
      {R"({"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"auto"})",
       R"({"model":"m","tool_choice":"auto","tools":[{"function":{"name":"f","parameters":{}},"type":"function"}]})"},
      {R"({})", "{}"},
      {R"([1,2])", "{}"},
      {R"("text")", "{}"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(canonical_prompt_json(json::parse(c.body)), c.canonical) << c.body;
  }
}

TEST(FormatPromptHash, IdenticalPromptsHashIdentically) {
  const json a = json::parse(
      R"({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}],"temperature":1,"max_tokens":5})");
  const json b = json::parse(R"({
      "max_tokens": 5.0, "temperature": 1.0,
      "messages": [{"content": "s", "role": "system"}, {"content": "u", "role": "user"}],
      "model": "m", "stream": true, "user": "someone", "metadata": {"x": 1}})");
  EXPECT_EQ(prompt_hash(a), prompt_hash(b));
}

TEST(FormatPromptHash, AnyPromptChangeChangesTheHash) {
  const json base =
      json::parse(R"({"model":"m","messages":[{"role":"user","content":"u"}],"temperature":1})");
  const std::string base_hash = prompt_hash(base);
  for (
      const std::string changed : {
          R"({"model":"m2","messages":[{"role":"user","content":"u"}],"temperature":1})",
          R"({"model":"m","messages":[{"role":"user","content":"U"}],"temperature":1})",
          R"({"model":"m","messages":[{"role":"system","content":"u"}],"temperature":1})",
          R"({"model":"m","messages":[{"role":"user","content":"u"}],"temperature":0.9})",
          R"({"model":"m","messages":[{"role":"user","content":"u"}],"temperature":1,"seed":3})",
          R"({"model":"m","messages":[{"role":"user","content":"u"}],"temperature":1,"max_tokens":1})",
          R"({"model":"m","messages":[{"role":"user","content":"u"}],"temperature":1,"stop":"x"})",
          R"({"model":"m","messages":[{"role":"user","content":"u"}],"temperature":1,"system":"x"})",
          R"({"model":"m","messages":[{"role":"user","content":"u"},{"role":"user","content":"u"}],"temperature":1})",
      }) {
    EXPECT_NE(prompt_hash(json::parse(changed)), base_hash) << changed;
  }
}

TEST(FormatPromptHash, InvalidUtf8InMemoryDoesNotThrow) {
  const json body = {{"model", "m"}, {"prompt", std::string("bad \xFF byte")}};
  EXPECT_EQ(canonical_prompt_json(body), "{\"model\":\"m\",\"prompt\":\"bad \xEF\xBF\xBD byte\"}");
}

}  // namespace
}  // namespace kafka_llm::format

namespace kafka_llm::format {
namespace {

// The canonical form as first written: one lookup per field, scalars through nlohmann's dump.
void reference_canonical(std::string& out, const nlohmann::json& value) {
  if (value.is_object()) {
    out.push_back('{');
    bool first = true;
    for (const auto& [key, member] : value.items()) {
      if (!first) out.push_back(',');
      first = false;
      out.append(nlohmann::json(key).dump()).push_back(':');
      reference_canonical(out, member);
    }
    out.push_back('}');
  } else if (value.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const auto& element : value) {
      if (!first) out.push_back(',');
      first = false;
      reference_canonical(out, element);
    }
    out.push_back(']');
  } else if (value.is_number_float() && std::trunc(value.get<double>()) == value.get<double>() &&
             std::fabs(value.get<double>()) <= 9007199254740992.0) {
    out.append(std::to_string(static_cast<long long>(value.get<double>())));
  } else {
    out.append(value.dump());
  }
}

std::string reference_prompt_json(const nlohmann::json& body) {
  std::string out = "{";
  bool first = true;
  for (const std::string_view field : kPromptHashFields) {
    const auto it = body.find(field);
    if (it == body.end() || it->is_null()) continue;
    if (!first) out.push_back(',');
    first = false;
    out.append(nlohmann::json(field).dump()).push_back(':');
    reference_canonical(out, *it);
  }
  return out + "}";
}

TEST(FormatPromptHash, MergedCanonicalFormMatchesTheFieldByFieldForm) {
  const std::vector<std::string> bodies = {
      R"({"model":"m","messages":[{"role":"user","content":"hi \"there\"\n\u00e9"}],"max_tokens":16})",
      R"({"zzz":1,"top_p":0.5,"top_k":-3,"temperature":1.0,"stream":true,"seed":18446744073709551615,"n":null,)"
      R"("logit_bias":{"50256":-100,"1":2.5e-8},"stop":["a",null,true,false],"tools":[{"type":"function"}],)"
      R"("best_of":2,"aaa":"ignored","input":[1,2,3],"prompt":"p","model":"x","response_format":{"b":1,"a":[]}})",
      R"({})",
      R"({"user":"u","metadata":{"k":"v"}})",
  };
  for (const std::string& text : bodies) {
    const auto body = nlohmann::json::parse(text);
    EXPECT_EQ(canonical_prompt_json(body), reference_prompt_json(body)) << text;
  }
}

}  // namespace
}  // namespace kafka_llm::format
