#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format {

void to_json(nlohmann::json& json, const TokenUsage& usage) {
  json = nlohmann::json{{"prompt_tokens", usage.prompt_tokens},
                        {"completion_tokens", usage.completion_tokens},
                        {"total_tokens", usage.total_tokens}};
}

}  // namespace kafka_llm::format
