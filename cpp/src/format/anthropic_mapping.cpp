#include "kafka_llm/format/anthropic_mapping.hpp"

#include <algorithm>
#include <string>

#include "json_util.hpp"
#include "kafka_llm/format/provider_response.hpp"
#include "provider_fields.hpp"

namespace kafka_llm::format {

namespace {

using detail::find_member;
using detail::must_be;
using nlohmann::json;

FormatError not_mapped(std::string_view what) {
  return FormatError{std::string(what) + " is not supported for Anthropic"};
}

// The text of a system/developer message's content (string or text parts).
FormatResult<std::string> system_text(const json& message, const std::string& path) {
  auto text = detail::read_content_text(find_member(message, "content"), path + ".content");
  if (auto* e = std::get_if<FormatError>(&text)) return std::move(*e);
  return std::get<std::optional<std::string>>(text).value_or("");
}

// A user/assistant message's content as Anthropic content: a string stays a string, text parts
// become text blocks, anything else is not mapped.
FormatResult<json> message_content(const json& message, const std::string& path) {
  const json* content = find_member(message, "content");
  const std::string content_path = path + ".content";
  if (content == nullptr) return FormatError{content_path + " is required"};
  if (content->is_string()) return *content;
  if (!content->is_array()) return must_be(content_path, "a string or an array", *content);
  json blocks = json::array();
  for (std::size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string part_path = content_path + "[" + std::to_string(i) + "]";
    if (!part.is_object()) return must_be(part_path, "an object", part);
    const json* type = find_member(part, "type");
    if (type == nullptr || !type->is_string()) return FormatError{part_path + ".type is required"};
    const auto& type_name = type->get_ref<const std::string&>();
    if (type_name != "text") {
      return not_mapped(part_path + " of type \"" + detail::to_valid_utf8(type_name.substr(0, 64)) + "\"");
    }
    const json* text = find_member(part, "text");
    if (text == nullptr) return FormatError{part_path + ".text is required"};
    if (!text->is_string()) return must_be(part_path + ".text", "a string", *text);
    blocks.push_back(json{{"type", "text"}, {"text", *text}});
  }
  return blocks;
}

std::optional<FormatError> copy_number(const json& from, json& to, std::string_view name) {
  const json* value = find_member(from, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) return must_be("body." + std::string(name), "a number", *value);
  to[std::string(name)] = *value;
  return std::nullopt;
}

}  // namespace

FormatResult<json> to_anthropic_request(const json& body, const AnthropicRequestOptions& options) {
  if (!body.is_object()) return must_be("body", "a JSON object", body);
  for (const std::string_view field : {"tools", "functions", "tool_choice", "function_call"}) {
    if (find_member(body, field) != nullptr) return not_mapped("body." + std::string(field));
  }
  json request = json::object();

  const json* model = find_member(body, "model");
  if (model == nullptr) return FormatError{"body.model is required"};
  if (!model->is_string()) return must_be("body.model", "a string", *model);
  request["model"] = *model;

  const json* messages = find_member(body, "messages");
  if (messages == nullptr) return FormatError{"body.messages is required"};
  if (!messages->is_array()) return must_be("body.messages", "an array", *messages);
  std::string system;
  json mapped = json::array();
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const json& message = (*messages)[i];
    const std::string path = "body.messages[" + std::to_string(i) + "]";
    if (!message.is_object()) return must_be(path, "an object", message);
    const json* role = find_member(message, "role");
    if (role == nullptr) return FormatError{path + ".role is required"};
    if (!role->is_string()) return must_be(path + ".role", "a string", *role);
    const auto& role_name = role->get_ref<const std::string&>();
    if (role_name == "system" || role_name == "developer") {
      auto text = system_text(message, path);
      if (auto* e = std::get_if<FormatError>(&text)) return std::move(*e);
      if (!system.empty()) system.append("\n\n");
      system.append(std::get<std::string>(text));
      continue;
    }
    if (role_name != "user" && role_name != "assistant") {
      return not_mapped(path + " with role \"" + detail::to_valid_utf8(role_name.substr(0, 64)) + "\"");
    }
    if (find_member(message, "tool_calls") != nullptr) return not_mapped(path + ".tool_calls");
    if (find_member(message, "function_call") != nullptr) return not_mapped(path + ".function_call");
    auto content = message_content(message, path);
    if (auto* e = std::get_if<FormatError>(&content)) return std::move(*e);
    mapped.push_back(json{{"role", role_name}, {"content", std::move(std::get<json>(content))}});
  }
  if (mapped.empty()) return FormatError{"body.messages has no user or assistant message"};
  if (!system.empty()) request["system"] = system;
  request["messages"] = std::move(mapped);

