#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/features/json_schema.hpp"

namespace kafka_llm::features {

/// Default bound on the `x-model-output` dead-letter header, in bytes.
inline constexpr std::size_t kMaxModelOutputHeaderBytes = std::size_t{64} * 1024;

/// Checks a model's output text against a stream's output schema. nullopt when `output` is JSON
/// that `schema` accepts; otherwise why not: "the model output is missing", "the model output is
/// not JSON: <parse error>" or "the model output violates the output schema: <pointer>: <reason>".
std::optional<std::string> check_output(const JsonSchema& schema, const std::optional<std::string>& output);

/// The dead-letter headers carrying a rejected output: `x-model-output` (cut on a UTF-8 boundary
/// to at most `max_bytes`) and, when cut, `x-model-output-truncated` with the full size in bytes.
HeaderList model_output_headers(std::string_view output, std::size_t max_bytes = kMaxModelOutputHeaderBytes);

}  // namespace kafka_llm::features
