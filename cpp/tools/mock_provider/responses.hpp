#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kafka_llm::mock_provider {

/// The generating endpoints the mock serves.
enum class Endpoint : std::uint8_t {
  kChatCompletions,  ///< POST /v1/chat/completions (OpenAI)
  kCompletions,      ///< POST /v1/completions (OpenAI)
  kEmbeddings,       ///< POST /v1/embeddings (OpenAI)
  kMessages,         ///< POST /v1/messages (Anthropic)
};

/// The endpoint served at `path` (no query string), or nullopt.
std::optional<Endpoint> endpoint_for_path(std::string_view path);

/// Error bodies follow the API family of the endpoint.
enum class ErrorFlavor : std::uint8_t { kOpenAI, kAnthropic };

ErrorFlavor error_flavor(Endpoint endpoint) noexcept;

/// An error answer: status plus the fields of the error body.
struct ApiError {
  unsigned status = 400;
  std::string type;
  std::string code;
  std::string message;
  std::string param;  ///< empty: JSON null
};

/// The error a forced or random status fault answers with (429 -> rate_limit_exceeded, ...).
ApiError status_fault_error(unsigned status);

/// A 400 invalid_request_error with `code` and `message`.
ApiError invalid_request(std::string code, std::string message, std::string param = {});

/// OpenAI: `{"error":{"message","type","param","code"}}`. Anthropic:
/// `{"type":"error","error":{"type","message","code"}}` with Anthropic's error type names.
std::string error_body(const ApiError& error, ErrorFlavor flavor);

/// Values that vary per response.
struct ReplyContext {
  std::uint64_t sequence = 0;     ///< makes the response id unique within the process
  std::int64_t created_unix = 0;  ///< the `created` field
  /// `mock.content`: the generated text is the words of this text joined by single spaces (for
  /// every choice, whatever max_tokens says) instead of "mock reply: <echo> <filler>". Must stay
  /// valid while build_reply runs.
  std::optional<std::string_view> content = std::nullopt;
};

/// A successful answer. Non-streaming answers fill `body`; streaming answers fill `events` with
/// complete Server-Sent Events (`data: ...\n\n`, Anthropic ones with an `event:` line) in order.
struct Reply {
  bool stream = false;
  std::string body;
  std::vector<std::string> events;
};

/// Builds the answer of `endpoint` to the parsed request `body`, or the 400 error explaining what
/// is wrong with the body. Deterministic for a given body and context.
std::variant<Reply, ApiError> build_reply(Endpoint endpoint, const nlohmann::json& body,
                                          const ReplyContext& context);

/// A body that starts like a chat completion but is not valid JSON.
std::string_view malformed_body() noexcept;

/// Number of whitespace-separated words in `text`: the mock's token count.
std::size_t count_words(std::string_view text) noexcept;

}  // namespace kafka_llm::mock_provider
