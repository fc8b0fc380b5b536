#include "kafka_llm/format/json_parse.hpp"

#include <algorithm>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdlib>

#include "json_util.hpp"
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

// ---------------------------------------------------------------------------------------------
// JsonReader: recursive descent with nlohmann::json::parse's grammar and number typing (see the
// header). Values are built into a document, or (no document) only checked.

JsonReader::JsonReader(std::string_view text, std::size_t max_depth)
    : at_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {
  if (end_ - at_ >= 3 && static_cast<unsigned char>(at_[0]) == 0xEF &&
      static_cast<unsigned char>(at_[1]) == 0xBB && static_cast<unsigned char>(at_[2]) == 0xBF) {
    at_ += 3;  // nlohmann skips a byte order mark
    compact_ = false;
  }
}

void JsonReader::skip_whitespace() {
  const char* start = at_;
  while (at_ != end_ && (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t')) ++at_;
  if (at_ != start) compact_ = false;
}

char JsonReader::peek() {
  skip_whitespace();
  return at_ == end_ ? '\0' : *at_;
}

bool JsonReader::at_end() {
  skip_whitespace();
  // nlohmann's lexer takes a NUL byte for the end of the input: what follows it is ignored.
  if (at_ != end_ && *at_ == '\0') {
    compact_ = false;
    return true;
  }
  return at_ == end_;
}

bool JsonReader::literal(std::string_view word) {
  if (static_cast<std::size_t>(end_ - at_) < word.size() || std::string_view(at_, word.size()) != word) {
    return false;
  }
  at_ += word.size();
  return true;
}

bool JsonReader::value(nlohmann::json* out) {
  skip_whitespace();
  if (at_ == end_) return false;
  switch (*at_) {
    case '{':
      return object(out);
    case '[':
      return array(out);
    case '"': {
      if (out == nullptr) return string(nullptr);
      std::string text;
      if (!string(&text)) return false;
      *out = std::move(text);
      return true;
    }
    case 't':
      if (out != nullptr) *out = true;
      return literal("true");
    case 'f':
      if (out != nullptr) *out = false;
      return literal("false");
    case 'n':
      if (out != nullptr) *out = nullptr;
      return literal("null");
    default:
      return number(out);
  }
}

bool JsonReader::enter() {
  if (++depth_ <= max_depth_) return true;
  too_deep_ = true;
  return false;
}

bool JsonReader::begin_object() {
  skip_whitespace();
  if (at_ == end_ || *at_ != '{' || !enter()) return false;
  ++at_;
  return true;
}

JsonReader::Next JsonReader::next_member(std::string* key, bool& first) {
  skip_whitespace();
  if (at_ == end_) return Next::kError;
  // The container ends here whether or not it had items ("[]", "[1]"); a trailing comma does
  // not reach this check: after a comma an item must follow.
  if (*at_ == '}') {
    ++at_;
    --depth_;
    return Next::kEnd;
  }
  if (!first) {
    if (*at_ != ',') return Next::kError;
    ++at_;
    skip_whitespace();
    if (at_ == end_) return Next::kError;
  }
  first = false;
  if (*at_ != '"') return Next::kError;
  if (key != nullptr) key->clear();
  if (!string(key)) return Next::kError;
  skip_whitespace();
  if (at_ == end_ || *at_ != ':') return Next::kError;
  ++at_;
  return Next::kItem;
}

bool JsonReader::begin_array() {
  skip_whitespace();
  if (at_ == end_ || *at_ != '[' || !enter()) return false;
  ++at_;
  return true;
}

JsonReader::Next JsonReader::next_element(bool& first) {
  skip_whitespace();
  if (at_ == end_) return Next::kError;
  // The container ends here whether or not it had items ("[]", "[1]"); a trailing comma does
  // not reach this check: after a comma an item must follow.
  if (*at_ == ']') {
    ++at_;
    --depth_;
    return Next::kEnd;
  }
  if (!first) {
    if (*at_ != ',') return Next::kError;
    ++at_;
  }
  first = false;
  return Next::kItem;
}

bool JsonReader::object(nlohmann::json* out) {
  if (!begin_object()) return false;
  nlohmann::json::object_t* members = nullptr;
  if (out != nullptr) {
    *out = nlohmann::json::object();
    members = out->get_ptr<nlohmann::json::object_t*>();
  }
  std::string key;
  bool first = true;
  while (true) {
    switch (next_member(out != nullptr ? &key : nullptr, first)) {
      case Next::kError:
        return false;
      case Next::kEnd:
        return true;
      case Next::kItem:
        break;
    }
    if (members == nullptr) {
      if (!value(nullptr)) return false;
      continue;
    }
    // A repeated key: the last value wins, as in nlohmann's DOM parser.
    auto slot = members->try_emplace(std::move(key)).first;
    if (!value(&slot->second)) return false;
  }
}

bool JsonReader::array(nlohmann::json* out) {
  if (!begin_array()) return false;
  nlohmann::json::array_t* elements = nullptr;
  if (out != nullptr) {
    *out = nlohmann::json::array();
    elements = out->get_ptr<nlohmann::json::array_t*>();
  }
  bool first = true;
  while (true) {
    switch (next_element(first)) {
      case Next::kError:
        return false;
      case Next::kEnd:
        return true;
      case Next::kItem:
        break;
    }
    if (!value(elements != nullptr ? &elements->emplace_back() : nullptr)) return false;
  }
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0U | (code_point >> 6U)));
    out.push_back(static_cast<char>(0x80U | (code_point & 0x3FU)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0U | (code_point >> 12U)));
    out.push_back(static_cast<char>(0x80U | ((code_point >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (code_point & 0x3FU)));
  } else {
    out.push_back(static_cast<char>(0xF0U | (code_point >> 18U)));
    out.push_back(static_cast<char>(0x80U | ((code_point >> 12U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | ((code_point >> 6U) & 0x3FU)));
    out.push_back(static_cast<char>(0x80U | (code_point & 0x3FU)));
  }
}

bool in(unsigned char byte, unsigned char low, unsigned char high) {
  return byte >= low && byte <= high;
}

bool digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

int JsonReader::code_unit() {
  if (end_ - at_ < 4) return -1;
  int unit = 0;
  for (int i = 0; i < 4; ++i) {
    const int hex = hex_digit(at_[i]);
    if (hex < 0) return -1;
    unit = unit * 16 + hex;
  }
  at_ += 4;
  return unit;
}

bool JsonReader::escape(std::string* out) {
  if (at_ == end_) return false;
  const char c = *at_++;
  char decoded = c;
  switch (c) {
    case '"':
    case '\\':
    case '/':
      break;
    case 'b':
      decoded = '\b';
      break;
    case 'f':
      decoded = '\f';
      break;
    case 'n':
      decoded = '\n';
      break;
    case 'r':
      decoded = '\r';
      break;
    case 't':
      decoded = '\t';
      break;
    case 'u': {
      const int first = code_unit();
      if (first < 0) return false;
      auto code_point = static_cast<std::uint32_t>(first);
      if (first >= 0xD800 && first <= 0xDBFF) {
        if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u') return false;
        at_ += 2;
        const int second = code_unit();
        if (second < 0xDC00 || second > 0xDFFF) return false;
        code_point = 0x10000U + ((static_cast<std::uint32_t>(first) - 0xD800U) << 10U) +
                     (static_cast<std::uint32_t>(second) - 0xDC00U);
      } else if (first >= 0xDC00 && first <= 0xDFFF) {
        return false;
      }
      if (out != nullptr) append_utf8(*out, code_point);
      return true;
    }
    default:
      return false;
  }
  if (out != nullptr) out->push_back(decoded);
  return true;
}

bool JsonReader::utf8_sequence() {
  // One UTF-8 sequence starting at a byte >= 0x80, as nlohmann's lexer accepts it (RFC 3629).
  const auto lead = static_cast<unsigned char>(*at_);
  int continuation = 0;
  unsigned char second_low = 0x80;
  unsigned char second_high = 0xBF;
  if (in(lead, 0xC2, 0xDF)) {
    continuation = 1;
  } else if (lead == 0xE0) {
    continuation = 2;
    second_low = 0xA0;
  } else if (in(lead, 0xE1, 0xEC) || in(lead, 0xEE, 0xEF)) {
    continuation = 2;
  } else if (lead == 0xED) {
    continuation = 2;
    second_high = 0x9F;
  } else if (lead == 0xF0) {
    continuation = 3;
    second_low = 0x90;
  } else if (in(lead, 0xF1, 0xF3)) {
    continuation = 3;
  } else if (lead == 0xF4) {
    continuation = 3;
    second_high = 0x8F;
  } else {
    return false;
  }
  if (end_ - at_ <= continuation) return false;
  if (!in(static_cast<unsigned char>(at_[1]), second_low, second_high)) return false;
  for (int i = 2; i <= continuation; ++i) {
    if (!in(static_cast<unsigned char>(at_[i]), 0x80, 0xBF)) return false;
  }
  at_ += continuation + 1;
  return true;
}

bool JsonReader::string(std::string* out) {
  ++at_;  // the opening quote
  const char* run = at_;
  while (true) {
    while (at_ != end_) {
      const auto c = static_cast<unsigned char>(*at_);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++at_;
    }
    if (at_ == end_) return false;
    const auto c = static_cast<unsigned char>(*at_);
    if (c == '"') {
      if (out != nullptr) out->append(run, at_);
      ++at_;
      return true;
    }
    if (c < 0x20) return false;  // control characters must be escaped
    if (c == '\\') {
      if (out != nullptr) out->append(run, at_);
      ++at_;
      if (!escape(out)) return false;
      run = at_;
      continue;
    }
    if (!utf8_sequence()) return false;
  }
}

bool JsonReader::number(nlohmann::json* out) {
  const char* start = at_;
  bool integral = true;
  if (at_ != end_ && *at_ == '-') ++at_;
  if (at_ == end_ || !digit(*at_)) return false;
  if (*at_ == '0') {
    ++at_;
  } else {
    while (at_ != end_ && digit(*at_)) ++at_;
  }
  if (at_ != end_ && *at_ == '.') {
    integral = false;
    ++at_;
    if (at_ == end_ || !digit(*at_)) return false;
    while (at_ != end_ && digit(*at_)) ++at_;
  }
  if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
    integral = false;
    ++at_;
    if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
    if (at_ == end_ || !digit(*at_)) return false;
    while (at_ != end_ && digit(*at_)) ++at_;
  }
  if (integral) {
    // nlohmann: strtoull/strtoll, and a double when the integer does not fit 64 bits.
    if (*start == '-') {
      std::int64_t value = 0;
      if (std::from_chars(start, at_, value).ec == std::errc()) {
        if (out != nullptr) *out = value;
        return true;
      }
    } else {
      std::uint64_t value = 0;
      if (std::from_chars(start, at_, value).ec == std::errc()) {
        if (out != nullptr) *out = value;
        return true;
      }
    }
  }
  double value = 0.0;
  const auto result = std::from_chars(start, at_, value);
  if (result.ec != std::errc() || result.ptr != at_) {
    // Out of double's range: strtod, as nlohmann, decides (overflow is rejected as "number
    // overflow"; underflow gives zero or a subnormal number).
    std::string token(start, at_);
    const char decimal_point = *std::localeconv()->decimal_point;
    if (decimal_point != '.') std::replace(token.begin(), token.end(), '.', decimal_point);
    value = std::strtod(token.c_str(), nullptr);
  }
  if (!std::isfinite(value)) return false;
  if (out != nullptr) *out = value;
  return true;
}

JsonReadStatus read_json_document(std::string_view text, nlohmann::json& out, std::size_t max_depth) {
  JsonReader reader(text, max_depth);
  nlohmann::json document;
  if (!reader.read(document)) return reader.too_deep() ? JsonReadStatus::kTooDeep : JsonReadStatus::kInvalid;
  if (!reader.at_end()) return JsonReadStatus::kInvalid;
  out = std::move(document);
  return JsonReadStatus::kOk;
}

std::string compact_json(std::string_view json_text) {
  std::string out;
  out.reserve(json_text.size());
  detail::append_compact_json(out, json_text);
  return out;
}

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
  nlohmann::json document;
  // scan_json bounded the depth; the parser below words the error when the reader rejects the text.
  if (read_json_document(text, document, max_depth) == JsonReadStatus::kOk) return document;
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
