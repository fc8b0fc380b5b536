#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kafka_llm/policy/random_source.hpp"

namespace kafka_llm::tracing {

/// OpenTelemetry span kinds, numbered as OTLP's SpanKind enum.
enum class SpanKind : std::uint8_t { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

/// OpenTelemetry status codes, numbered as OTLP's Status.StatusCode enum.
enum class StatusCode : std::uint8_t { kUnset = 0, kOk = 1, kError = 2 };

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;
using Attributes = std::vector<std::pair<std::string, AttributeValue>>;

/// One finished span, ready to export. Ids are lowercase hex (32 digits for the trace, 16 for spans);
/// `parent_span_id` is empty for a root span. Times are nanoseconds since the Unix epoch.
struct Span {
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;
  std::string trace_state;  ///< W3C tracestate carried by the span context, may be empty
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  Attributes attributes;
  StatusCode status = StatusCode::kUnset;
  std::string status_message;
};

/// A W3C trace context (https://www.w3.org/TR/trace-context/): what a `traceparent` header holds.
struct TraceContext {
  std::string trace_id;  ///< 32 lowercase hex digits, not all zero
  std::string span_id;   ///< 16 lowercase hex digits, not all zero
  std::uint8_t flags = 0;

  bool sampled() const noexcept { return (flags & 0x01U) != 0; }
};

/// Parses a `traceparent` header value (version 00, or a later version read as 00 as the
/// specification asks); nullopt when it is malformed or its ids are all zero.
std::optional<TraceContext> parse_traceparent(std::string_view value);

/// `00-<trace id>-<span id>-<flags>`.
std::string format_traceparent(const TraceContext& context);

/// A new random span id (16 hex digits, never all zero), drawn from `rng`.
std::string new_span_id(policy::RandomSource& rng);

/// A new random trace id (32 hex digits, never all zero), drawn from `rng`.
std::string new_trace_id(policy::RandomSource& rng);

/// Whether a new trace with `trace_id` is sampled at `ratio` (0 to 1): the trace id's last 16 hex
/// digits read as a number are below ratio·2^64, as OpenTelemetry's TraceIdRatioBased sampler
/// decides, so every participant sampling at the same ratio agrees.
bool sampled_at_ratio(std::string_view trace_id, double ratio) noexcept;

}  // namespace kafka_llm::tracing