  std::uint64_t max_tokens = options.default_max_tokens;
  for (const std::string_view field : {"max_tokens", "max_completion_tokens"}) {
    const json* limit = find_member(body, field);
    if (limit == nullptr) continue;
    std::optional<std::uint64_t> value;
    if (auto e = detail::read_count(body, field, "body", value); e || *value == 0) {
      return must_be("body." + std::string(field), "a positive integer", *limit);
    }
    max_tokens = *value;  // max_completion_tokens, read second, wins
  }
  request["max_tokens"] = max_tokens;

  if (const json* stop = find_member(body, "stop")) {
    if (stop->is_string()) {
      request["stop_sequences"] = json::array({*stop});
    } else if (stop->is_array() &&
               std::all_of(stop->begin(), stop->end(), [](const json& s) { return s.is_string(); })) {
      request["stop_sequences"] = *stop;
    } else {
      return must_be("body.stop", "a string or an array of strings", *stop);
    }
  }
  for (const std::string_view field : {"temperature", "top_p", "top_k"}) {
    if (auto e = copy_number(body, request, field)) return *e;
  }
  if (const json* n = find_member(body, "n")) {
    if (!(n->is_number_integer() && n->get<std::int64_t>() == 1)) return not_mapped("body.n other than 1");
  }
  if (const json* stream = find_member(body, "stream")) {
    if (!stream->is_boolean()) return must_be("body.stream", "a boolean", *stream);
    request["stream"] = *stream;
  }
  if (const json* user = find_member(body, "user")) {
    if (!user->is_string()) return must_be("body.user", "a string", *user);
    request["metadata"] = json{{"user_id", *user}};
  }
  return request;
}

FormatResult<json> to_openai_chat_completion(const json& anthropic_message, std::int64_t created_s) {
  auto read = read_provider_response(anthropic_message, ProviderApi::kAnthropic, Endpoint::kChatCompletions);
  if (auto* e = std::get_if<FormatError>(&read)) return std::move(*e);
  auto& output = std::get<ProviderOutput>(read);
  if (find_member(anthropic_message, "content") == nullptr) return FormatError{"content is required"};

  std::optional<std::string> id;
  if (auto e = detail::read_string(anthropic_message, "id", "", id)) return *e;

  json message = {{"role", "assistant"}, {"content", output.text.value_or("")}};
  json choice = {{"index", 0},
                 {"message", std::move(message)},
                 {"logprobs", nullptr},
                 {"finish_reason", output.finish_reason ? json(*output.finish_reason) : json(nullptr)}};
  json completion = {{"id", id.value_or("")},
                     {"object", "chat.completion"},
                     {"created", created_s},
                     {"model", output.model.value_or("")},
                     {"choices", json::array({std::move(choice)})},
                     {"usage", output.usage ? json(*output.usage) : json(nullptr)}};
  return completion;
}

std::string_view finish_reason_from_stop_reason(std::string_view stop_reason) noexcept {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence" || stop_reason == "pause_turn")
    return "stop";
  if (stop_reason == "max_tokens") return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return stop_reason;
}

}  // namespace kafka_llm::format
