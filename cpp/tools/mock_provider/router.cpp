#include "router.hpp"

#include <array>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

#include "responses.hpp"

namespace kafka_llm::mock_provider {
namespace {

using nlohmann::json;

std::string format_seconds(double seconds) {
  std::array<char, 32> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), seconds);
  return std::string(buffer.data(), end);
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
      continue;
    }
    unsigned value = 0;
    if (text[i] == '%' && i + 2 < text.size()) {
      auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
      if (ec == std::errc{} && end == text.data() + i + 3) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::optional<std::string> query_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    return eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

Action respond(unsigned status, std::string body, std::string_view content_type = "application/json") {
  Action action;
  action.status = status;
  action.body = std::move(body);
  action.content_type = content_type;
  return action;
}

Action openai_error(unsigned status, std::string_view code, std::string message, std::string param = {}) {
  return respond(status, error_body(ApiError{status, status < 500 ? "invalid_request_error" : "server_error",
                                             std::string(code), std::move(message), std::move(param)},
                                    ErrorFlavor::kOpenAI));
}

Action not_found(const IncomingRequest& request) {
  std::string message = "Unknown request URL: ";
  message.append(request.method_name).append(" ").append(request.target).append(".");
  return openai_error(404, "unknown_url", std::move(message));
}

Action method_not_allowed(const IncomingRequest& request) {
  std::string message = "Method ";
  message.append(request.method_name).append(" is not allowed on ").append(request.target);
  return openai_error(405, "method_not_allowed", std::move(message));
}

Action api_error(const ApiError& error, ErrorFlavor flavor) {
  return respond(error.status, error_body(error, flavor));
}

}  // namespace

const ProviderConfig& Router::config() {
  const std::uint64_t version = shared_.config.version();
  if (version != config_version_) {
    config_ = shared_.config.get();
    config_version_ = version;
  }
  return config_;
}

Action Router::route(const IncomingRequest& request) {
  const std::size_t question = request.target.find('?');
  const std::string_view path = request.target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view{} : request.target.substr(question + 1);

  if (path.starts_with("/v1/")) {
    Action action = route_api(request, path);
    action.count_status = true;
    return action;
  }
  if (path == "/health") {
    if (request.method != Method::kGet && request.method != Method::kHead) return method_not_allowed(request);
    return respond(200, R"({"status":"ok"})");
  }
  if (path == "/stats") {
    if (request.method != Method::kGet) return method_not_allowed(request);
    if (auto id = query_parameter(query, "request_id")) return respond(200, shared_.stats.request_json(*id));
    return respond(200, shared_.stats.to_json());
  }
  if (path == "/stats/reset") {
    if (request.method != Method::kPost) return method_not_allowed(request);
    shared_.stats.reset();
    return respond(200, R"({"status":"ok"})");
  }
  if (path == "/admin/config") return admin_config(request);
  return not_found(request);
}

Action Router::admin_config(const IncomingRequest& request) {
  if (request.method == Method::kGet) return respond(200, config_to_json(shared_.config.get()).dump());
  if (request.method != Method::kPost) return method_not_allowed(request);
  const json changes = json::parse(request.body, nullptr, false);
  if (changes.is_discarded()) return openai_error(400, "invalid_json", "the body is not valid JSON");
  try {
    const ProviderConfig updated = apply_config_json(shared_.config.get(), changes);
    shared_.config.set(updated);
    return respond(200, config_to_json(updated).dump());
  } catch (const OptionError& rejected) {
    return openai_error(400, "invalid_config", rejected.what(), rejected.name());
  }
}

Action Router::route_api(const IncomingRequest& request, std::string_view path) {
  const std::uint64_t call_number = shared_.stats.record_request(request.request_id);
  const std::optional<Endpoint> endpoint = endpoint_for_path(path);
  if (!endpoint) {
    if (path == "/v1/models" && request.method == Method::kGet) {
      return respond(
          200,
          R"({"object":"list","data":[{"id":"mock-model","object":"model","created":0,"owned_by":"kafka-llm"}]})");
    }
    return not_found(request);
  }
  if (request.method != Method::kPost) return method_not_allowed(request);
  const ErrorFlavor flavor = error_flavor(*endpoint);

  const json body = json::parse(request.body, nullptr, false);
  const bool body_ok = !body.is_discarded();
  const OverridesOrError parsed = parse_overrides(request.mock, body_ok ? &body : nullptr);
  if (!parsed.error.empty()) return api_error(invalid_request("invalid_mock_option", parsed.error), flavor);
  const RequestPlan plan = plan_request(config(), parsed.overrides, call_number, random_);
  const FaultKind fault = plan.fault.kind;
  if (fault != FaultKind::kNone) shared_.stats.record_fault(fault_name(plan.fault));
  if (parsed.overrides.record_body) shared_.stats.record_body(request.request_id, request.body);

  Action action;
  switch (fault) {
    case FaultKind::kStatus:
      action = api_error(status_fault_error(plan.fault.status), flavor);
      if (plan.fault.status == 429) {
        action.retry_after = format_seconds(plan.retry_after_s);
        if (plan.retry_after_ms) action.retry_after_ms = format_seconds(*plan.retry_after_ms);
      }
      break;
    case FaultKind::kHang:
      action.kind = ActionKind::kHang;
      break;
    case FaultKind::kReset:
      action.kind = ActionKind::kReset;
      break;
    case FaultKind::kMalformed:
      action = respond(200, std::string(malformed_body()));
      break;
    case FaultKind::kWrongContentType:
      action = respond(200, "<html><body><h1>mock provider</h1><p>not an API response</p></body></html>",
                       "text/html; charset=utf-8");
      break;
    case FaultKind::kNone:
    case FaultKind::kTruncate: {
      if (!body_ok) {
        action = api_error(
            invalid_request("invalid_json", "We could not parse the JSON body of your request."), flavor);
        break;
      }
      const ReplyContext context{shared_.sequence.fetch_add(1, std::memory_order_relaxed) + 1,
                                 static_cast<std::int64_t>(std::time(nullptr)), parsed.overrides.content};
      auto built = build_reply(*endpoint, body, context);
      if (auto* error = std::get_if<ApiError>(&built)) {
        action = api_error(*error, flavor);
        break;
      }
      Reply& reply = std::get<Reply>(built);
      if (reply.stream) {
        action.kind = ActionKind::kStream;
        action.content_type = "text/event-stream";
        action.events = std::move(reply.events);
        action.token_interval = plan.token_interval;
      } else {
        action.body = std::move(reply.body);
      }
      if (fault == FaultKind::kTruncate) action.kind = ActionKind::kTruncate;
      break;
    }
  }
  action.delay = plan.latency;
  return action;
}

}  // namespace kafka_llm::mock_provider
