#include "kafka_llm/pipeline/outputs.hpp"

#include "kafka_llm/features/output_check.hpp"

namespace kafka_llm::pipeline {

namespace {
const std::string kNoPromptHash;

std::optional<std::string> unless_empty(const std::string& text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}
}  // namespace

const std::string& RequestFacts::prompt_hash() const noexcept {
  return request ? request->prompt_hash : kNoPromptHash;
}

namespace outputs {

format::ResultRecord result_record(const RequestFacts& facts, format::ResultStatus status,
                                   std::int64_t now_ms) {
  format::ResultRecord record;
  record.status = status;
  record.request_id = facts.request_id();
  record.provider = unless_empty(facts.provider);
  if (facts.request) {
    record.model = facts.request->model;
  } else {
    record.model = facts.poison->model;
  }
  record.created_ms = facts.created_ms;
  record.updated_ms = now_ms;
  record.prompt_version = unless_empty(facts.prompt_version);
  record.prompt_hash = unless_empty(facts.prompt_hash());
  return record;
}

format::ResponseEnvelope response(const RequestFacts& facts, const format::ResultRecord& record) {
  return response(facts, format::ResultRecord(record));
}

format::ResponseEnvelope response(const RequestFacts& facts, format::ResultRecord&& record) {
  const int status = record.status_code.value_or(200);
  format::ResponseEnvelope envelope;
  envelope.metadata = facts.request ? facts.request->metadata : facts.poison->metadata;
  envelope.status_code = status;
  if (record.status == format::ResultStatus::kError || record.status == format::ResultStatus::kCancelled) {
    envelope.body = format::error_body(status, record.error.value_or(""));
  } else {
    envelope.body = std::move(record.body);
    envelope.body_text = std::move(record.body_text);
  }
  envelope.request_id = facts.request_id();
  envelope.provider = std::move(record.provider);
  envelope.model = std::move(record.model);
  envelope.attempts = record.attempts;
  envelope.latency_ms = record.latency_ms.value_or(0.0);
  envelope.prompt_version = std::move(record.prompt_version);
  return envelope;
}

format::StreamFinalFrame final_frame(const RequestFacts& facts, const format::ResultRecord& record,
                                     std::uint64_t seq, std::optional<std::string> finish_reason) {
  format::StreamFinalFrame frame;
  frame.request_id = facts.request_id();
  frame.seq = seq;
  frame.status_code = record.status_code.value_or(200);
  frame.finish_reason = std::move(finish_reason);
  frame.usage = record.usage;
  if (record.status == format::ResultStatus::kError || record.status == format::ResultStatus::kCancelled)
    frame.error_message = record.error.value_or("");
  if (record.status == format::ResultStatus::kCancelled) frame.finish_reason = "cancelled";
  return frame;
}

HeaderList output_headers(const RequestFacts& facts) {
  HeaderList headers = format::response_headers(facts.request_id(), facts.model_version, facts.prompt_hash());
  if (!facts.prompt_version.empty()) headers.emplace_back("prompt_version", facts.prompt_version);
  if (!facts.dedupe_of.empty()) headers.emplace_back("x-dedupe-of", facts.dedupe_of);
  headers.insert(headers.end(), facts.trace.begin(), facts.trace.end());
  return headers;
}

HeaderList dead_letter_headers(const RequestFacts& facts, const format::DeadLetterFacts& dead_letter,
                               const std::vector<std::string>& secrets) {
  // The original headers (stale dead-letter headers of a re-driven record dropped), the twelve
  // facts, then the output tags as x- headers, so that a re-drive can strip everything added.
  HeaderList headers = format::dead_letter_headers(facts.record.headers, dead_letter, secrets);
  if (facts.tracing) {
    // The trace goes on from the worker's producer span, as on the response.
    for (auto& [name, value] : headers) {
      if (name != "traceparent" && name != "tracestate") continue;
      if (const std::string* own = find_header(facts.trace, name)) value = *own;
    }
    if (find_header(headers, "traceparent") == nullptr) {
      for (const auto& header : facts.trace) headers.push_back(header);
    }
  }
  if (!facts.request) return headers;  // a poison record was never tagged
  headers.emplace_back("x-model-version", facts.model_version);
  headers.emplace_back("x-prompt-hash", facts.request->prompt_hash);
  if (!facts.prompt_version.empty()) headers.emplace_back("x-prompt-version", facts.prompt_version);
  if (facts.rejected_output) {
    for (auto& header : features::model_output_headers(*facts.rejected_output))
      headers.push_back(std::move(header));
  }
  return headers;
}

}  // namespace outputs

}  // namespace kafka_llm::pipeline
