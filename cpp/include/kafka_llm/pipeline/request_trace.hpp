#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/policy/random_source.hpp"
#include "kafka_llm/tracing/span.hpp"

namespace kafka_llm::pipeline {

struct RequestFacts;
struct TracingConfig;

/// One provider attempt as its CLIENT span tells it.
struct AttemptTrace {
  int attempt = 0;  ///< 1-based
  std::string span_id;
  std::chrono::steady_clock::time_point start;
  std::optional<std::chrono::steady_clock::time_point> end;  ///< nullopt: never answered (aborted)
  long status = 0;                                           ///< HTTP status, 0: none
  std::string error;    ///< error.type: the transport error label, the status code, "cancelled"; "" when ok
  std::string message;  ///< why it failed, scrubbed of secrets
};

/// What a recorded request's spans are made of (docs/operations.md, "Tracing"): the trace it
/// continues, its span ids and the times of its steps. Filled by the request state machine; turned
/// into spans by request_spans() once the request ends.
struct RequestTrace {
  std::string trace_id;
  std::string parent_span_id;  ///< the producer's span (from `traceparent`); empty: a new root trace
  std::string trace_state;     ///< the record's `tracestate`, carried on
  std::uint8_t flags = 0x01;
  std::string consumer_span_id;
  std::string producer_span_id;  ///< set when the outcome is published
  /// The receipt on both clocks: wall times of the steps are `received_ns` plus their steady offset.
  std::int64_t received_ns = 0;
  std::vector<AttemptTrace> attempts;
  std::optional<std::chrono::steady_clock::time_point> publish_start;
  std::vector<std::string> published_topics;  ///< where the outcome went (response, dead letter, review)
  int status_code = 0;                        ///< the outcome's status code, 0: none published
  std::string error;                          ///< the outcome's error, scrubbed; "" when it succeeded
};

/// Decides at receipt whether a request is recorded: with a valid `traceparent` among `headers` it
/// is when the parent is sampled (its trace continues); without one (or with a malformed one) a new
/// root trace is recorded at `config.sample_ratio`. Returns null when nothing is recorded (then the
/// trace headers pass through unchanged). Draws ids from `rng`.
std::unique_ptr<RequestTrace> begin_request_trace(const HeaderList& headers, const TracingConfig& config,
                                                  policy::RandomSource& rng, std::int64_t received_ns);

/// The `traceparent` (and `tracestate`) that name `span_id` of `trace`, as Kafka or HTTP headers.
HeaderList trace_headers(const RequestTrace& trace, const std::string& span_id);

/// Where a request's spans point: its stream's topics and group.
struct SpanNames {
  std::string requests_topic;
  std::string responses_topic;
  std::string group;
};

/// The spans of one ended request, a pure function of its facts: a CONSUMER span
/// `<requests topic> process` (child of the record's producer span) from receipt to `end`, a CLIENT
/// span `POST <provider>` per provider attempt (child of the consumer span), and, once published,
/// a PRODUCER span `<responses topic> publish` from publication to `end` whose context the outputs
/// carry. `outcome` labels the consumer span (`kafka_llm.outcome`: finished, abandoned).
std::vector<tracing::Span> request_spans(const RequestFacts& facts, const RequestTrace& trace,
                                         const SpanNames& names, std::chrono::steady_clock::time_point end,
                                         const std::string& outcome);

}  // namespace kafka_llm::pipeline
