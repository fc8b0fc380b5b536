#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "kafka_llm/format/anthropic_mapping.hpp"
#include "kafka_llm/format/provider_response.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

ProviderOutput expect_output(const std::string& body, ProviderApi api, Endpoint endpoint) {
  auto result = read_provider_response(json::parse(body), api, endpoint);
  if (auto* error = std::get_if<FormatError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->message << " for " << body;
    return {};
  }
  return std::get<ProviderOutput>(std::move(result));
}

std::string expect_error(const std::string& body, ProviderApi api, Endpoint endpoint) {
  auto result = read_provider_response(json::parse(body), api, endpoint);
  if (std::holds_alternative<ProviderOutput>(result)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<FormatError>(result).message;
}

TEST(FormatProviderResponse, OpenAiChatCompletion) {
  const ProviderOutput output = expect_output(
      R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}})",
      ProviderApi::kOpenAi, Endpoint::kChatCompletions);
  ProviderOutput expected;
  expected.text = "Hello there";
  expected.finish_reason = "stop";
  expected.usage = TokenUsage{9, 3, 12};
  expected.model = "gpt-4o-mini-2024-07-18";
  EXPECT_EQ(output, expected);
}

TEST(FormatProviderResponse, OpenAiCompletion) {
  const ProviderOutput output = expect_output(
      R"({"object":"text_completion","model":"m","choices":[{"text":" world","index":0,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":1,"completion_tokens":16,"total_tokens":17}})",
      ProviderApi::kOpenAi, Endpoint::kCompletions);
  EXPECT_EQ(output.text, " world");
  EXPECT_EQ(output.finish_reason, "length");
  EXPECT_EQ(output.usage, (TokenUsage{1, 16, 17}));
}

TEST(FormatProviderResponse, OpenAiEmbeddingsHaveNoText) {
  const ProviderOutput output =
      expect_output(R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],)"
                    R"("model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}})",
                    ProviderApi::kOpenAi, Endpoint::kEmbeddings);
  EXPECT_EQ(output.text, std::nullopt);
  EXPECT_EQ(output.finish_reason, std::nullopt);
  EXPECT_EQ(output.usage, (TokenUsage{5, 0, 5}));
  EXPECT_EQ(output.model, "text-embedding-3-small");
}

TEST(FormatProviderResponse, OpenAiTextVariants) {
  struct Case {
    std::string body;
    Endpoint endpoint;
    std::optional<std::string> text;
  };
  const Case cases[] = {
      {R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]})",
       Endpoint::kChatCompletions, std::nullopt},
      {R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"image_url"},{"text":"b"}]}}]})",
       Endpoint::kChatCompletions, "ab"},
      {R"({"choices":[{"text":"legacy"}]})", Endpoint::kChatCompletions, "legacy"},
      {R"({"choices":[{"message":{"content":"chat"}}]})", Endpoint::kCompletions, "chat"},
      {R"({"choices":[{"message":{"content":"m"},"text":"t"}]})", Endpoint::kChatCompletions, "m"},
      {R"({"choices":[{"message":{"content":"m"},"text":"t"}]})", Endpoint::kCompletions, "t"},
      {R"({"choices":[{"message":{"content":""}}]})", Endpoint::kChatCompletions, ""},
      {R"({"choices":[]})", Endpoint::kChatCompletions, std::nullopt},
      {R"({"choices":[{"message":{"content":"first"}},{"message":{"content":"second"}}]})",
       Endpoint::kChatCompletions, "first"},
      {R"({})", Endpoint::kChatCompletions, std::nullopt},
      {R"({"choices":null,"usage":null,"model":null,"error":null})", Endpoint::kChatCompletions,
       std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_output(c.body, ProviderApi::kOpenAi, c.endpoint).text, c.text) << c.body;
  }
}

