#include "json_util.hpp"

#include <array>

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
  out.append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void append_json_number(std::string& out, double value) {
  out.append(nlohmann::json(value).dump());
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
  out_.append(std::to_string(value));
}

void ObjectWriter::unsigned_integer(std::string_view name, std::uint64_t value) {
  key(name);
  out_.append(std::to_string(value));
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

}  // namespace kafka_llm::format::detail
