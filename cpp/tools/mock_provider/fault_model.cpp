#include "fault_model.hpp"

#include <charconv>
#include <cmath>

namespace kafka_llm::mock_provider {
namespace {

constexpr double kMaxMillis = 24.0 * 3600.0 * 1000.0;

std::optional<double> parse_millis(std::string_view text) {
  double value = 0.0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value) || value < 0.0 ||
      value > kMaxMillis) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::chrono::microseconds to_micros(double millis) {
  return std::chrono::microseconds(static_cast<std::int64_t>(std::llround(millis * 1000.0)));
}

std::string apply_body_overrides(const nlohmann::json& mock, MockOverrides& out) {
  if (!mock.is_object()) return "mock: must be a JSON object";
  for (const auto& item : mock.items()) {
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    auto millis = [&](std::optional<double>& field) -> std::string {
      if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0.0 ||
          value.get<double>() > kMaxMillis) {
        return "mock." + key + ": must be a non-negative number";
      }
      field = value.get<double>();
      return {};
    };
    if (key == "fault") {
      std::optional<Fault> fault;
      if (value.is_string()) fault = parse_fault(value.get_ref<const std::string&>());
      if (value.is_number_unsigned()) fault = parse_fault(std::to_string(value.get<std::uint64_t>()));
      if (!fault) return "mock.fault: unknown fault " + value.dump();
      out.fault = fault;
    } else if (key == "fault_times") {
      if (!value.is_number_unsigned()) return "mock.fault_times: must be a non-negative integer";
      out.fault_times = value.get<std::uint64_t>();
    } else if (key == "latency_ms") {
      if (auto error = millis(out.latency_ms); !error.empty()) return error;
    } else if (key == "retry_after") {
      if (auto error = millis(out.retry_after_s); !error.empty()) return error;
    } else if (key == "retry_after_ms") {
      if (auto error = millis(out.retry_after_ms); !error.empty()) return error;
    } else if (key == "token_interval_ms") {
      if (auto error = millis(out.token_interval_ms); !error.empty()) return error;
    } else if (key == "content") {
      if (!value.is_string()) return "mock.content: must be a string";
      out.content = value.get<std::string>();
    } else if (key == "record_body") {
      if (!value.is_boolean()) return "mock.record_body: must be true or false";
      out.record_body = value.get<bool>();
    } else {
      return "mock." + key + ": unknown key";
    }
  }
  return {};
}

}  // namespace

std::optional<Fault> parse_fault(std::string_view text) {
  if (text == "none") return Fault{};
  if (text == "hang") return Fault{FaultKind::kHang, 0};
  if (text == "reset") return Fault{FaultKind::kReset, 0};
  if (text == "malformed") return Fault{FaultKind::kMalformed, 0};
  if (text == "truncate") return Fault{FaultKind::kTruncate, 0};
  if (text == "wrong-content-type") return Fault{FaultKind::kWrongContentType, 0};
  unsigned status = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
  if (ec == std::errc{} && end == text.data() + text.size() && text.size() == 3 && status >= 400 &&
      status <= 599) {
    return Fault{FaultKind::kStatus, status};
  }
  return std::nullopt;
}

std::string fault_name(const Fault& fault) {
  switch (fault.kind) {
    case FaultKind::kNone:
      return "none";
    case FaultKind::kStatus:
      return std::to_string(fault.status);
    case FaultKind::kHang:
      return "hang";
    case FaultKind::kReset:
      return "reset";
    case FaultKind::kMalformed:
      return "malformed";
    case FaultKind::kTruncate:
      return "truncate";
    case FaultKind::kWrongContentType:
      return "wrong-content-type";
  }
  return "none";
}

OverridesOrError parse_overrides(const MockHeaders& headers, const nlohmann::json* body) {
  OverridesOrError result;
  MockOverrides& out = result.overrides;
  if (!headers.latency_ms.empty()) {
    out.latency_ms = parse_millis(headers.latency_ms);
    if (!out.latency_ms) {
      result.error = "x-mock-latency-ms: must be a non-negative number of milliseconds";
      return result;
    }
  }
  if (!headers.fault.empty()) {
    out.fault = parse_fault(headers.fault);
    if (!out.fault) {
      result.error = "x-mock-fault: unknown fault '" + std::string(headers.fault) + "'";
      return result;
    }
  }
  if (!headers.fault_times.empty()) {
    out.fault_times = parse_count(headers.fault_times);
    if (!out.fault_times) {
      result.error = "x-mock-fault-times: must be a non-negative integer";
      return result;
    }
  }
  if (!headers.token_interval_ms.empty()) {
    out.token_interval_ms = parse_millis(headers.token_interval_ms);
    if (!out.token_interval_ms) {
      result.error = "x-mock-token-interval-ms: must be a non-negative number of milliseconds";
      return result;
    }
  }
  if (body != nullptr && body->is_object()) {
    if (auto it = body->find("mock"); it != body->end()) result.error = apply_body_overrides(*it, out);
  }
  return result;
}

RequestPlan plan_request(const ProviderConfig& config, const MockOverrides& overrides,
                         std::uint64_t call_number, std::mt19937_64& random) {
  RequestPlan plan;
  if (overrides.latency_ms) {
    plan.latency = to_micros(*overrides.latency_ms);
  } else if (config.latency_ms > 0.0) {
    double millis = config.latency_ms;
    if (config.latency_dist == LatencyDistribution::kLognormal && config.latency_sigma > 0.0) {
      std::lognormal_distribution<double> distribution(std::log(config.latency_ms), config.latency_sigma);
      millis = std::min(distribution(random), kMaxMillis);
    }
    plan.latency = to_micros(millis);
  }

  if (overrides.fault) {
    const bool exhausted = overrides.fault_times && call_number > *overrides.fault_times;
    if (!exhausted) plan.fault = *overrides.fault;
  } else if (config.fault_429 + config.fault_500 + config.fault_503 + config.fault_hang + config.fault_reset +
                 config.fault_malformed >
             0.0) {
    const double roll = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    double edge = 0.0;
    auto pick = [&](double probability, Fault fault) {
      edge += probability;
      if (plan.fault.kind == FaultKind::kNone && probability > 0.0 && roll < edge) plan.fault = fault;
    };
    pick(config.fault_429, Fault{FaultKind::kStatus, 429});
    pick(config.fault_500, Fault{FaultKind::kStatus, 500});
    pick(config.fault_503, Fault{FaultKind::kStatus, 503});
    pick(config.fault_hang, Fault{FaultKind::kHang, 0});
    pick(config.fault_reset, Fault{FaultKind::kReset, 0});
    pick(config.fault_malformed, Fault{FaultKind::kMalformed, 0});
  }

  plan.retry_after_s = overrides.retry_after_s.value_or(config.retry_after_s);
  plan.retry_after_ms = overrides.retry_after_ms;
  plan.token_interval = to_micros(overrides.token_interval_ms.value_or(config.token_interval_ms));
  return plan;
}

}  // namespace kafka_llm::mock_provider
