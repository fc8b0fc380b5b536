#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kafka_llm::mock_provider {

/// Appends compact JSON to a caller-owned string. The response bodies have fixed shapes, so
/// writing them directly avoids building a DOM per request on the hot path. The caller keeps
/// `out` alive and balances begin_*/end_* calls. Bytes that are not well-formed UTF-8 are
/// written as U+FFFD, so the output is always valid JSON.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) noexcept : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view text);
  JsonWriter& integer(std::int64_t number);
  JsonWriter& number(double number);
  JsonWriter& real32(float number);
  JsonWriter& boolean(bool flag);
  JsonWriter& null();
  /// Inserts `json`, which must already be a valid JSON value.
  JsonWriter& raw(std::string_view json);

  /// Shorthands for `key(name)` followed by the value.
  JsonWriter& string_field(std::string_view name, std::string_view text) { return key(name).string(text); }
  JsonWriter& integer_field(std::string_view name, std::int64_t number) { return key(name).integer(number); }
  JsonWriter& null_field(std::string_view name) { return key(name).null(); }

  /// Appends `text` as a quoted JSON string to `out`.
  static void append_escaped(std::string& out, std::string_view text);

 private:
  void before_value();

  std::string& out_;
  bool need_comma_ = false;
};

}  // namespace kafka_llm::mock_provider
