#include <gtest/gtest.h>

#include <string>

#include "kafka_llm/format/anthropic_mapping.hpp"
#include "kafka_llm/format/provider_response.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

json expect_json(FormatResult<json> result) {
  if (auto* error = std::get_if<FormatError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return nullptr;
  }
  return std::get<json>(std::move(result));
}

std::string expect_error(FormatResult<json> result) {
  if (std::holds_alternative<json>(result)) {
    ADD_FAILURE() << "expected an error, got " << std::get<json>(result).dump();
    return {};
  }
  return std::get<FormatError>(result).message;
}

TEST(FormatAnthropicMapping, ChatRequestMapsEveryMappedField) {
  const json openai = json::parse(R"({
      "model": "claude-3-5-sonnet-20241022",
      "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use English."}]},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Tell me"}, {"type": "text", "text": " a joke"}]}
      ],
      "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop": "END", "stream": true,
      "user": "u-1", "presence_penalty": 0.1, "frequency_penalty": 0.2, "seed": 3, "n": 1,
      "logit_bias": {"1": 2}, "response_format": {"type": "text"}, "stream_options": {"include_usage": true}})");
  const json expected = json::parse(R"({
      "model": "claude-3-5-sonnet-20241022",
      "system": "Be brief.\n\nUse English.",
      "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Tell me"}, {"type": "text", "text": " a joke"}]}
      ],
      "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
      "stream": true, "metadata": {"user_id": "u-1"}})");
  EXPECT_EQ(expect_json(to_anthropic_request(openai)), expected);
}

TEST(FormatAnthropicMapping, MaxTokensDefaultsAndPrecedence) {
  const std::string messages = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(expect_json(to_anthropic_request(json::parse(R"({"model":"c",)" + messages + "}")))["max_tokens"],
            4096);
  AnthropicRequestOptions options;
  options.default_max_tokens = 1024;
  EXPECT_EQ(expect_json(to_anthropic_request(json::parse(R"({"model":"c",)" + messages + "}"),
                                             options))["max_tokens"],
            1024);
  EXPECT_EQ(
      expect_json(to_anthropic_request(json::parse(
          R"({"model":"c","max_tokens":10,"max_completion_tokens":20,)" + messages + "}")))["max_tokens"],
      20);
  EXPECT_EQ(
      expect_json(to_anthropic_request(json::parse(
          R"({"model":"c","max_completion_tokens":20,"max_tokens":10,)" + messages + "}")))["max_tokens"],
      20);
  EXPECT_EQ(expect_json(to_anthropic_request(
                json::parse(R"({"model":"c","max_tokens":null,)" + messages + "}")))["max_tokens"],
            4096);
}

TEST(FormatAnthropicMapping, MinimalRequestHasNoOptionalFields) {
  const json mapped = expect_json(
      to_anthropic_request(json::parse(R"({"model":"c","messages":[{"role":"user","content":"x"}]})")));
  EXPECT_EQ(mapped,
            json::parse(R"({"model":"c","messages":[{"role":"user","content":"x"}],"max_tokens":4096})"));
}

TEST(FormatAnthropicMapping, StopArrayIsCopied) {
  const json mapped = expect_json(to_anthropic_request(
      json::parse(R"({"model":"c","stop":["a","b"],"messages":[{"role":"user","content":"x"}]})")));
  EXPECT_EQ(mapped["stop_sequences"], json::parse(R"(["a","b"])"));
}

