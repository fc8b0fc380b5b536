#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "kafka_llm/format/format_error.hpp"
#include "kafka_llm/format/sse_parser.hpp"

namespace kafka_llm::format {

/// The Anthropic Messages streaming event types.
enum class AnthropicStreamKind : std::uint8_t {
  kMessageStart,
  kContentBlockStart,
  kContentBlockDelta,
  kContentBlockStop,
  kMessageDelta,
  kMessageStop,  ///< the stream is complete
  kPing,
  kError,
  kOther,  ///< a type this version does not know (new event types must be tolerated)
};

/// One Anthropic stream event, read. Token counts are as reported: `message_start` carries the
/// input tokens, `message_delta` the cumulative output tokens, so the last value seen wins.
struct AnthropicStreamEvent {
  AnthropicStreamKind kind = AnthropicStreamKind::kOther;
  nlohmann::json event;    ///< the parsed data (the frame's `chunk`, unchanged)
  std::string delta_text;  ///< `content_block_delta` with a `text_delta`: `delta.text`; else empty
  std::optional<std::string> stop_reason;      ///< `message_delta`: `delta.stop_reason` (raw)
  std::optional<std::string> finish_reason;    ///< stop_reason in OpenAI's vocabulary
  std::optional<std::uint64_t> input_tokens;   ///< `message_start`: `message.usage`, input + cache
  std::optional<std::uint64_t> output_tokens;  ///< `message_start`/`message_delta`: output tokens
  std::optional<std::string> model;            ///< `message_start`: `message.model`
  std::optional<std::string> error_message;    ///< kError: `error.message`
};

/// Reads one SSE event of an Anthropic stream. The kind comes from the data's `type` (the SSE
/// event name when it has none). A FormatError for data that is not a JSON object or a present
/// field of the wrong shape.
FormatResult<AnthropicStreamEvent> read_anthropic_stream_event(const SseEvent& event);

}  // namespace kafka_llm::format
