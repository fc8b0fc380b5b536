#pragma once

// Private readers shared by the provider body, stream event and Anthropic mapping code: each names
// the offending field by its full path when a present value has the wrong shape.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/format/format_error.hpp"
#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format::detail {

/// The member `name` of `object` (an object), or nullptr when absent or null.
const nlohmann::json* find_member(const nlohmann::json& object, std::string_view name);

/// "<path> must be <expected> (got <type>)".
FormatError must_be(std::string_view path, std::string_view expected, const nlohmann::json& actual);

/// "<parent>.<name>", or just name when parent is empty.
std::string join_path(std::string_view parent, std::string_view name);

/// Reads an optional string member into `out` (unchanged when absent or null).
std::optional<FormatError> read_string(const nlohmann::json& object, std::string_view name,
                                       std::string_view parent, std::optional<std::string>& out);

/// Reads an optional non-negative integer member; `out` unchanged when absent or null.
std::optional<FormatError> read_count(const nlohmann::json& object, std::string_view name,
                                      std::string_view parent, std::optional<std::uint64_t>& out);

/// OpenAI `usage` object at `path`: total defaults to prompt + completion.
FormatResult<TokenUsage> read_openai_usage(const nlohmann::json& usage, std::string_view path);

/// Anthropic `usage` object at `path`: prompt = input + cache creation + cache read tokens.
FormatResult<TokenUsage> read_anthropic_usage(const nlohmann::json& usage, std::string_view path);

/// Text of an OpenAI message `content` at `path`: a string, or the `text` of the text parts of an
/// array joined without separator; nullopt for null/absent.
FormatResult<std::optional<std::string>> read_content_text(const nlohmann::json* content,
                                                           std::string_view path);

}  // namespace kafka_llm::format::detail
