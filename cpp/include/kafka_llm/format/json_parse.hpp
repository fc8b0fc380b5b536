#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace kafka_llm::format {

/// Why untrusted JSON text was rejected.
enum class JsonErrorKind : std::uint8_t {
  kEmpty,        ///< zero bytes
  kInvalidUtf8,  ///< not UTF-8 (RFC 8259 requires it)
  kTooDeep,      ///< more nested arrays/objects than allowed
  kSyntax,       ///< the parser's verdict (syntax error, number overflow, bad escape, …)
};

/// A rejected JSON text. `message` is clean and bounded (≤ about 300 bytes, valid UTF-8):
/// "empty input", "invalid UTF-8 at byte N", "JSON nesting deeper than D", or the parser's own
/// message followed by " at byte N". `byte` is the 0-based offset where the problem was found
/// (for kSyntax: the parser's position; nullopt when the parser gave none).
struct JsonError {
  JsonErrorKind kind = JsonErrorKind::kSyntax;
  std::string message;
  std::optional<std::size_t> byte;
};

/// Default limit on nested arrays/objects in untrusted JSON.
inline constexpr std::size_t kDefaultMaxJsonDepth = 64;

/// Linear, non-recursive pre-pass over untrusted JSON bytes: checks UTF-8 validity and that no
/// more than `max_depth` arrays/objects are open at once (brackets inside strings, escapes
/// included, do not count). `[]` has depth 1. It does not check syntax. Returns the first problem,
/// or nullopt.
std::optional<JsonError> scan_json(std::string_view text, std::size_t max_depth);

/// The verdict of read_json_document.
enum class JsonReadStatus : std::uint8_t {
  kOk,
  kInvalid,  ///< not what nlohmann::json::parse accepts
  kTooDeep,  ///< more than the allowed nesting; nothing was decided
};

/// Reads JSON text into `out` exactly as nlohmann::json::parse(text) would: the same texts are
/// accepted (RFC 8259 strictly: UTF-8 checked in strings, surrogate escapes paired, no trailing
/// content except after a NUL byte, which nlohmann takes for the end of the input, a leading UTF-8
/// byte order mark skipped, numbers beyond double's range rejected) and
/// give the same document (integers as number_unsigned, negative ones as number_integer, those
/// beyond 64 bits and all others as number_float; the last of repeated keys wins). It is one
/// recursive pass without the per-character bookkeeping of nlohmann's lexer. More than
/// `max_depth` nested arrays/objects stop it with kTooDeep (no recursion deeper than that). It
/// gives no error message: nlohmann's parser explains a kInvalid text. Never throws except
/// std::bad_alloc.
JsonReadStatus read_json_document(std::string_view text, nlohmann::json& out, std::size_t max_depth);

/// A forward-only reader of one JSON text with read_json_document's grammar, for callers that keep
/// only part of a document: values are read into documents or skipped (checked, nothing built),
/// objects and arrays can be walked member by member. Every method returns false (or
/// Next::kError) at the first byte nlohmann::json::parse would reject, or past `max_depth` open
/// objects/arrays (too_deep() tells which); the reader is then unusable. A leading UTF-8 byte
/// order mark is skipped. Views the text, which must outlive it.
class JsonReader {
 public:
  enum class Next : std::uint8_t { kItem, kEnd, kError };

  JsonReader(std::string_view text, std::size_t max_depth);

  /// The next value, into `out`.
  bool read(nlohmann::json& out) { return value(&out); }
  /// The next value, checked and dropped.
  bool skip() { return value(nullptr); }
  /// The next character that is not whitespace ('\0' at the end of the text).
  char peek();
  /// Consumes the '{' of an object. Then next_member until kEnd, reading or skipping each value.
  bool begin_object();
  /// The next member's key (into `key` unless null); the reader is then at its value. `first`:
  /// true before the first call for an object (the reader updates it).
  Next next_member(std::string* key, bool& first);
  /// Consumes the '[' of an array. Then next_element until kEnd, reading or skipping each value.
  bool begin_array();
  Next next_element(bool& first);
  /// Only whitespace is left (or a NUL byte, which nlohmann takes for the end of the input).
  bool at_end();
  bool too_deep() const noexcept { return too_deep_; }
  /// Nothing read so far held bytes compact_json drops (whitespace between tokens, a byte order
  /// mark, or, once at_end() saw one, a NUL byte and what follows).
  bool compact() const noexcept { return compact_; }

 private:
  void skip_whitespace();
  bool literal(std::string_view word);
  bool value(nlohmann::json* out);
  bool enter();
  bool object(nlohmann::json* out);
  bool array(nlohmann::json* out);
  int code_unit();
  bool escape(std::string* out);
  bool utf8_sequence();
  bool string(std::string* out);
  bool number(nlohmann::json* out);

  const char* at_;
  const char* end_;
  std::size_t max_depth_;
  std::size_t depth_ = 0;
  bool too_deep_ = false;
  bool compact_ = true;
};

/// `json_text` (one value read_json_document accepts) without its insignificant whitespace,
/// without a leading byte order mark and without anything after a NUL byte (which nlohmann's
/// parser takes for the end of the text): the same value, compact, its bytes otherwise unchanged
/// (member order, number spelling and string escapes are kept).
std::string compact_json(std::string_view json_text);

/// Parses untrusted JSON text: scan_json first (so neither invalid UTF-8 nor a depth bomb reaches
/// the parser), then read_json_document (nlohmann::json::parse's result; its parser words the
/// error when the text is rejected). Never throws on any input bytes (only std::bad_alloc can
/// escape).
std::variant<nlohmann::json, JsonError> parse_json(std::string_view text,
                                                   std::size_t max_depth = kDefaultMaxJsonDepth);

}  // namespace kafka_llm::format
