#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

namespace kafka_llm::format {

/// Token counts of one provider call, in OpenAI's vocabulary (Anthropic's input/output tokens
/// are mapped to prompt/completion).
struct TokenUsage {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  std::uint64_t total_tokens = 0;

  bool operator==(const TokenUsage&) const = default;
};

/// `{"prompt_tokens":…,"completion_tokens":…,"total_tokens":…}`; found by ADL, so
/// `nlohmann::json j = usage;` works.
void to_json(nlohmann::json& json, const TokenUsage& usage);

}  // namespace kafka_llm::format
