#include "kafka_llm/pipeline/provider_call.hpp"

#include <algorithm>

#include "kafka_llm/format/anthropic_mapping.hpp"

namespace kafka_llm::pipeline {

policy::TransportError to_policy_error(http::TransportError error) noexcept {
  using H = http::TransportError;
  using P = policy::TransportError;
  switch (error) {
    case H::kNone:
      return P::kNone;
    case H::kConnect:
      return P::kConnect;
    case H::kDns:
      return P::kDns;
    case H::kTls:
      return P::kTls;
    case H::kTimeoutConnect:
      return P::kTimeoutConnect;
    case H::kTimeoutFirstByte:
      return P::kTimeoutFirstByte;
    case H::kTimeoutTotal:
      return P::kTimeoutTotal;
    case H::kRecv:
    case H::kSend:
      return P::kReset;
    case H::kCancelled:
    case H::kOther:
      return P::kOther;
  }
  return P::kOther;
}

ProviderCall ProviderCall::from(http::Response&& response) {
  ProviderCall call;
  call.error = to_policy_error(response.error);
  call.transport_message = std::move(response.error_message);
  call.status = response.status;
  call.headers = std::move(response.headers);
  call.body = std::move(response.body);
  call.latency = response.total_time;
  return call;
}

std::variant<http::Request, std::string> build_provider_request(const ProviderConfig& provider,
                                                                const format::RequestEnvelope& request,
                                                                std::chrono::milliseconds remaining,
                                                                const HeaderList& trace) {
  http::Request out;
  out.unix_socket_path = provider.unix_socket;
  out.timeouts.connect = std::min(provider.connect_timeout, remaining);
  out.timeouts.first_byte = std::min(provider.first_byte_timeout, remaining);
  out.timeouts.total = std::max(remaining, std::chrono::milliseconds(1));
  out.headers.reserve(6 + provider.extra_headers.size());
  out.headers.emplace_back("Content-Type", "application/json");
  out.headers.emplace_back("x-request-id", request.request_id);
  if (request.stream) out.headers.emplace_back("Accept", "text/event-stream");

  if (provider.kind == ProviderKind::kAnthropic) {
    if (request.endpoint != format::Endpoint::kChatCompletions) {
      return "provider \"" + provider.name + "\" (anthropic) only serves /v1/chat/completions, not " +
             std::string(request.path);
    }
    auto mapped = format::to_anthropic_request(request.body);
    if (auto* error = std::get_if<format::FormatError>(&mapped)) return error->message;
    out.url = provider.base_url + "/messages";
    out.body =
        std::get<nlohmann::json>(mapped).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (!provider.api_key.empty()) out.headers.emplace_back("x-api-key", provider.api_key);
    out.headers.emplace_back("anthropic-version", "2023-06-01");
  } else {
    // base_url carries the version prefix (".../v1"), as in the OpenAI SDKs.
    out.url = provider.base_url + std::string(request.path.substr(3));
    if (request.stream && !request.body.contains("stream_options")) {
      nlohmann::json body = request.body;
      body["stream_options"] = {{"include_usage", true}};
      out.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out.body = request.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    if (!provider.api_key.empty()) out.headers.emplace_back("Authorization", "Bearer " + provider.api_key);
  }
  for (const auto& header : provider.extra_headers) out.headers.push_back(header);
  out.headers.insert(out.headers.end(), trace.begin(), trace.end());
  return out;
}

}  // namespace kafka_llm::pipeline
