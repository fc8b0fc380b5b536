// Fuzz target: the SSE parser (provider token streams are untrusted bytes from the network) and the
// two stream-event readers behind it. The input is one `text/event-stream` body. Invariants:
// - the outcome does not depend on how the stream is split: feeding it in one piece, in chunks
//   whose sizes derive from the data (so libFuzzer can steer them), and byte by byte gives the
//   same events, the same error, the same leftovers at finish() and the same retry value — both
//   with the default bound and with a small max_event_bytes that makes the bound trip;
// - events never carry line terminators where the format cannot have them, have a non-empty type,
//   an id without NUL, and fit the bound;
// - read_openai_stream_event / read_anthropic_stream_event never throw; what they accept is
//   consistent (kDone is exactly "[DONE]", kinds follow the data's `type`, parsed JSON serializes
//   strictly) and what they reject has a non-empty, valid UTF-8 message.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "kafka_llm/format/anthropic_stream.hpp"
#include "kafka_llm/format/openai_stream.hpp"
#include "kafka_llm/format/sse_parser.hpp"
#include "kafka_llm/policy/split_mix64.hpp"

namespace {

using kafka_llm::fuzz::valid_utf8;
using nlohmann::json;
namespace format = kafka_llm::format;

// Byte-by-byte feeding is quadratic in nothing but slow in absolute terms; bound it.
constexpr std::size_t kMaxBytewiseInput = 4096;
constexpr std::size_t kMaxErrorMessageBytes = 512;

struct Outcome {
  std::vector<format::SseEvent> events;
  std::optional<format::SseError> error;
  std::optional<std::uint64_t> retry_ms;
  bool failed = false;
  format::SseEnd end;
};

bool operator==(const format::SseEnd& a, const format::SseEnd& b) {
  return a.truncated_event == b.truncated_event && a.unterminated_line_bytes == b.unterminated_line_bytes;
}

Outcome parse_in_chunks(std::string_view stream, const format::SseParserOptions& options,
                        const std::vector<std::size_t>& chunk_sizes) {
  format::SseParser parser(options);
  Outcome outcome;
  std::size_t at = 0;
  std::size_t next = 0;
  while (at < stream.size()) {
    const std::size_t size = chunk_sizes.empty() ? stream.size() : chunk_sizes[next++ % chunk_sizes.size()];
    const std::string_view chunk = stream.substr(at, size);
    at += chunk.size();
    auto error = parser.feed(chunk, outcome.events);
    if (error) {
      // Once failed, the parser stays failed and repeats the error without reading.
      FUZZ_CHECK(parser.failed(), error->message);
      FUZZ_CHECK(!outcome.error || *outcome.error == *error, error->message);
      outcome.error = std::move(error);
    } else {
      FUZZ_CHECK(!outcome.error, "feed succeeded after a failure");
    }
    if (chunk_sizes.size() > 1 && next % 7 == 0) {
      // An empty chunk must change nothing.
      const auto again = parser.feed({}, outcome.events);
      FUZZ_CHECK(again == outcome.error, "empty feed changed the error state");
    }
  }
  outcome.retry_ms = parser.retry_ms();
  outcome.failed = parser.failed();
  outcome.end = parser.finish();
  FUZZ_CHECK(!parser.failed() && !parser.retry_ms(), "finish() must reset the parser");
  return outcome;
}

void check_same(const Outcome& a, const Outcome& b, std::string_view how) {
  FUZZ_CHECK(a.events == b.events, how);
  FUZZ_CHECK(a.error == b.error, how);
  FUZZ_CHECK(a.failed == b.failed, how);
  FUZZ_CHECK(a.retry_ms == b.retry_ms, how);
  FUZZ_CHECK(a.end == b.end, how);
}

void check_event(const format::SseEvent& event, const format::SseParserOptions& options) {
  FUZZ_CHECK(!event.type.empty(), "empty event type");
  FUZZ_CHECK(event.type.find_first_of("\r\n") == std::string::npos, event.type);
  FUZZ_CHECK(event.data.find('\r') == std::string::npos, event.data);
  FUZZ_CHECK(event.last_event_id.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos,
             event.last_event_id);
  FUZZ_CHECK(event.data.size() <= options.max_event_bytes, "event larger than max_event_bytes");
}

bool dumps_strictly(const json& value) {
  try {
    (void)value.dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\r\n";
  const auto begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kWhitespace) - begin + 1);
}

void check_rejection(const format::FormatError& error) {
  FUZZ_CHECK(!error.message.empty(), "empty FormatError");
  FUZZ_CHECK(error.message.size() <= kMaxErrorMessageBytes, error.message);
  FUZZ_CHECK(valid_utf8(error.message), error.message);
}

