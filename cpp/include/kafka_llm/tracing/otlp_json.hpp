#pragma once

#include <span>
#include <string>
#include <string_view>

#include "kafka_llm/tracing/span.hpp"

namespace kafka_llm::tracing {

/// The body of an OTLP/HTTP trace export (an ExportTraceServiceRequest) in OTLP's JSON encoding
/// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): one resource with
/// `service.name = service_name`, one instrumentation scope `kafka_llm` with the package version,
/// and `spans` in order. As the specification asks, trace and span ids are hex strings (not
/// base64), 64-bit integers (times, int attributes) are decimal strings, enums are integers and
/// field names are lowerCamelCase.
std::string encode_otlp_json(std::span<const Span> spans, std::string_view service_name);

}  // namespace kafka_llm::tracing
