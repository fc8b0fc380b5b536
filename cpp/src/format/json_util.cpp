#include "json_util.hpp"

#include <array>
#include <charconv>
#include <cmath>

#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format::detail {

std::string_view json_type_name(const nlohmann::json& value) noexcept {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      return "object";
    case nlohmann::json::value_t::array:
      return "array";
    case nlohmann::json::value_t::string:
      return "string";
    case nlohmann::json::value_t::boolean:
      return "boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "number";
    case nlohmann::json::value_t::binary:
      return "binary";
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return "null";
  }
  return "null";
}

namespace {

void append_escaped_valid_utf8(std::string& out, std::string_view text) {
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::size_t run_start = 0;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const auto byte = static_cast<unsigned char>(text[at]);
    if (byte >= 0x20U && byte != '"' && byte != '\\') continue;
    out.append(text.substr(run_start, at - run_start));
    run_start = at + 1;
    switch (byte) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[byte >> 4U]);
        out.push_back(kHex[byte & 0x0FU]);
        break;
    }
  }
  out.append(text.substr(run_start));
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  if (find_invalid_utf8(text)) {
    append_escaped_valid_utf8(out, sanitize_utf8(text));
  } else {
    append_escaped_valid_utf8(out, text);
  }
  out.push_back('"');
}

std::string to_valid_utf8(std::string_view text) {
  if (find_invalid_utf8(text)) return sanitize_utf8(text);
  return std::string(text);
}

void append_json(std::string& out, const nlohmann::json& value) {
  if (value.is_null()) {
    out.append("null");
    return;
  }
  out.append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void append_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out.append("null");
    return;
  }
  // The routine nlohmann's serializer uses for doubles (shortest round trip, "1.0" for integral
  // values), without building a document and a string for each number.
  std::array<char, 64> buffer{};
  char* end = nlohmann::detail::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
}

void append_compact_json(std::string& out, std::string_view json_text) {
  if (json_text.starts_with("\xEF\xBB\xBF")) json_text.remove_prefix(3);
  std::size_t run_start = 0;
  bool in_string = false;
  const std::size_t size = json_text.size();
  std::size_t at = 0;
  for (; at < size; ++at) {
    const char c = json_text[at];
    if (in_string) {
      if (c == '\\') {
        ++at;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      out.append(json_text.substr(run_start, at - run_start));
      run_start = at + 1;
    } else if (c == '\0') {
      break;  // nlohmann's parser takes a NUL byte for the end of the text: nothing after it is JSON
    }
  }
  out.append(json_text.substr(run_start, at - run_start));
}

namespace {

void append_unsigned(std::string& out, std::uint64_t value) {
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), static_cast<std::size_t>(result.ptr - buffer.data()));
}

}  // namespace

void append_token_usage(std::string& out, const TokenUsage& usage) {
  out.append("{\"completion_tokens\":");
  append_unsigned(out, usage.completion_tokens);
  out.append(",\"prompt_tokens\":");
  append_unsigned(out, usage.prompt_tokens);
  out.append(",\"total_tokens\":");
  append_unsigned(out, usage.total_tokens);
  out.push_back('}');
}

void ObjectWriter::key(std::string_view name) {
  if (!first_) out_.push_back(',');
  first_ = false;
  out_.push_back('"');
  out_.append(name);
  out_.append("\":");
}

void ObjectWriter::string(std::string_view name, std::string_view value) {
  key(name);
  append_json_string(out_, value);
}

void ObjectWriter::optional_string(std::string_view name, const std::optional<std::string>& value) {
  if (value) {
    string(name, *value);
  } else {
    null(name);
  }
}

void ObjectWriter::integer(std::string_view name, std::int64_t value) {
  key(name);
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out_.append(buffer.data(), static_cast<std::size_t>(result.ptr - buffer.data()));
}

void ObjectWriter::unsigned_integer(std::string_view name, std::uint64_t value) {
  key(name);
  append_unsigned(out_, value);
}

void ObjectWriter::number(std::string_view name, double value) {
  key(name);
  append_json_number(out_, value);
}

void ObjectWriter::boolean(std::string_view name, bool value) {
  key(name);
  out_.append(value ? "true" : "false");
}

void ObjectWriter::null(std::string_view name) {
  key(name);
  out_.append("null");
}

void ObjectWriter::json(std::string_view name, const nlohmann::json& value) {
  key(name);
  append_json(out_, value);
}

void ObjectWriter::raw(std::string_view name, std::string_view json_text) {
  key(name);
  out_.append(json_text);
}

void ObjectWriter::token_usage(std::string_view name, const TokenUsage& usage) {
  key(name);
  append_token_usage(out_, usage);
}

}  // namespace kafka_llm::format::detail
