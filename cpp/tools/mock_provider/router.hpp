#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "fault_model.hpp"
#include "options.hpp"
#include "shared_state.hpp"

namespace kafka_llm::mock_provider {

enum class Method : std::uint8_t { kGet, kHead, kPost, kOther };

/// The parts of an HTTP request the mock looks at. Views into the connection's parser; valid
/// while the request is being answered.
struct IncomingRequest {
  Method method = Method::kOther;
  std::string_view method_name;
  std::string_view target;  ///< path and query
  std::string_view body;
  std::string_view request_id;  ///< `x-request-id`, empty when absent
  MockHeaders mock;
};

/// How a connection carries out its answer.
enum class ActionKind : std::uint8_t {
  kRespond,   ///< send `status`, `content_type` and `body`
  kStream,    ///< send 200 text/event-stream, then `events` one chunk each, `token_interval` apart
  kHang,      ///< never answer; wait for the client to close
  kReset,     ///< close abruptly (RST) without a response
  kTruncate,  ///< like kRespond or kStream, then close half way (no final chunk / short body)
};

/// The answer to one request, decided without doing any I/O.
struct Action {
  ActionKind kind = ActionKind::kRespond;
  std::chrono::microseconds delay{0};  ///< wait this long before answering
  unsigned status = 200;
  std::string_view content_type = "application/json";
  std::string body;
  std::vector<std::string> events;  ///< kStream, and kTruncate of a streamed reply
  std::chrono::microseconds token_interval{0};
  std::string retry_after;     ///< `Retry-After` value, empty for none
  std::string retry_after_ms;  ///< `retry-after-ms` value, empty for none
  bool count_status = false;  ///< a /v1 answer: the connection records `status` in the stats when it sends it
};

/// Routes requests to the endpoints and decides latency and faults. One per I/O thread: it owns
/// that thread's random source and config copy, so it must only be used from that thread. The
/// shared state must outlive it.
class Router {
 public:
  Router(SharedState& shared, std::seed_seq& seed) : shared_(shared), random_(seed) {}

  /// Counts `/v1/*` requests and fault decisions in the stats, applies `POST /admin/config`
  /// and `POST /stats/reset`, and returns what to answer.
  Action route(const IncomingRequest& request);

  SharedState& shared() noexcept { return shared_; }

 private:
  const ProviderConfig& config();
  Action route_api(const IncomingRequest& request, std::string_view path);
  Action admin_config(const IncomingRequest& request);

  SharedState& shared_;
  std::mt19937_64 random_;
  ProviderConfig config_;
  std::uint64_t config_version_ = 0;
};

}  // namespace kafka_llm::mock_provider
