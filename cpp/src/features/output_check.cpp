#include "kafka_llm/features/output_check.hpp"

#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::features {

std::optional<std::string> check_output(const JsonSchema& schema, const std::optional<std::string>& output) {
  if (!output) return "the model output is missing";
  auto parsed = format::parse_json(*output);
  if (auto* error = std::get_if<format::JsonError>(&parsed))
    return "the model output is not JSON: " + error->message;
  if (auto violation = schema.validate(std::get<nlohmann::json>(parsed))) {
    return "the model output violates the output schema: " + *violation;
  }
  return std::nullopt;
}

HeaderList model_output_headers(std::string_view output, std::size_t max_bytes) {
  HeaderList headers;
  const std::string_view kept = format::truncate_utf8(output, max_bytes);
  headers.emplace_back("x-model-output", std::string(kept));
  if (kept.size() < output.size())
    headers.emplace_back("x-model-output-truncated", std::to_string(output.size()));
  return headers;
}

}  // namespace kafka_llm::features
