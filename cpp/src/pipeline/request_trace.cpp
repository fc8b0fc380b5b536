#include "kafka_llm/pipeline/request_trace.hpp"

#include "kafka_llm/pipeline/outputs.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"

namespace kafka_llm::pipeline {

namespace {
std::int64_t wall_ns(const RequestFacts& facts, const RequestTrace& trace,
                     std::chrono::steady_clock::time_point at) {
  return trace.received_ns +
         std::chrono::duration_cast<std::chrono::nanoseconds>(at - facts.received).count();
}
}  // namespace

std::unique_ptr<RequestTrace> begin_request_trace(const HeaderList& headers, const TracingConfig& config,
                                                  policy::RandomSource& rng, std::int64_t received_ns) {
  auto trace = std::make_unique<RequestTrace>();
  const std::string* traceparent = find_header(headers, "traceparent");
  const auto parent = traceparent != nullptr ? tracing::parse_traceparent(*traceparent) : std::nullopt;
  if (parent) {
    if (!parent->sampled()) return nullptr;
    trace->trace_id = parent->trace_id;
    trace->parent_span_id = parent->span_id;
    trace->flags = parent->flags;
    if (const std::string* state = find_header(headers, "tracestate")) trace->trace_state = *state;
  } else {
    trace->trace_id = tracing::new_trace_id(rng);
    if (!tracing::sampled_at_ratio(trace->trace_id, config.sample_ratio)) return nullptr;
  }
  trace->consumer_span_id = tracing::new_span_id(rng);
  trace->received_ns = received_ns;
  return trace;
}

HeaderList trace_headers(const RequestTrace& trace, const std::string& span_id) {
  HeaderList headers{{"traceparent", tracing::format_traceparent({trace.trace_id, span_id, trace.flags})}};
  if (!trace.trace_state.empty()) headers.emplace_back("tracestate", trace.trace_state);
  return headers;
}

std::vector<tracing::Span> request_spans(const RequestFacts& facts, const RequestTrace& trace,
                                         const SpanNames& names, std::chrono::steady_clock::time_point end,
                                         const std::string& outcome) {
  using tracing::Span;
  using tracing::SpanKind;
  using tracing::StatusCode;
  std::vector<Span> spans;
  spans.reserve(trace.attempts.size() + 2);
  const std::int64_t end_ns = wall_ns(facts, trace, end);
  const std::string request_id = facts.request || facts.poison ? facts.request_id() : std::string();
  const std::string model = facts.request || facts.poison ? facts.model() : std::string();

  Span consumer;
  consumer.trace_id = trace.trace_id;
  consumer.span_id = trace.consumer_span_id;
  consumer.parent_span_id = trace.parent_span_id;
  consumer.trace_state = trace.trace_state;
  consumer.name = names.requests_topic + " process";
  consumer.kind = SpanKind::kConsumer;
  consumer.start_ns = trace.received_ns;
  consumer.end_ns = end_ns;
  consumer.attributes = {
      {"messaging.system", std::string("kafka")},
      {"messaging.operation.type", std::string("process")},
      {"messaging.operation.name", std::string("process")},
      {"messaging.destination.name", facts.record.origin.topic},
      {"messaging.destination.partition.id", std::to_string(facts.record.origin.partition)},
      {"messaging.kafka.offset", facts.record.origin.offset},
      {"messaging.consumer.group.name", names.group},
      {"kafka_llm.request_id", request_id},
      {"kafka_llm.outcome", outcome},
      {"kafka_llm.attempts", static_cast<std::int64_t>(facts.attempts)},
  };
  if (facts.record.key) consumer.attributes.emplace_back("messaging.kafka.message.key", *facts.record.key);
  if (!facts.provider.empty()) consumer.attributes.emplace_back("kafka_llm.provider", facts.provider);
  if (!model.empty()) consumer.attributes.emplace_back("gen_ai.request.model", model);
  if (trace.status_code != 0)
    consumer.attributes.emplace_back("kafka_llm.status_code", static_cast<std::int64_t>(trace.status_code));
  if (!trace.error.empty()) {
    consumer.status = StatusCode::kError;
    consumer.status_message = trace.error;
  }
  spans.push_back(std::move(consumer));

  for (const auto& attempt : trace.attempts) {
    Span client;
    client.trace_id = trace.trace_id;
    client.span_id = attempt.span_id;
    client.parent_span_id = trace.consumer_span_id;
    client.trace_state = trace.trace_state;
    client.name = "POST " + facts.provider;
    client.kind = SpanKind::kClient;
    client.start_ns = wall_ns(facts, trace, attempt.start);
    client.end_ns = attempt.end ? wall_ns(facts, trace, *attempt.end) : end_ns;
    client.attributes = {
        {"http.request.method", std::string("POST")},
        {"kafka_llm.provider", facts.provider},
        {"gen_ai.request.model", model},
        {"kafka_llm.attempt", static_cast<std::int64_t>(attempt.attempt)},
        {"http.request.resend_count", static_cast<std::int64_t>(attempt.attempt - 1)},
    };
    if (attempt.status != 0)
      client.attributes.emplace_back("http.response.status_code", static_cast<std::int64_t>(attempt.status));
    if (!attempt.error.empty()) {
      client.attributes.emplace_back("error.type", attempt.error);
      client.status = StatusCode::kError;
      client.status_message = attempt.message;
    }
    spans.push_back(std::move(client));
  }

  if (trace.publish_start && !trace.producer_span_id.empty()) {
    Span producer;
    producer.trace_id = trace.trace_id;
    producer.span_id = trace.producer_span_id;
    producer.parent_span_id = trace.consumer_span_id;
    producer.trace_state = trace.trace_state;
    producer.name = names.responses_topic + " publish";
    producer.kind = SpanKind::kProducer;
    producer.start_ns = wall_ns(facts, trace, *trace.publish_start);
    producer.end_ns = end_ns;
    producer.attributes = {
        {"messaging.system", std::string("kafka")},
        {"messaging.operation.type", std::string("send")},
        {"messaging.operation.name", std::string("publish")},
        {"messaging.destination.name", names.responses_topic},
        {"kafka_llm.request_id", request_id},
        {"messaging.batch.message_count", static_cast<std::int64_t>(trace.published_topics.size())},
    };
    std::string topics;
    for (const auto& topic : trace.published_topics) topics += (topics.empty() ? "" : ",") + topic;
    producer.attributes.emplace_back("kafka_llm.output_topics", topics);
    spans.push_back(std::move(producer));
  }
  return spans;
}

}  // namespace kafka_llm::pipeline
