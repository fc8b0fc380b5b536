#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "options.hpp"

namespace kafka_llm::mock_provider {

/// What goes wrong with a request, if anything.
enum class FaultKind : std::uint8_t {
  kNone,
  kStatus,            ///< an HTTP error status with an error body (`Fault::status`)
  kHang,              ///< never answer; hold the connection until the client closes it
  kReset,             ///< close the connection abruptly (RST) without a response
  kMalformed,         ///< 200, application/json, body that is not JSON
  kTruncate,          ///< close the connection half way through the response
  kWrongContentType,  ///< 200 with text/html
};

struct Fault {
  FaultKind kind = FaultKind::kNone;
  unsigned status = 0;  ///< only for kStatus: 400..599
};

/// Parses a fault name as accepted by `x-mock-fault` and `mock.fault`: `429`, `500`, any other
/// status 400..599, `hang`, `reset`, `malformed`, `truncate`, `wrong-content-type`, or `none`.
/// Returns nullopt for anything else.
std::optional<Fault> parse_fault(std::string_view text);

/// Short name of a fault for `/stats` (`"429"`, `"hang"`, ...).
std::string fault_name(const Fault& fault);

/// Per-request overrides from the `x-mock-*` headers and the body's `"mock"` object.
struct MockOverrides {
  std::optional<double> latency_ms;
  std::optional<Fault> fault;
  std::optional<std::uint64_t> fault_times;
  std::optional<double> retry_after_s;
  std::optional<double> retry_after_ms;
  std::optional<double> token_interval_ms;
  std::optional<std::string> content;  ///< `mock.content`: answer with this text instead of the echo
  bool record_body = false;  ///< `mock.record_body`: keep the request body for GET /stats?request_id=
};

/// Raw `x-mock-*` header values; empty when absent.
struct MockHeaders {
  std::string_view latency_ms;
  std::string_view fault;
  std::string_view fault_times;
  std::string_view token_interval_ms;
};

/// Overrides from the headers, then from `body["mock"]` (the body wins). `body` may be null (no
/// or invalid JSON). Returns the error message naming the bad header or key when a value is
/// invalid.
struct OverridesOrError {
  MockOverrides overrides;
  std::string error;  ///< empty on success
};
OverridesOrError parse_overrides(const MockHeaders& headers, const nlohmann::json* body);

/// What the server does with one request: wait `latency`, then answer per `fault`.
struct RequestPlan {
  std::chrono::microseconds latency{0};
  Fault fault;
  double retry_after_s = 1.0;
  std::optional<double> retry_after_ms;
  std::chrono::microseconds token_interval{0};
};

/// Decides latency and fault for a request. `call_number` is how many requests (this one
/// included) carried the same request id; a forced fault with `fault_times` N applies to calls
/// 1..N only, later calls succeed. Random faults apply only when no fault is forced. An explicit
/// latency override is used as is (not sampled). Pure apart from drawing from `random`.
RequestPlan plan_request(const ProviderConfig& config, const MockOverrides& overrides,
                         std::uint64_t call_number, std::mt19937_64& random);

}  // namespace kafka_llm::mock_provider
