#include "kafka_llm/format/sse_parser.hpp"

#include <limits>
#include <utility>

namespace kafka_llm::format {

namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

}  // namespace

SseParser::SseParser(SseParserOptions options) : options_(options) {}

// Counts a line against the event's bound; false (and the parser failed) when it does not fit.
bool SseParser::charge(std::size_t line_bytes) {
  if (line_bytes <= options_.max_event_bytes && event_bytes_ <= options_.max_event_bytes - line_bytes)
    return true;
  error_ = SseError{"SSE event exceeds max_event_bytes " + std::to_string(options_.max_event_bytes)};
  // A failed parser reads nothing more, so what it buffered is dropped: finish() then reports the
  // same (nothing) however the stream was split, and the memory is returned at once. Before, the
  // partial line kept whatever part of the failing line earlier chunks had delivered (found by
  // tests/fuzz/sse_fuzzer).
  std::string().swap(line_);
  std::string().swap(data_);
  event_type_.clear();
  return false;
}

std::optional<SseError> SseParser::feed(std::string_view bytes, std::vector<SseEvent>& events) {
  if (error_) return error_;
  std::size_t at = 0;
  if (skip_line_feed_ && !bytes.empty()) {
    // The previous chunk ended in '\r': a '\n' here belongs to the same line ending.
    skip_line_feed_ = false;
    if (bytes.front() == '\n') at = 1;
  }
  while (at < bytes.size()) {
    const std::size_t end = bytes.find_first_of("\r\n", at);
    if (end == std::string_view::npos) {
      const std::string_view rest = bytes.substr(at);
      if (!charge(line_.size() + rest.size())) return error_;
      line_.append(rest);
      break;
    }
    const std::string_view segment = bytes.substr(at, end - at);
    if (!charge(line_.size() + segment.size())) return error_;
    if (line_.empty()) {
      event_bytes_ += segment.size();
      process_line(segment, events);
    } else {
      line_.append(segment);
      const std::string line = std::exchange(line_, std::string());
      event_bytes_ += line.size();
      process_line(line, events);
    }
    at = end + 1;
    if (bytes[end] == '\r') {
      if (at < bytes.size()) {
        if (bytes[at] == '\n') ++at;
      } else {
        skip_line_feed_ = true;
      }
    }
  }
  return std::nullopt;
}

void SseParser::process_line(std::string_view line, std::vector<SseEvent>& events) {
  if (first_line_) {
    first_line_ = false;
    if (line.starts_with(kByteOrderMark)) line.remove_prefix(kByteOrderMark.size());
  }
  if (line.empty()) {
    dispatch(events);
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line;
  std::string_view value;
  if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_.assign(value);
  } else if (field == "retry") {
    if (value.empty()) return;
    std::uint64_t retry = 0;
    for (const char c : value) {
      if (c < '0' || c > '9') return;
      const auto digit = static_cast<std::uint64_t>(c - '0');
      retry = retry > (std::numeric_limits<std::uint64_t>::max() - digit) / 10
                  ? std::numeric_limits<std::uint64_t>::max()
                  : retry * 10 + digit;
    }
    retry_ms_ = retry;
  }
}

void SseParser::dispatch(std::vector<SseEvent>& events) {
  event_bytes_ = 0;
  if (data_.empty()) {
    event_type_.clear();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  SseEvent event;
  if (!event_type_.empty()) event.type = std::move(event_type_);
  event.data = std::move(data_);
  event.last_event_id = last_event_id_;
  events.push_back(std::move(event));
  data_.clear();
  event_type_.clear();
}

SseEnd SseParser::finish() {
  SseEnd end;
  end.unterminated_line_bytes = line_.size();
  if (!error_) {
    std::vector<SseEvent> tail;
    if (!line_.empty()) {
      const std::string line = std::exchange(line_, std::string());
      process_line(line, tail);
    }
    dispatch(tail);
    if (!tail.empty()) end.truncated_event = std::move(tail.back());
  }
  *this = SseParser(options_);
  return end;
}

}  // namespace kafka_llm::format