TEST(FormatAnthropicMapping, UnmappableRequestsAreErrors) {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::string user = R"({"role":"user","content":"x"})";
  const Case cases[] = {
      {"[]", "body must be a JSON object (got array)"},
      {R"({"model":"c","tools":[],"messages":[)" + user + "]}", "body.tools is not supported for Anthropic"},
      {R"({"model":"c","functions":[],"messages":[)" + user + "]}",
       "body.functions is not supported for Anthropic"},
      {R"({"model":"c","tool_choice":"auto","messages":[)" + user + "]}",
       "body.tool_choice is not supported for Anthropic"},
      {R"({"model":"c","function_call":"auto","messages":[)" + user + "]}",
       "body.function_call is not supported for Anthropic"},
      {R"({"messages":[)" + user + "]}", "body.model is required"},
      {R"({"model":1,"messages":[)" + user + "]}", "body.model must be a string (got number)"},
      {R"({"model":"c"})", "body.messages is required"},
      {R"({"model":"c","messages":{}})", "body.messages must be an array (got object)"},
      {R"({"model":"c","messages":["x"]})", "body.messages[0] must be an object (got string)"},
      {R"({"model":"c","messages":[{"content":"x"}]})", "body.messages[0].role is required"},
      {R"({"model":"c","messages":[{"role":1,"content":"x"}]})",
       "body.messages[0].role must be a string (got number)"},
      {R"({"model":"c","messages":[)" + user + R"(,{"role":"tool","content":"r","tool_call_id":"t"}]})",
       "body.messages[1] with role \"tool\" is not supported for Anthropic"},
      {R"({"model":"c","messages":[{"role":"function","content":"r"}]})",
       "body.messages[0] with role \"function\" is not supported for Anthropic"},
      {R"({"model":"c","messages":[{"role":"user","content":[{"type":"text","text":"see"},)"
       R"({"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]})",
       "body.messages[0].content[1] of type \"image_url\" is not supported for Anthropic"},
      {R"({"model":"c","messages":[)" + user +
           R"(,{"role":"assistant","content":null,"tool_calls":[{"id":"t"}]}]})",
       "body.messages[1].tool_calls is not supported for Anthropic"},
      {R"({"model":"c","messages":[{"role":"user"}]})", "body.messages[0].content is required"},
      {R"({"model":"c","messages":[{"role":"user","content":5}]})",
       "body.messages[0].content must be a string or an array (got number)"},
      {R"({"model":"c","messages":[{"role":"user","content":[{"text":"x"}]}]})",
       "body.messages[0].content[0].type is required"},
      {R"({"model":"c","messages":[{"role":"user","content":[{"type":"text","text":1}]}]})",
       "body.messages[0].content[0].text must be a string (got number)"},
      {R"({"model":"c","messages":[{"role":"user","content":[{"type":"text"}]}]})",
       "body.messages[0].content[0].text is required"},
      {R"({"model":"c","messages":[{"role":"system","content":5}]})",
       "body.messages[0].content must be a string or an array (got number)"},
      {R"({"model":"c","messages":[{"role":"system","content":"only system"}]})",
       "body.messages has no user or assistant message"},
      {R"({"model":"c","messages":[]})", "body.messages has no user or assistant message"},
      {R"({"model":"c","max_tokens":0,"messages":[)" + user + "]}",
       "body.max_tokens must be a positive integer (got number)"},
      {R"({"model":"c","max_tokens":"9","messages":[)" + user + "]}",
       "body.max_tokens must be a positive integer (got string)"},
      {R"({"model":"c","max_completion_tokens":-1,"messages":[)" + user + "]}",
       "body.max_completion_tokens must be a positive integer (got number)"},
      {R"({"model":"c","stop":5,"messages":[)" + user + "]}",
       "body.stop must be a string or an array of strings (got number)"},
      {R"({"model":"c","stop":["a",1],"messages":[)" + user + "]}",
       "body.stop must be a string or an array of strings (got array)"},
      {R"({"model":"c","temperature":"hot","messages":[)" + user + "]}",
       "body.temperature must be a number (got string)"},
      {R"({"model":"c","top_p":[],"messages":[)" + user + "]}", "body.top_p must be a number (got array)"},
      {R"({"model":"c","n":2,"messages":[)" + user + "]}",
       "body.n other than 1 is not supported for Anthropic"},
      {R"({"model":"c","stream":"yes","messages":[)" + user + "]}",
       "body.stream must be a boolean (got string)"},
      {R"({"model":"c","user":5,"messages":[)" + user + "]}", "body.user must be a string (got number)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(to_anthropic_request(json::parse(c.body))), c.message) << c.body;
  }
}