void check_openai(const format::SseEvent& event) {
  const auto read = format::read_openai_stream_event(event);
  if (const auto* error = std::get_if<format::FormatError>(&read)) {
    check_rejection(*error);
    return;
  }
  const auto& chunk = std::get<format::OpenAiStreamChunk>(read);
  FUZZ_CHECK((chunk.kind == format::OpenAiStreamKind::kDone) == (trim(event.data) == "[DONE]"), event.data);
  switch (chunk.kind) {
    case format::OpenAiStreamKind::kDone:
      FUZZ_CHECK(chunk.chunk.is_null() && chunk.delta_text.empty() && !chunk.usage, event.data);
      break;
    case format::OpenAiStreamKind::kError:
      FUZZ_CHECK(chunk.chunk.is_object() && chunk.chunk.contains("error"), event.data);
      FUZZ_CHECK(chunk.error_message && valid_utf8(*chunk.error_message), event.data);
      break;
    case format::OpenAiStreamKind::kChunk:
      FUZZ_CHECK(chunk.chunk.is_object() && !chunk.error_message, event.data);
      break;
  }
  FUZZ_CHECK(valid_utf8(chunk.delta_text), event.data);
  FUZZ_CHECK(!chunk.finish_reason || valid_utf8(*chunk.finish_reason), event.data);
  FUZZ_CHECK(dumps_strictly(chunk.chunk), event.data);
}

std::optional<format::AnthropicStreamKind> known_kind(std::string_view type) {
  using Kind = format::AnthropicStreamKind;
  if (type == "message_start") return Kind::kMessageStart;
  if (type == "content_block_start") return Kind::kContentBlockStart;
  if (type == "content_block_delta") return Kind::kContentBlockDelta;
  if (type == "content_block_stop") return Kind::kContentBlockStop;
  if (type == "message_delta") return Kind::kMessageDelta;
  if (type == "message_stop") return Kind::kMessageStop;
  if (type == "ping") return Kind::kPing;
  if (type == "error") return Kind::kError;
  return std::nullopt;
}

void check_anthropic(const format::SseEvent& event) {
  const auto read = format::read_anthropic_stream_event(event);
  if (const auto* error = std::get_if<format::FormatError>(&read)) {
    check_rejection(*error);
    return;
  }
  const auto& out = std::get<format::AnthropicStreamEvent>(read);
  FUZZ_CHECK(out.event.is_object(), event.data);
  const auto type = out.event.find("type");
  const std::string_view name = type != out.event.end() && type->is_string()
                                    ? std::string_view(type->get_ref<const std::string&>())
                                    : std::string_view(event.type);
  FUZZ_CHECK(out.kind == known_kind(name).value_or(format::AnthropicStreamKind::kOther), event.data);
  if (!out.delta_text.empty())
    FUZZ_CHECK(out.kind == format::AnthropicStreamKind::kContentBlockDelta, event.data);
  if (out.finish_reason) FUZZ_CHECK(out.stop_reason.has_value(), event.data);
  FUZZ_CHECK(out.kind != format::AnthropicStreamKind::kError || out.error_message.has_value(), event.data);
  FUZZ_CHECK(valid_utf8(out.delta_text), event.data);
  FUZZ_CHECK(!out.model || valid_utf8(*out.model), event.data);
  FUZZ_CHECK(dumps_strictly(out.event), event.data);
}

// Chunk sizes from a hash of the data: any change to the input moves the split points.
std::vector<std::size_t> data_derived_chunk_sizes(std::string_view stream) {
  std::uint64_t seed = 0xcbf29ce484222325ULL;  // FNV-1a
  for (const char c : stream) seed = (seed ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  kafka_llm::policy::SplitMix64 random(seed);
  std::vector<std::size_t> sizes(16);
  for (auto& size : sizes) {
    // Mostly small chunks (they split "\r\n", field names and the BOM), some large ones.
    const std::uint64_t r = random();
    size = (r & 3U) == 0 ? 1 + (r >> 8U) % 256 : 1 + (r >> 8U) % 5;
  }
  return sizes;
}

void run(std::string_view stream, const format::SseParserOptions& options) {
  const Outcome whole = parse_in_chunks(stream, options, {});
  for (const auto& event : whole.events) check_event(event, options);
  if (whole.end.truncated_event) check_event(*whole.end.truncated_event, options);
  if (whole.error) FUZZ_CHECK(!whole.error->message.empty(), "empty SseError");

  check_same(whole, parse_in_chunks(stream, options, data_derived_chunk_sizes(stream)), "data-derived split");
  if (stream.size() <= kMaxBytewiseInput)
    check_same(whole, parse_in_chunks(stream, options, {1}), "bytewise");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);

  const format::SseParserOptions defaults;
  run(stream, defaults);

  // A small bound, picked by the data, so the failure path is reached too.
  format::SseParserOptions tight;
  tight.max_event_bytes = size == 0 ? 0 : static_cast<unsigned char>(stream.front()) % 64;
  run(stream, tight);

  // The readers see every event the provider could send, including a truncated final one.
  format::SseParser parser(defaults);
  std::vector<format::SseEvent> events;
  (void)parser.feed(stream, events);
  if (auto end = parser.finish(); end.truncated_event) events.push_back(std::move(*end.truncated_event));
  for (const auto& event : events) {
    check_openai(event);
    check_anthropic(event);
  }
  return 0;
}
