#include "kafka_llm/features/request_preparation.hpp"

#include "kafka_llm/format/prompt_hash.hpp"

namespace kafka_llm::features {

std::optional<std::string> prepare_request(format::RequestEnvelope& request, const PromptTemplate* prompt,
                                           const Redactor* redactor, RedactionCounts& counts) {
  if (prompt == nullptr && redactor == nullptr) return std::nullopt;
  if (prompt != nullptr) {
    if (auto error = prompt->apply(request.endpoint, request.body)) return error;
  }
  if (redactor != nullptr) {
    for (auto& [rule, n] : redactor->apply(request.body)) counts[rule] += n;
  }
  request.prompt_hash = format::prompt_hash(request.body);
  return std::nullopt;
}

}  // namespace kafka_llm::features