TEST(FormatProviderResponse, OpenAiMalformedShapes) {
  struct Case {
    std::string body;
    Endpoint endpoint;
    std::string message;
  };
  const Case cases[] = {
      {"[]", Endpoint::kChatCompletions, "provider response must be a JSON object (got array)"},
      {R"("ok")", Endpoint::kChatCompletions, "provider response must be a JSON object (got string)"},
      {R"({"choices":{}})", Endpoint::kChatCompletions, "choices must be an array (got object)"},
      {R"({"choices":["x"]})", Endpoint::kChatCompletions, "choices[0] must be an object (got string)"},
      {R"({"choices":[{"message":"x"}]})", Endpoint::kChatCompletions,
       "choices[0].message must be an object (got string)"},
      {R"({"choices":[{"message":{"content":5}}]})", Endpoint::kChatCompletions,
       "choices[0].message.content must be a string or an array (got number)"},
      {R"({"choices":[{"message":{"content":[5]}}]})", Endpoint::kChatCompletions,
       "choices[0].message.content[0] must be an object (got number)"},
      {R"({"choices":[{"message":{"content":[{"type":"text","text":5}]}}]})", Endpoint::kChatCompletions,
       "choices[0].message.content[0].text must be a string (got number)"},
      {R"({"choices":[{"text":5}]})", Endpoint::kCompletions,
       "choices[0].text must be a string (got number)"},
      {R"({"choices":[{"finish_reason":1}]})", Endpoint::kChatCompletions,
       "choices[0].finish_reason must be a string (got number)"},
      {R"({"usage":"x"})", Endpoint::kChatCompletions, "usage must be an object (got string)"},
      {R"({"usage":{"prompt_tokens":-1}})", Endpoint::kChatCompletions,
       "usage.prompt_tokens must be a non-negative integer (got number)"},
      {R"({"usage":{"completion_tokens":"3"}})", Endpoint::kChatCompletions,
       "usage.completion_tokens must be a non-negative integer (got string)"},
      {R"({"usage":{"total_tokens":1.5}})", Endpoint::kEmbeddings,
       "usage.total_tokens must be a non-negative integer (got number)"},
      {R"({"model":5})", Endpoint::kChatCompletions, "model must be a string (got number)"},
      {R"({"error":{"message":"Invalid API key","type":"invalid_request_error"}})",
       Endpoint::kChatCompletions, "provider response is an error: Invalid API key"},
      {R"({"error":{"code":500}})", Endpoint::kChatCompletions,
       "provider response is an error: (no message)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(c.body, ProviderApi::kOpenAi, c.endpoint), c.message) << c.body;
  }
}

TEST(FormatProviderResponse, AnthropicMessage) {
  const ProviderOutput output = expect_output(
      R"({"id":"msg_01","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022",)"
      R"("content":[{"type":"text","text":"Hello"},{"type":"tool_use","id":"t","name":"f","input":{}},)"
      R"({"type":"text","text":" world"}],"stop_reason":"end_turn","stop_sequence":null,)"
      R"("usage":{"input_tokens":10,"output_tokens":4,"cache_read_input_tokens":2,"cache_creation_input_tokens":1}})",
      ProviderApi::kAnthropic, Endpoint::kChatCompletions);
  ProviderOutput expected;
  expected.text = "Hello world";
  expected.finish_reason = "stop";
  expected.usage = TokenUsage{13, 4, 17};
  expected.model = "claude-3-5-sonnet-20241022";
  EXPECT_EQ(output, expected);
}

TEST(FormatProviderResponse, AnthropicToleratesMissingFields) {
  EXPECT_EQ(expect_output("{}", ProviderApi::kAnthropic, Endpoint::kChatCompletions), ProviderOutput{});
  const ProviderOutput tools_only = expect_output(
      R"({"content":[{"type":"tool_use","id":"t"}],"stop_reason":"tool_use","usage":{"output_tokens":7}})",
      ProviderApi::kAnthropic, Endpoint::kChatCompletions);
  EXPECT_EQ(tools_only.text, std::nullopt);
  EXPECT_EQ(tools_only.finish_reason, "tool_calls");
  EXPECT_EQ(tools_only.usage, (TokenUsage{0, 7, 7}));
  EXPECT_EQ(expect_output(R"({"content":[]})", ProviderApi::kAnthropic, Endpoint::kChatCompletions).text,
            std::nullopt);
}

TEST(FormatProviderResponse, AnthropicMalformedShapes) {
  struct Case {
    std::string body;
    std::string message;
  };
  const Case cases[] = {
      {"[1]", "provider response must be a JSON object (got array)"},
      {R"({"content":"Hello"})", "content must be an array (got string)"},
      {R"({"content":[1]})", "content[0] must be an object (got number)"},
      {R"({"content":[{"type":"text","text":5}]})", "content[0].text must be a string (got number)"},
      {R"({"stop_reason":5})", "stop_reason must be a string (got number)"},
      {R"({"usage":{"output_tokens":"x"}})",
       "usage.output_tokens must be a non-negative integer (got string)"},
      {R"({"usage":[]})", "usage must be an object (got array)"},
      {R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       "provider response is an error: Overloaded"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(c.body, ProviderApi::kAnthropic, Endpoint::kChatCompletions), c.message) << c.body;
  }
}

TEST(FormatProviderResponse, StopReasonMapping) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"end_turn", "stop"},       {"stop_sequence", "stop"},
      {"pause_turn", "stop"},     {"max_tokens", "length"},
      {"tool_use", "tool_calls"}, {"refusal", "content_filter"},
      {"brand_new", "brand_new"}, {"", ""},
  };
  for (const auto& [stop_reason, finish_reason] : cases) {
    EXPECT_EQ(finish_reason_from_stop_reason(stop_reason), finish_reason) << stop_reason;
  }
}

