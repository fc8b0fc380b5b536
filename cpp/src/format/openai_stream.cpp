#include "kafka_llm/format/openai_stream.hpp"

#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/provider_response.hpp"
#include "provider_fields.hpp"

namespace kafka_llm::format {

namespace {

using detail::find_member;
using detail::must_be;
using nlohmann::json;

std::string_view trim(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\r\n";
  const auto begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kWhitespace) - begin + 1);
}

std::optional<FormatError> read_choice(const json& chunk, OpenAiStreamChunk& out) {
  const json* choices = find_member(chunk, "choices");
  if (choices == nullptr) return std::nullopt;
  if (!choices->is_array()) return must_be("choices", "an array", *choices);
  if (choices->empty()) return std::nullopt;
  const json& choice = (*choices)[0];
  if (!choice.is_object()) return must_be("choices[0]", "an object", choice);
  if (auto e = detail::read_string(choice, "finish_reason", "choices[0]", out.finish_reason)) return e;
  if (const json* delta = find_member(choice, "delta")) {
    if (!delta->is_object()) return must_be("choices[0].delta", "an object", *delta);
    auto content = detail::read_content_text(find_member(*delta, "content"), "choices[0].delta.content");
    if (auto* e = std::get_if<FormatError>(&content)) return std::move(*e);
    if (auto& text = std::get<std::optional<std::string>>(content)) out.delta_text = std::move(*text);
  }
  std::optional<std::string> text;
  if (auto e = detail::read_string(choice, "text", "choices[0]", text)) return e;
  if (text) out.delta_text.append(*text);
  return std::nullopt;
}

}  // namespace

FormatResult<OpenAiStreamChunk> read_openai_stream_event(const SseEvent& event) {
  OpenAiStreamChunk out;
  if (trim(event.data) == "[DONE]") {
    out.kind = OpenAiStreamKind::kDone;
    return out;
  }
  auto parsed = parse_json(event.data);
  if (auto* error = std::get_if<JsonError>(&parsed)) {
    return FormatError{"stream event data is not valid JSON: " + error->message};
  }
  json& chunk = std::get<json>(parsed);
  if (!chunk.is_object()) return must_be("stream event data", "a JSON object", chunk);
  if (find_member(chunk, "error") != nullptr) {
    out.kind = OpenAiStreamKind::kError;
    out.error_message = provider_error_message(chunk).value_or("(no message)");
  } else {
    if (auto e = read_choice(chunk, out)) return *e;
    if (const json* usage = find_member(chunk, "usage")) {
      auto read = detail::read_openai_usage(*usage, "usage");
      if (auto* e = std::get_if<FormatError>(&read)) return std::move(*e);
      out.usage = std::get<TokenUsage>(read);
    }
  }
  out.chunk = std::move(chunk);
  return out;
}

}  // namespace kafka_llm::format
