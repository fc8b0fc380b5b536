#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kafka_llm::format {

/// Byte offset (0-based) of the first byte of the first invalid UTF-8 sequence in `text`, or
/// nullopt when `text` is valid UTF-8. Valid means RFC 3629: shortest form only, no UTF-16
/// surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept;

/// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a multi-byte
/// UTF-8 sequence. Returns a view into `text`.
std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes) noexcept;

/// A copy of `text` in which each byte that does not start a valid UTF-8 sequence is replaced by
/// U+FFFD, so the result is always valid UTF-8.
std::string sanitize_utf8(std::string_view text);

}  // namespace kafka_llm::format
