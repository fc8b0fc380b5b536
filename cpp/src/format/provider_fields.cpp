#include "provider_fields.hpp"

#include <limits>

#include "json_util.hpp"

namespace kafka_llm::format::detail {

using nlohmann::json;

const json* find_member(const json& object, std::string_view name) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

FormatError must_be(std::string_view path, std::string_view expected, const json& actual) {
  std::string message(path);
  message.append(" must be ").append(expected).append(" (got ").append(json_type_name(actual)).append(")");
  return FormatError{std::move(message)};
}

std::string join_path(std::string_view parent, std::string_view name) {
  std::string path(parent);
  if (!path.empty()) path.push_back('.');
  path.append(name);
  return path;
}

std::optional<FormatError> read_string(const json& object, std::string_view name, std::string_view parent,
                                       std::optional<std::string>& out) {
  const json* value = find_member(object, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return must_be(join_path(parent, name), "a string", *value);
  out = value->get_ref<const std::string&>();
  return std::nullopt;
}

std::optional<FormatError> read_count(const json& object, std::string_view name, std::string_view parent,
                                      std::optional<std::uint64_t>& out) {
  const json* value = find_member(object, name);
  if (value == nullptr) return std::nullopt;
  if (value->is_number_unsigned()) {
    out = value->get<std::uint64_t>();
    return std::nullopt;
  }
  if (value->is_number_integer() && value->get<std::int64_t>() >= 0) {
    out = static_cast<std::uint64_t>(value->get<std::int64_t>());
    return std::nullopt;
  }
  return must_be(join_path(parent, name), "a non-negative integer", *value);
}

namespace {

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max()
                                                           : a + b;
}

}  // namespace

FormatResult<TokenUsage> read_openai_usage(const json& usage, std::string_view path) {
  if (!usage.is_object()) return must_be(path, "an object", usage);
  std::optional<std::uint64_t> prompt;
  std::optional<std::uint64_t> completion;
  std::optional<std::uint64_t> total;
  if (auto e = read_count(usage, "prompt_tokens", path, prompt)) return *e;
  if (auto e = read_count(usage, "completion_tokens", path, completion)) return *e;
  if (auto e = read_count(usage, "total_tokens", path, total)) return *e;
  TokenUsage result;
  result.prompt_tokens = prompt.value_or(0);
  result.completion_tokens = completion.value_or(0);
  result.total_tokens = total ? *total : saturating_add(result.prompt_tokens, result.completion_tokens);
  return result;
}

FormatResult<TokenUsage> read_anthropic_usage(const json& usage, std::string_view path) {
  if (!usage.is_object()) return must_be(path, "an object", usage);
  std::optional<std::uint64_t> input;
  std::optional<std::uint64_t> cache_creation;
  std::optional<std::uint64_t> cache_read;
  std::optional<std::uint64_t> output;
  if (auto e = read_count(usage, "input_tokens", path, input)) return *e;
  if (auto e = read_count(usage, "cache_creation_input_tokens", path, cache_creation)) return *e;
  if (auto e = read_count(usage, "cache_read_input_tokens", path, cache_read)) return *e;
  if (auto e = read_count(usage, "output_tokens", path, output)) return *e;
  TokenUsage result;
  result.prompt_tokens =
      saturating_add(saturating_add(input.value_or(0), cache_creation.value_or(0)), cache_read.value_or(0));
  result.completion_tokens = output.value_or(0);
  result.total_tokens = saturating_add(result.prompt_tokens, result.completion_tokens);
  return result;
}

FormatResult<std::optional<std::string>> read_content_text(const json* content, std::string_view path) {
  if (content == nullptr) return std::optional<std::string>{};
  if (content->is_string()) return std::optional<std::string>{content->get_ref<const std::string&>()};
  if (!content->is_array()) return must_be(path, "a string or an array", *content);
  std::string text;
  for (std::size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string part_path = std::string(path) + "[" + std::to_string(i) + "]";
    if (!part.is_object()) return must_be(part_path, "an object", part);
    const json* type = find_member(part, "type");
    if (type != nullptr && !(type->is_string() && type->get_ref<const std::string&>() == "text")) continue;
    const json* part_text = find_member(part, "text");
    if (part_text == nullptr) continue;
    if (!part_text->is_string()) return must_be(part_path + ".text", "a string", *part_text);
    text.append(part_text->get_ref<const std::string&>());
  }
  return std::optional<std::string>{std::move(text)};
}

}  // namespace kafka_llm::format::detail
