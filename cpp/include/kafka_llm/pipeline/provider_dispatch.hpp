#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kafka_llm/http/client.hpp"
#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/pipeline/clock.hpp"
#include "kafka_llm/pipeline/pipeline.hpp"
#include "kafka_llm/pipeline/provider_call.hpp"
#include "kafka_llm/pipeline/request_fsm.hpp"
#include "kafka_llm/policy/circuit_breaker.hpp"
#include "kafka_llm/policy/rate_limiter.hpp"
#include "kafka_llm/policy/shared_rate_limit_script.hpp"
#include "kafka_llm/redis/redis_client.hpp"

namespace kafka_llm::pipeline {

/// The providers' side of the pipeline (docs/architecture.md, "Provider dispatch"): per provider a
/// circuit breaker and local or shared (Redis) RPM/TPM limits that admit calls, the HTTP client and
/// the embedded providers' thread pool that make them. Runs on the io thread (the embedded callables
/// on the pool); every handler is called on the io thread.
class ProviderDispatch {
 public:
  /// What admission took for one request, given back on a retry and corrected on success.
  struct Ticket {
    std::int64_t estimated_tokens = 0;
  };
  /// `wait` zero: admitted; else ask again after it (`rate_limited`: a limit said so, not the breaker).
  using AdmissionHandler = std::function<void(std::chrono::milliseconds wait, bool rate_limited)>;
  /// A request turned away by a half-open breaker may ask again now: its probe decided.
  using Wake = std::function<void(std::uint64_t job)>;
  using DoneHandler = std::function<void(ProviderCall&&)>;

  /// `config`, `io`, `redis`, `metrics` and `clock` must outlive the dispatch.
  ProviderDispatch(boost::asio::io_context& io, const PipelineConfig& config, redis::RedisClient& redis,
                   metrics::PipelineMetrics& metrics, const Clock& clock, Wake wake);
  ~ProviderDispatch();
  ProviderDispatch(const ProviderDispatch&) = delete;
  ProviderDispatch& operator=(const ProviderDispatch&) = delete;
  ProviderDispatch(ProviderDispatch&&) = delete;
  ProviderDispatch& operator=(ProviderDispatch&&) = delete;

  /// Throws ConfigError when `name` is not an embedded provider.
  void register_embedded(const std::string& name, EmbeddedProvider provider);
  /// Throws ConfigError when an embedded provider has no callable; starts the embedded pool.
  void start();

  void admit(std::uint64_t job, const ProviderConfig& provider, const format::RequestEnvelope& request,
             Ticket& ticket, AdmissionHandler done);
  void report(const ProviderConfig& provider, BreakerReport report, const policy::Classification& outcome);
  /// Gives back what admission took (the attempt is retried).
  void refund(const ProviderConfig& provider, const Ticket& ticket);
  /// Corrects the token limits by the call's real usage.
  void settle(const ProviderConfig& provider, const Ticket& ticket, std::int64_t total_tokens);

  /// Sends `http` (with `on_data` for a streamed body) or, when it is empty, calls the embedded
  /// provider with `request`'s path and body. Returns the HTTP request's id (0 for embedded).
  http::Client::RequestId call(const ProviderConfig& provider, std::optional<http::Request> http,
                               const format::RequestEnvelope& request, http::Client::DataHandler on_data,
                               DoneHandler done);
  void cancel(http::Client::RequestId id);
  /// Cancels every HTTP request without calling back and joins the embedded pool. Idempotent.
  void stop();

 private:
  struct ProviderState {
    const ProviderConfig* config = nullptr;
    std::optional<policy::RateLimiter> limiter;
    policy::CircuitBreaker breaker;
    EmbeddedProvider embedded;
    policy::CircuitState reported = policy::CircuitState::kClosed;  ///< as last told to the metrics
    /// Jobs a half-open breaker turned away while its probe is out: woken as soon as the probe
    /// decides (closed or open again), not after the probe timeout.
    std::vector<std::uint64_t> breaker_waiters;
  };

  ProviderState& state(const ProviderConfig& provider);
  void report_circuit(ProviderState& state);
  void shared_take(const ProviderConfig& provider, const Ticket& ticket, AdmissionHandler done);
  void shared_charge(const ProviderConfig& provider, std::int64_t requests, std::int64_t tokens);
  std::vector<std::string> shared_args(const ProviderConfig& provider, policy::SharedRateLimitMode mode,
                                       std::int64_t requests, std::int64_t tokens) const;

  boost::asio::io_context& io_;
  const PipelineConfig& config_;
  redis::RedisClient& redis_;
  metrics::PipelineMetrics& metrics_;
  const Clock& clock_;
  Wake wake_;
  std::unordered_map<std::string, ProviderState> providers_;
  std::unique_ptr<http::Client> http_;
  std::unique_ptr<boost::asio::thread_pool> embedded_pool_;
  const redis::RedisScript shared_rate_limit_script_{std::string(policy::kSharedRateLimitScript)};
};

}  // namespace kafka_llm::pipeline
