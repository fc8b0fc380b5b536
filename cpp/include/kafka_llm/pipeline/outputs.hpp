#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/format/dead_letter.hpp"
#include "kafka_llm/format/request_envelope.hpp"
#include "kafka_llm/format/response_envelope.hpp"
#include "kafka_llm/format/result_record.hpp"
#include "kafka_llm/pipeline/request_trace.hpp"

namespace kafka_llm::pipeline {

/// One consumed request record, as the pipeline keeps it: the dead-letter record repeats its key,
/// value and headers byte for byte.
struct ConsumedRecord {
  RecordOrigin origin;
  std::optional<std::string> key;
  std::string value;
  HeaderList headers;
  std::int64_t timestamp_ms = -1;  ///< the record's timestamp (epoch ms), -1 when it has none
};

/// A record for the producer: a response, a token frame, a dead letter or a review copy.
struct Output {
  std::string topic;
  std::optional<std::string> key;
  std::string value;
  HeaderList headers;
};

/// What every output of one request carries: its identity, where it went and how its prompt was
/// prepared. Filled by the request state machine as the request moves on.
struct RequestFacts {
  ConsumedRecord record;
  /// W3C trace context of the outputs (traceparent, tracestate): the request's, or when its spans are
  /// recorded, that of the worker's span at the moment (consumer, then producer).
  HeaderList trace;
  std::unique_ptr<RequestTrace> tracing;  ///< the spans' facts when recorded, else null
  /// The parsed request; empty for a poison record, whose identity is in `poison`.
  std::optional<format::RequestEnvelope> request;
  std::unique_ptr<const format::PoisonRecord> poison;  ///< behind a pointer: rare, and large
  std::string provider;        ///< the provider serving the request, else the one it named, else ""
  std::string model_version;   ///< header `model_version`
  std::string prompt_version;  ///< the stream's prompt template version once applied, else ""
  std::string dedupe_of;       ///< the earlier request whose result this one was served, else ""
  std::optional<std::string> rejected_output;  ///< model output that failed the output schema
  int attempts = 0;
  std::int64_t created_ms = 0;        ///< epoch ms when the record was received
  std::int64_t first_attempt_ms = 0;  ///< epoch ms of the first provider call, 0 before it
  std::chrono::steady_clock::time_point received;
  /// When the record was produced (its timestamp, on the steady clock); `received` when it has none
  /// or the producer's clock is ahead. End-to-end and time-to-first-token count from here.
  std::chrono::steady_clock::time_point produced;
  std::chrono::steady_clock::time_point first_attempt;
  /// The request's deadline (epoch ms; docs/guarantees.md, "Deadlines"), once started; nullopt: none.
  std::optional<std::int64_t> deadline_ms;

  const std::string& request_id() const noexcept {
    return request ? request->request_id : poison->request_id;
  }
  /// The model as the record names it ("" when a poison record names none).
  std::string model() const { return request ? request->model : poison->model.value_or(""); }
  /// The prompt hash of what is sent ("" for poison).
  const std::string& prompt_hash() const noexcept;
};

/// The one builder of a request's result records, response envelopes, stream frames and headers
/// (docs/formats.md). Pure: times come in as arguments.
namespace outputs {

/// A result record with the request's identity (request_id, provider, model, created_ms,
/// prompt_version, prompt_hash), `status` and `updated_ms = now_ms`; the caller adds the rest.
format::ResultRecord result_record(const RequestFacts& facts, format::ResultStatus status,
                                   std::int64_t now_ms);

/// The response envelope that answers `record`: its status code (200 when none), body (for an
/// error record, error_body of its status and message), attempts, latency and prompt version,
/// with the request's metadata and identity.
format::ResponseEnvelope response(const RequestFacts& facts, const format::ResultRecord& record);
/// The same, taking `record`'s body instead of copying it.
format::ResponseEnvelope response(const RequestFacts& facts, format::ResultRecord&& record);

/// The last frame of a streamed request that ended with `record`, `seq` one past the last chunk.
format::StreamFinalFrame final_frame(const RequestFacts& facts, const format::ResultRecord& record,
                                     std::uint64_t seq, std::optional<std::string> finish_reason);

/// The headers of every output record: request_message_id, model_version, prompt_hash, then
/// prompt_version and x-dedupe-of when they apply, then the request's trace context.
HeaderList output_headers(const RequestFacts& facts);

/// A failed request's dead-letter headers (docs/formats.md): the original headers (their trace
/// context replaced by the worker's when its spans are recorded), the twelve
/// x- facts, then x-model-version, x-prompt-hash, x-prompt-version and, for a schema violation,
/// the rejected model output. `secrets` are scrubbed from x-error.
HeaderList dead_letter_headers(const RequestFacts& facts, const format::DeadLetterFacts& dead_letter,
                               const std::vector<std::string>& secrets);

}  // namespace outputs

}  // namespace kafka_llm::pipeline
