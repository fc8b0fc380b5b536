#pragma once

#include <optional>
#include <string>

#include "kafka_llm/features/prompt_template.hpp"
#include "kafka_llm/features/redactor.hpp"
#include "kafka_llm/format/request_envelope.hpp"

namespace kafka_llm::features {

/// Turns a parsed request into what is sent to the provider: applies `prompt` (the stream's
/// template, may be null), then `redactor` (may be null) to `request.body`, and refreshes
/// `request.prompt_hash` so that it is the hash of what is actually sent. Adds the redactions to
/// `counts`. Returns why the template could not be applied; the request is then left unchanged.
std::optional<std::string> prepare_request(format::RequestEnvelope& request, const PromptTemplate* prompt,
                                           const Redactor* redactor, RedactionCounts& counts);

}  // namespace kafka_llm::features
