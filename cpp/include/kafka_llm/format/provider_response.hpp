#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/format/endpoint.hpp"
#include "kafka_llm/format/format_error.hpp"
#include "kafka_llm/format/request_envelope.hpp"
#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format {

/// The API family a provider body follows.
enum class ProviderApi : std::uint8_t {
  kOpenAi,     ///< OpenAI and compatible servers (Groq, vLLM, Ollama, Together, the mock provider)
  kAnthropic,  ///< Anthropic Messages API
};

/// What the pipeline needs from a successful provider body.
struct ProviderOutput {
  /// OpenAI chat: `choices[0].message.content` (a string, or the `text` parts of an array joined
  /// without separator; falls back to `choices[0].text`); completions: `choices[0].text` (falls back
  /// to the message content); embeddings: always nullopt. Anthropic: the `text` of every `text`
  /// block of `content`, joined without separator. nullopt when absent or null.
  std::optional<std::string> text;
  /// OpenAI `choices[0].finish_reason`; Anthropic `stop_reason` mapped to OpenAI's vocabulary
  /// (finish_reason_from_stop_reason in anthropic_mapping.hpp).
  std::optional<std::string> finish_reason;
  /// OpenAI `usage` (total defaults to prompt + completion); Anthropic `usage`: prompt =
  /// input_tokens + cache_creation_input_tokens + cache_read_input_tokens, completion =
  /// output_tokens, total = their sum.
  std::optional<TokenUsage> usage;
  /// The body's `model` (the exact model version that answered; the `model_version` header).
  std::optional<std::string> model;

  bool operator==(const ProviderOutput&) const = default;
};

/// Reads a successful provider body. Missing fields are tolerated (nullopt); a present field of
/// the wrong shape (e.g. `choices` not an array, a negative token count) or a body that is an
/// error object (`{"error": …}`, Anthropic `{"type": "error", …}`) is a FormatError naming it.
FormatResult<ProviderOutput> read_provider_response(const nlohmann::json& body, ProviderApi api,
                                                    Endpoint endpoint);

/// A provider body checked and read in one pass without building its document: what the
/// pipeline needs from a body whose bytes it passes on unchanged.
struct ScannedProviderBody {
  bool valid = false;      ///< exactly what nlohmann::json::parse accepts (syntax, UTF-8 in strings)
  bool is_object = false;  ///< valid and a JSON object
  bool compact = false;    ///< valid, and compact_json(text) == text (nothing to drop)
  /// When is_object: an object with only the members read_provider_response (OpenAI) and
  /// provider_error_message look at: `model`, `usage`, `error`, `message`, `type`, and `choices`
  /// reduced to its first element, itself reduced to `finish_reason`, `text` and `message.content`
  /// (members of an unexpected type are kept whole, so reading them fails the same way). Null
  /// otherwise.
  nlohmann::json members;
};

/// Reads `text` with read_json_document (nlohmann's SAX parser when it nests deeper than 256),
/// keeping only ScannedProviderBody::members, so
/// `read_provider_response(scan_provider_body(t).members, ProviderApi::kOpenAi, e)` equals
/// `read_provider_response(nlohmann::json::parse(t), ProviderApi::kOpenAi, e)` for every valid
/// object `t` (and likewise provider_error_message). Never throws except std::bad_alloc.
ScannedProviderBody scan_provider_body(std::string_view text);

/// The human message of a provider error body: `error.message` (OpenAI and Anthropic), `error`
/// when it is a string, or a top-level `message` string (vLLM/Ollama style). nullopt otherwise.
std::optional<std::string> provider_error_message(const nlohmann::json& body);

/// Completion budget assumed when a request sets no max_tokens.
inline constexpr std::uint64_t kDefaultEstimatedCompletionTokens = 256;

/// Tokens a request may consume, for TPM rate limiting before the provider reports real usage.
/// Heuristic: ceil(prompt_bytes / 4) (about four bytes of English text per token) plus the
/// completion budget: `max_completion_tokens`, else `max_tokens`, else `default_max_tokens`, times
/// `n` (capped at 128); embeddings have no completion budget. Saturates instead of overflowing and is
/// at least 1.
std::uint64_t estimate_tokens(std::size_t prompt_bytes, const nlohmann::json& body, Endpoint endpoint,
                              std::uint64_t default_max_tokens = kDefaultEstimatedCompletionTokens);

/// estimate_tokens(request.prompt_bytes, request.body, request.endpoint, default_max_tokens).
std::uint64_t estimate_tokens(const RequestEnvelope& request,
                              std::uint64_t default_max_tokens = kDefaultEstimatedCompletionTokens);

}  // namespace kafka_llm::format
