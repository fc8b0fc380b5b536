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

/// Parses untrusted JSON text: scan_json first (so neither invalid UTF-8 nor a depth bomb reaches
/// the parser), then one nlohmann::json::parse. Never throws on any input bytes (only
/// std::bad_alloc can escape).
std::variant<nlohmann::json, JsonError> parse_json(std::string_view text,
                                                   std::size_t max_depth = kDefaultMaxJsonDepth);

}  // namespace kafka_llm::format