const char* const kAnthropicResponse = R"({
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
    "model": "claude-3-5-sonnet-20241022",
    "content": [{"type": "text", "text": "Why did the"}, {"type": "text", "text": " chicken cross?"}],
    "stop_reason": "max_tokens", "stop_sequence": null,
    "usage": {"input_tokens": 12, "output_tokens": 6}})";

TEST(FormatAnthropicMapping, ResponseBecomesChatCompletion) {
  const json mapped = expect_json(to_openai_chat_completion(json::parse(kAnthropicResponse), 1700000000));
  const json expected = json::parse(R"({
      "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "object": "chat.completion", "created": 1700000000,
      "model": "claude-3-5-sonnet-20241022",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Why did the chicken cross?"},
                   "logprobs": null, "finish_reason": "length"}],
      "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}})");
  EXPECT_EQ(mapped, expected);
}

TEST(FormatAnthropicMapping, RoundTripReadsTheSameAsTheNativeBody) {
  const json native = json::parse(kAnthropicResponse);
  const json mapped = expect_json(to_openai_chat_completion(native, 1));
  const auto from_native =
      read_provider_response(native, ProviderApi::kAnthropic, Endpoint::kChatCompletions);
  const auto from_mapped = read_provider_response(mapped, ProviderApi::kOpenAi, Endpoint::kChatCompletions);
  ASSERT_TRUE(std::holds_alternative<ProviderOutput>(from_native));
  ASSERT_TRUE(std::holds_alternative<ProviderOutput>(from_mapped));
  EXPECT_EQ(std::get<ProviderOutput>(from_native), std::get<ProviderOutput>(from_mapped));
  EXPECT_EQ(std::get<ProviderOutput>(from_mapped).text, "Why did the chicken cross?");
}

TEST(FormatAnthropicMapping, RequestRoundTripKeepsConversationText) {
  const json openai = json::parse(R"({"model":"c","messages":[{"role":"system","content":"S"},)"
                                  R"({"role":"user","content":"U1"},{"role":"assistant","content":"A1"},)"
                                  R"({"role":"user","content":[{"type":"text","text":"U2"}]}]})");
  const json anthropic = expect_json(to_anthropic_request(openai));
  std::string conversation = anthropic["system"].get<std::string>();
  for (const auto& message : anthropic["messages"]) {
    conversation += "|" + message["role"].get<std::string>() + ":";
    if (message["content"].is_string()) {
      conversation += message["content"].get<std::string>();
    } else {
      for (const auto& block : message["content"]) conversation += block["text"].get<std::string>();
    }
  }
  EXPECT_EQ(conversation, "S|user:U1|assistant:A1|user:U2");
}

TEST(FormatAnthropicMapping, ResponseWithoutTextOrUsage) {
  const json mapped = expect_json(to_openai_chat_completion(
      json::parse(R"({"id":"m","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":{}}],)"
                  R"("stop_reason":"tool_use"})"),
      5));
  EXPECT_EQ(mapped["choices"][0]["message"]["content"], "");
  EXPECT_EQ(mapped["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_TRUE(mapped["usage"].is_null());
}

TEST(FormatAnthropicMapping, UnmappableResponsesAreErrors) {
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {"[]", "provider response must be a JSON object (got array)"},
      {R"({"id":"m"})", "content is required"},
      {R"({"content":"text"})", "content must be an array (got string)"},
      {R"({"id":5,"content":[]})", "id must be a string (got number)"},
      {R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       "provider response is an error: Overloaded"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(to_openai_chat_completion(json::parse(c.body), 0)), c.message) << c.body;
  }
}

}  // namespace
}  // namespace kafka_llm::format
