#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kafka_llm::format {

/// One dispatched server-sent event (WHATWG HTML, "Interpreting an event stream").
struct SseEvent {
  std::string type = "message";  ///< the `event` field, "message" when none was given
  std::string data;              ///< `data` lines joined by "\n" (no trailing newline)
  std::string last_event_id;     ///< the last `id` seen on the stream so far (it persists)

  bool operator==(const SseEvent&) const = default;
};

/// Default bound on the bytes one event may buffer.
inline constexpr std::size_t kDefaultMaxSseEventBytes = std::size_t{1} << 20U;

struct SseParserOptions {
  /// Bound on one event: the bytes of its lines (everything between two blank lines, comments and
  /// field names included, line terminators not), counting a line still being received. Measured
  /// on lines, not chunks, so the outcome does not depend on how the stream is split; it also
  /// bounds the memory one event can hold.
  std::size_t max_event_bytes = kDefaultMaxSseEventBytes;
};

/// Why an event stream was abandoned.
struct SseError {
  std::string message;  ///< e.g. "SSE event exceeds max_event_bytes 1048576"

  bool operator==(const SseError&) const = default;
};

/// What was left when the stream ended. Empty after a failure (the parser drops what it buffered
/// when an event outgrows max_event_bytes).
struct SseEnd {
  /// The event being built when the stream ended without the blank line that dispatches it, as it
  /// would have been dispatched (a final unterminated line counts as a line). The spec discards
  /// it; callers decide (for example, to report a truncated stream).
  std::optional<SseEvent> truncated_event;
  /// Bytes received after the last complete line (an unterminated final line); 0 when none.
  std::size_t unterminated_line_bytes = 0;
};

/// Incremental `text/event-stream` parser. Feed it byte chunks split anywhere (including between
/// "\r" and "\n"); it handles "\n", "\r\n" and "\r" line endings, a leading UTF-8 BOM, comments
/// (lines starting with ':'), one optional space after the field colon, `event`, `data`, `id`
/// (ignored when it contains NUL) and `retry` (digits only) fields, and ignores other fields.
/// Events with no data are not dispatched, per the spec. Bytes are not UTF-8-checked (callers that
/// parse `data` as JSON check it there). Never throws on any input except std::bad_alloc.
/// Not thread-safe: one parser per stream.
class SseParser {
 public:
  explicit SseParser(SseParserOptions options = {});

  /// Consumes `bytes`, appending every event completed by them to `events` (which is not cleared).
  /// Returns an error once an event outgrows max_event_bytes; the parser then stays failed and
  /// every later feed returns the same error without reading.
  std::optional<SseError> feed(std::string_view bytes, std::vector<SseEvent>& events);

  /// Ends the stream: reports leftovers and resets the parser for a new stream (including the
  /// last event id and the failed state).
  SseEnd finish();

  /// The last valid `retry` field, in milliseconds.
  std::optional<std::uint64_t> retry_ms() const noexcept { return retry_ms_; }

  /// Whether an event outgrew max_event_bytes.
  bool failed() const noexcept { return error_.has_value(); }

 private:
  void process_line(std::string_view line, std::vector<SseEvent>& events);
  void dispatch(std::vector<SseEvent>& events);
  bool charge(std::size_t line_bytes);

  SseParserOptions options_;
  std::string line_;             // the unterminated line so far
  std::size_t event_bytes_ = 0;  // bytes of the current event's complete lines
  std::string data_;             // data buffer, each line followed by '\n'
  std::string event_type_;       // event type buffer
  std::string last_event_id_;
  std::optional<std::uint64_t> retry_ms_;
  std::optional<SseError> error_;
  bool skip_line_feed_ = false;  // the previous chunk ended with '\r'
  bool first_line_ = true;       // a BOM may precede the first line only
};

}  // namespace kafka_llm::format
