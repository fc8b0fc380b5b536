#pragma once

// Private helpers of the format layer: building JSON text piece by piece (so large values such as
// provider bodies are serialized once, never copied into a temporary document) and naming JSON
// types in error messages.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format::detail {

/// "object", "array", "string", "number", "boolean" or "null".
std::string_view json_type_name(const nlohmann::json& value) noexcept;

/// Appends `text` as a JSON string literal, escaped like nlohmann::json::dump (ensure_ascii off);
/// invalid UTF-8 becomes U+FFFD.
void append_json_string(std::string& out, std::string_view text);

/// `text` as a std::string, with invalid UTF-8 replaced by U+FFFD (a plain copy when valid).
std::string to_valid_utf8(std::string_view text);

/// Appends `value` serialized compactly; invalid UTF-8 in strings becomes U+FFFD (never throws).
void append_json(std::string& out, const nlohmann::json& value);

/// Appends a double the way nlohmann does (shortest round-trip form; NaN/inf become null).
void append_json_number(std::string& out, double value);

/// Appends `json_text`, which must be one valid JSON value (e.g. text nlohmann::json::parse
/// accepted), without its insignificant whitespace, without a leading UTF-8 byte order mark (which
/// the parser skips) and without anything after a NUL byte (which the parser takes for the end of
/// the text): the same value, compact, its bytes otherwise unchanged (member order, number spelling
/// and string escapes are kept).
void append_compact_json(std::string& out, std::string_view json_text);

/// Appends `usage` as nlohmann would serialize `nlohmann::json(usage)` (keys in byte order):
/// `{"completion_tokens":…,"prompt_tokens":…,"total_tokens":…}`.
void append_token_usage(std::string& out, const TokenUsage& usage);

/// Writes one JSON object: `{"a":1,"b":"x"}`. Keys must be plain ASCII without characters that
/// need escaping (they are compile-time literals at every call site).
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;
  ObjectWriter(ObjectWriter&&) = delete;
  ObjectWriter& operator=(ObjectWriter&&) = delete;
  ~ObjectWriter() = default;

  void key(std::string_view name);
  void string(std::string_view name, std::string_view value);
  void optional_string(std::string_view name, const std::optional<std::string>& value);
  void integer(std::string_view name, std::int64_t value);
  void unsigned_integer(std::string_view name, std::uint64_t value);
  void number(std::string_view name, double value);
  void boolean(std::string_view name, bool value);
  void null(std::string_view name);
  void json(std::string_view name, const nlohmann::json& value);
  /// `json_text` as is (must be one valid, compact JSON value).
  void raw(std::string_view name, std::string_view json_text);
  void token_usage(std::string_view name, const TokenUsage& usage);
  void close() { out_.push_back('}'); }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace kafka_llm::format::detail
