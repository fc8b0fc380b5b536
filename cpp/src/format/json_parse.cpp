#include "kafka_llm/format/json_parse.hpp"

#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {

namespace {

// The parser's messages may quote a whole token ("last read: '…'"), which for an unterminated
// string is the rest of the record; keep error messages small.
constexpr std::size_t kMaxParserMessageBytes = 256;

// "[json.exception.parse_error.101] parse error at line 1, column 4: syntax error …" becomes
// "syntax error …": the exception id and the line/column are noise for single-line records.
std::string clean_parser_message(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    if (const auto close = what.find("] "); close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  if (what.starts_with("parse error")) {
    if (const auto colon = what.find(": "); colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  // The quoted token ends where the parser gave up, which can be inside a multi-byte character
  // ("last read: '\"caf\xC3'"): replace what is not UTF-8, so the message stays valid UTF-8 in
  // JSON and in Kafka headers. Found by tests/fuzz/request_envelope_fuzzer.
  const std::string_view kept = truncate_utf8(what, kMaxParserMessageBytes);
  std::string message = sanitize_utf8(kept);
  if (message.size() > kMaxParserMessageBytes)
    message.resize(truncate_utf8(message, kMaxParserMessageBytes).size());
  if (kept.size() < what.size()) message.append("...");
  return message;
}

}  // namespace

std::optional<JsonError> scan_json(std::string_view text, std::size_t max_depth) {
  if (const auto bad = find_invalid_utf8(text)) {
    return JsonError{JsonErrorKind::kInvalidUtf8, "invalid UTF-8 at byte " + std::to_string(*bad), *bad};
  }
  std::size_t depth = 0;
  bool in_string = false;
  const std::size_t size = text.size();
  for (std::size_t at = 0; at < size; ++at) {
    const char c = text[at];
    if (in_string) {
      if (c == '\\') {
        ++at;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return JsonError{JsonErrorKind::kTooDeep, "JSON nesting deeper than " + std::to_string(max_depth),
                           at};
        }
        break;
      case ']':
      case '}':
        // Unbalanced closers are the parser's to report.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

std::variant<nlohmann::json, JsonError> parse_json(std::string_view text, std::size_t max_depth) {
  if (text.empty()) return JsonError{JsonErrorKind::kEmpty, "empty input", 0};
  if (auto problem = scan_json(text, max_depth)) return std::move(*problem);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann counts bytes from 1; everything here is 0-based.
    const std::size_t byte = e.byte > 0 ? e.byte - 1 : 0;
    return JsonError{JsonErrorKind::kSyntax,
                     clean_parser_message(e.what()) + " at byte " + std::to_string(byte), byte};
  } catch (const nlohmann::json::exception& e) {
    // out_of_range.406 ("number overflow parsing '1e999'") carries no position.
    return JsonError{JsonErrorKind::kSyntax, clean_parser_message(e.what()), std::nullopt};
  }
}

}  // namespace kafka_llm::format
