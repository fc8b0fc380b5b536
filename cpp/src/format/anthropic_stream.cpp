#include "kafka_llm/format/anthropic_stream.hpp"

#include <array>
#include <utility>

#include "kafka_llm/format/anthropic_mapping.hpp"
#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/provider_response.hpp"
#include "provider_fields.hpp"

namespace kafka_llm::format {

namespace {

using detail::find_member;
using detail::must_be;
using nlohmann::json;

AnthropicStreamKind kind_of(std::string_view type) {
  static constexpr std::array<std::pair<std::string_view, AnthropicStreamKind>, 8> kKinds = {{
      {"message_start", AnthropicStreamKind::kMessageStart},
      {"content_block_start", AnthropicStreamKind::kContentBlockStart},
      {"content_block_delta", AnthropicStreamKind::kContentBlockDelta},
      {"content_block_stop", AnthropicStreamKind::kContentBlockStop},
      {"message_delta", AnthropicStreamKind::kMessageDelta},
      {"message_stop", AnthropicStreamKind::kMessageStop},
      {"ping", AnthropicStreamKind::kPing},
      {"error", AnthropicStreamKind::kError},
  }};
  for (const auto& [name, kind] : kKinds) {
    if (name == type) return kind;
  }
  return AnthropicStreamKind::kOther;
}

std::optional<FormatError> read_message_start(const json& data, AnthropicStreamEvent& out) {
  const json* message = find_member(data, "message");
  if (message == nullptr) return std::nullopt;
  if (!message->is_object()) return must_be("message", "an object", *message);
  if (auto e = detail::read_string(*message, "model", "message", out.model)) return e;
  if (const json* usage = find_member(*message, "usage")) {
    auto read = detail::read_anthropic_usage(*usage, "message.usage");
    if (auto* e = std::get_if<FormatError>(&read)) return std::move(*e);
    out.input_tokens = std::get<TokenUsage>(read).prompt_tokens;
    if (auto e = detail::read_count(*usage, "output_tokens", "message.usage", out.output_tokens)) return e;
  }
  return std::nullopt;
}

std::optional<FormatError> read_content_block_delta(const json& data, AnthropicStreamEvent& out) {
  const json* delta = find_member(data, "delta");
  if (delta == nullptr) return std::nullopt;
  if (!delta->is_object()) return must_be("delta", "an object", *delta);
  const json* type = find_member(*delta, "type");
  if (type == nullptr || !type->is_string() || type->get_ref<const std::string&>() != "text_delta") {
    return std::nullopt;  // input_json_delta, thinking_delta, …: not text
  }
  std::optional<std::string> text;
  if (auto e = detail::read_string(*delta, "text", "delta", text)) return e;
  if (text) out.delta_text = std::move(*text);
  return std::nullopt;
}

std::optional<FormatError> read_message_delta(const json& data, AnthropicStreamEvent& out) {
  if (const json* delta = find_member(data, "delta")) {
    if (!delta->is_object()) return must_be("delta", "an object", *delta);
    if (auto e = detail::read_string(*delta, "stop_reason", "delta", out.stop_reason)) return e;
    if (out.stop_reason) out.finish_reason = std::string(finish_reason_from_stop_reason(*out.stop_reason));
  }
  if (const json* usage = find_member(data, "usage")) {
    if (!usage->is_object()) return must_be("usage", "an object", *usage);
    if (auto e = detail::read_count(*usage, "output_tokens", "usage", out.output_tokens)) return e;
    if (find_member(*usage, "input_tokens") != nullptr) {
      auto read = detail::read_anthropic_usage(*usage, "usage");
      if (auto* e = std::get_if<FormatError>(&read)) return std::move(*e);
      out.input_tokens = std::get<TokenUsage>(read).prompt_tokens;
    }
  }
  return std::nullopt;
}

}  // namespace

FormatResult<AnthropicStreamEvent> read_anthropic_stream_event(const SseEvent& event) {
  auto parsed = parse_json(event.data);
  if (auto* error = std::get_if<JsonError>(&parsed)) {
    return FormatError{"stream event data is not valid JSON: " + error->message};
  }
  json& data = std::get<json>(parsed);
  if (!data.is_object()) return must_be("stream event data", "a JSON object", data);

  AnthropicStreamEvent out;
  std::optional<std::string> type;
  if (auto e = detail::read_string(data, "type", "", type)) return *e;
  out.kind = kind_of(type ? std::string_view(*type) : std::string_view(event.type));

  std::optional<FormatError> problem;
  switch (out.kind) {
    case AnthropicStreamKind::kMessageStart:
      problem = read_message_start(data, out);
      break;
    case AnthropicStreamKind::kContentBlockDelta:
      problem = read_content_block_delta(data, out);
      break;
    case AnthropicStreamKind::kMessageDelta:
      problem = read_message_delta(data, out);
      break;
    case AnthropicStreamKind::kError:
      out.error_message = provider_error_message(data).value_or("(no message)");
      break;
    case AnthropicStreamKind::kContentBlockStart:
    case AnthropicStreamKind::kContentBlockStop:
    case AnthropicStreamKind::kMessageStop:
    case AnthropicStreamKind::kPing:
    case AnthropicStreamKind::kOther:
      break;
  }
  if (problem) return std::move(*problem);
  out.event = std::move(data);
  return out;
}

}  // namespace kafka_llm::format