TEST(FormatProviderResponse, ErrorMessages) {
  struct Case {
    std::string body;
    std::optional<std::string> message;
  };
  const Case cases[] = {
      {R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}})",
       "Incorrect API key provided"},
      {R"({"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}})", "Rate limited"},
      {R"({"error":"model not found"})", "model not found"},
      {R"({"message":"upstream timeout"})", "upstream timeout"},
      {R"({"error":{"code":1},"message":"fallback"})", "fallback"},
      {R"({"detail":"not found"})", std::nullopt},
      {R"({"error":{"message":5}})", std::nullopt},
      {"[]", std::nullopt},
      {R"("plain")", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(provider_error_message(json::parse(c.body)), c.message) << c.body;
  }
}

TEST(FormatTokenEstimate, Heuristic) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  struct Case {
    std::size_t prompt_bytes;
    std::string body;
    Endpoint endpoint;
    std::uint64_t tokens;
  };
  const Case cases[] = {
      {0, "{}", Endpoint::kChatCompletions, 256},
      {10, "{}", Endpoint::kChatCompletions, 3 + 256},
      {12, "{}", Endpoint::kCompletions, 3 + 256},
      {10, R"({"max_tokens":100})", Endpoint::kChatCompletions, 103},
      {10, R"({"max_completion_tokens":50,"max_tokens":100})", Endpoint::kChatCompletions, 53},
      {10, R"({"max_tokens":10,"n":3})", Endpoint::kChatCompletions, 33},
      {0, R"({"max_tokens":1,"n":1000})", Endpoint::kCompletions, 128},
      {4, R"({"max_tokens":0})", Endpoint::kChatCompletions, 257},
      {4, R"({"max_tokens":-5,"n":0})", Endpoint::kChatCompletions, 257},
      {4, R"({"max_tokens":"10","n":"2"})", Endpoint::kChatCompletions, 257},
      {4, R"({"max_tokens":12.0})", Endpoint::kChatCompletions, 257},
      {8, R"({"max_tokens":100})", Endpoint::kEmbeddings, 2},
      {0, "{}", Endpoint::kEmbeddings, 1},
      {1, "{}", Endpoint::kEmbeddings, 1},
      {5, "{}", Endpoint::kEmbeddings, 2},
      {0, R"({"max_tokens":18446744073709551615,"n":2})", Endpoint::kChatCompletions, kMax},
      {8, R"({"max_tokens":18446744073709551615})", Endpoint::kChatCompletions, kMax},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(estimate_tokens(c.prompt_bytes, json::parse(c.body), c.endpoint), c.tokens)
        << c.prompt_bytes << " " << c.body;
  }
  EXPECT_EQ(estimate_tokens(0, json::object(), Endpoint::kCompletions, 0), 1U);
  EXPECT_EQ(estimate_tokens(40, json::object(), Endpoint::kCompletions, 1000), 1010U);
}

TEST(FormatTokenEstimate, FromEnvelope) {
  const auto parsed = parse_request(
      R"({"path":"/v1/chat/completions","body":{"model":"m","max_tokens":20,)"
      R"("messages":[{"role":"system","content":"12345678"},{"role":"user","content":"1234"}]}})");
  ASSERT_TRUE(std::holds_alternative<RequestEnvelope>(parsed));
  EXPECT_EQ(estimate_tokens(std::get<RequestEnvelope>(parsed)), 3U + 20U);
}

}  // namespace
}  // namespace kafka_llm::format
