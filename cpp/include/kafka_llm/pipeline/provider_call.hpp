#pragma once

#include <chrono>
#include <string>
#include <variant>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/format/request_envelope.hpp"
#include "kafka_llm/http/request.hpp"
#include "kafka_llm/http/response.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"
#include "kafka_llm/policy/classify.hpp"

namespace kafka_llm::pipeline {

/// The outcome of one provider attempt, whatever the provider kind (HTTP or embedded).
struct ProviderCall {
  policy::TransportError error = policy::TransportError::kNone;
  std::string transport_message;
  long status = 0;
  HeaderList headers;
  std::string body;
  std::chrono::microseconds latency{0};
  /// The attempt failed in a way no retry can fix (an embedded provider raised).
  bool final_error = false;

  /// Converts an HTTP client response (transport errors mapped to the policy's vocabulary).
  static ProviderCall from(http::Response&& response);
};

/// The transport error the retry policy sees for an HTTP client error.
policy::TransportError to_policy_error(http::TransportError error) noexcept;

/// The HTTP request for one attempt of `request` at `provider`: URL (base URL + endpoint path),
/// auth and content headers, the body (mapped to Anthropic Messages for kind anthropic; OpenAI
/// streams ask for usage), the attempt's timeouts bounded by `remaining` (time left before the
/// request's deadline) and the Unix socket of a sidecar. Adds `x-request-id` so providers (and the
/// mock) can correlate attempts, and the request's W3C trace context (`trace`). A string explains
/// why the request cannot go to this provider.
std::variant<http::Request, std::string> build_provider_request(const ProviderConfig& provider,
                                                                const format::RequestEnvelope& request,
                                                                std::chrono::milliseconds remaining,
                                                                const HeaderList& trace = {});

}  // namespace kafka_llm::pipeline
