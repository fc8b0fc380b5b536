#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "kafka_llm/format/format_error.hpp"

namespace kafka_llm::format {

/// Default `max_tokens` of Anthropic requests (required there, optional in OpenAI's API).
inline constexpr std::uint64_t kDefaultAnthropicMaxTokens = 4096;

struct AnthropicRequestOptions {
  std::uint64_t default_max_tokens = kDefaultAnthropicMaxTokens;
};

/// Maps an OpenAI chat request body to an Anthropic Messages request body:
/// - `model`, `stream`, `temperature`, `top_p`, `top_k` copied (temperature is not rescaled:
///   Anthropic accepts 0..1 and rejects more);
/// - `system` and `developer` messages become `system` (their texts joined by a blank line);
///   `user`/`assistant` messages keep their order, string content as is and `text` parts as
///   `{"type":"text","text":…}` blocks;
/// - `max_tokens` = `max_completion_tokens`, else `max_tokens`, else options.default_max_tokens;
/// - `stop` (string or array) becomes `stop_sequences` (an array); `user` becomes
///   `metadata.user_id`.
/// Not mapped, and a FormatError when present: tools and function calling (`tools`, `functions`,
/// `tool_choice`, `function_call`, `tool`/`function` messages, `tool_calls`), non-text content
/// parts (images, audio, files), `n` > 1. Silently dropped (no Anthropic equivalent):
/// `presence_penalty`, `frequency_penalty`, `logit_bias`, `seed`, `logprobs`, `top_logprobs`,
/// `response_format`, `stream_options`, and any other field.
FormatResult<nlohmann::json> to_anthropic_request(const nlohmann::json& openai_chat_body,
                                                  const AnthropicRequestOptions& options = {});

/// Maps an Anthropic Messages response to an OpenAI `chat.completion` body, so clients see one
/// shape: `{"id","object":"chat.completion","created":created_s,"model","choices":[{"index":0,
/// "message":{"role":"assistant","content":<text blocks joined>},"logprobs":null,"finish_reason"}],
/// "usage"}` (usage as read_provider_response reads it, null when absent). Non-text blocks
/// (`tool_use`, `thinking`) are not mapped. A FormatError when the body is not a Messages response.
FormatResult<nlohmann::json> to_openai_chat_completion(const nlohmann::json& anthropic_message,
                                                       std::int64_t created_s);

/// OpenAI's finish_reason for an Anthropic stop_reason: end_turn, stop_sequence and pause_turn →
/// "stop", max_tokens → "length", tool_use → "tool_calls", refusal → "content_filter"; any other
/// value is returned unchanged. Views static storage or `stop_reason`.
std::string_view finish_reason_from_stop_reason(std::string_view stop_reason) noexcept;

}  // namespace kafka_llm::format
