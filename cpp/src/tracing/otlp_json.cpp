#include "kafka_llm/tracing/otlp_json.hpp"

#include <nlohmann/json.hpp>

#include "kafka_llm/common/version.hpp"

namespace kafka_llm::tracing {

namespace {
using nlohmann::json;

json any_value(const AttributeValue& value) {
  return std::visit(
      [](const auto& v) -> json {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string>) {
          return {{"stringValue", v}};
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          return {{"intValue", std::to_string(v)}};
        } else if constexpr (std::is_same_v<V, double>) {
          return {{"doubleValue", v}};
        } else {
          return {{"boolValue", v}};
        }
      },
      value);
}

json key_values(const Attributes& attributes) {
  json out = json::array();
  for (const auto& [key, value] : attributes) out.push_back({{"key", key}, {"value", any_value(value)}});
  return out;
}

json span_json(const Span& span) {
  json out = {{"traceId", span.trace_id},
              {"spanId", span.span_id},
              {"name", span.name},
              {"kind", static_cast<int>(span.kind)},
              {"startTimeUnixNano", std::to_string(span.start_ns)},
              {"endTimeUnixNano", std::to_string(span.end_ns)},
              {"attributes", key_values(span.attributes)}};
  if (!span.parent_span_id.empty()) out["parentSpanId"] = span.parent_span_id;
  if (!span.trace_state.empty()) out["traceState"] = span.trace_state;
  json status = json::object();
  if (span.status != StatusCode::kUnset) status["code"] = static_cast<int>(span.status);
  if (!span.status_message.empty()) status["message"] = span.status_message;
  out["status"] = std::move(status);
  return out;
}
}  // namespace

std::string encode_otlp_json(std::span<const Span> spans, std::string_view service_name) {
  json encoded = json::array();
  for (const auto& span : spans) encoded.push_back(span_json(span));
  const json request = {{"resourceSpans",
                         {{{"resource",
                            {{"attributes", key_values({{"service.name", std::string(service_name)},
                                                        {"telemetry.sdk.name", std::string("kafka-llm")},
                                                        {"telemetry.sdk.language", std::string("cpp")}})}}},
                           {"scopeSpans",
                            {{{"scope", {{"name", "kafka_llm"}, {"version", std::string(version())}}},
                              {"spans", std::move(encoded)}}}}}}}};
  // Attribute values may hold provider text: invalid UTF-8 is replaced rather than thrown on.
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace kafka_llm::tracing
