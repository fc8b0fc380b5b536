#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "kafka_llm/format/format_error.hpp"
#include "kafka_llm/format/sse_parser.hpp"
#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format {

/// What an OpenAI-compatible streaming event is.
enum class OpenAiStreamKind : std::uint8_t {
  kChunk,  ///< a `chat.completion.chunk` / `text_completion` chunk
  kDone,   ///< the `[DONE]` sentinel: the stream is complete
  kError,  ///< an in-stream error object (`{"error": {…}}`)
};

/// One OpenAI-compatible stream event, read.
struct OpenAiStreamChunk {
  OpenAiStreamKind kind = OpenAiStreamKind::kChunk;
  nlohmann::json chunk;  ///< the parsed data (the frame's `chunk`, unchanged); null for kDone
  /// `choices[0].delta.content` (chat; text parts joined) or `choices[0].text` (completions); empty
  /// when the chunk carries none (role-only first chunk, usage-only last chunk).
  std::string delta_text;
  std::optional<std::string> finish_reason;  ///< `choices[0].finish_reason` when non-null
  std::optional<TokenUsage> usage;           ///< the final usage chunk (stream_options.include_usage)
  std::optional<std::string> error_message;  ///< kError: the error's message
};

/// Reads one SSE event of an OpenAI-compatible stream. `data` is "[DONE]" (surrounding whitespace
/// ignored) or one JSON object, parsed with parse_json's UTF-8 and depth checks. A FormatError for
/// data that is not JSON or not an object, or a present field of the wrong shape.
FormatResult<OpenAiStreamChunk> read_openai_stream_event(const SseEvent& event);

}  // namespace kafka_llm::format
