#include "kafka_llm/pipeline/provider_dispatch.hpp"

#include <boost/asio/post.hpp>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/format/provider_response.hpp"

namespace kafka_llm::pipeline {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {
/// A shared-limit check that Redis did not answer is asked again after this long.
constexpr milliseconds kSharedRetryDelay{200};

policy::CircuitBreaker make_breaker(const CircuitConfig& circuit) {
  policy::CircuitBreakerConfig breaker;
  breaker.consecutive_failures = circuit.failure_threshold;
  breaker.failure_ratio = circuit.failure_ratio;
  breaker.minimum_outcomes = circuit.minimum_outcomes;
  breaker.window = circuit.window;
  breaker.open_cooldown = circuit.cooldown;
  breaker.max_open_cooldown = circuit.max_cooldown;
  // 429s are the provider pacing us: Retry-After and the rate limiter handle them.
  breaker.rate_limited = policy::RateLimitCounting::kIgnore;
  return policy::CircuitBreaker(breaker);
}

std::optional<std::int64_t> per_minute(double limit) {
  return limit > 0 ? std::optional<std::int64_t>(static_cast<std::int64_t>(limit)) : std::nullopt;
}
}  // namespace

ProviderDispatch::ProviderDispatch(asio::io_context& io, const PipelineConfig& config,
                                   redis::RedisClient& redis, metrics::PipelineMetrics& metrics,
                                   const Clock& clock, Wake wake)
    : io_(io),
      config_(config),
      redis_(redis),
      metrics_(metrics),
      clock_(clock),
      wake_(std::move(wake)),
      http_(std::make_unique<http::Client>(io, http::ClientOptions{})) {
  for (const auto& provider : config_.providers) {
    ProviderState state{
        &provider, std::nullopt, make_breaker(config_.circuit), {}, policy::CircuitState::kClosed, {}};
    metrics_.circuit_state(provider.name, policy::to_string(policy::CircuitState::kClosed));
    if ((provider.rpm > 0 || provider.tpm > 0) && !provider.shared_limits) {
      state.limiter = policy::RateLimiter::per_minute(per_minute(provider.rpm), per_minute(provider.tpm));
    }
    providers_.emplace(provider.name, std::move(state));
  }
}

ProviderDispatch::~ProviderDispatch() {
  stop();
}

void ProviderDispatch::register_embedded(const std::string& name, EmbeddedProvider provider) {
  auto it = providers_.find(name);
  if (it == providers_.end() || it->second.config->kind != ProviderKind::kEmbedded) {
    throw ConfigError("providers", "no provider of kind python is named \"" + name + "\"");
  }
  it->second.embedded = std::move(provider);
}

void ProviderDispatch::start() {
  std::size_t threads = 0;
  for (const auto& [name, state] : providers_) {
    if (state.config->kind != ProviderKind::kEmbedded) continue;
    if (!state.embedded) {
      throw ConfigError("providers",
                        "provider \"" + name + "\" is of kind python but no callable was registered");
    }
    threads += std::max<std::size_t>(1, state.config->max_concurrency);
  }
  if (threads > 0) embedded_pool_ = std::make_unique<asio::thread_pool>(threads);
}

void ProviderDispatch::stop() {
  http_.reset();  // cancels what is left without callbacks
  if (embedded_pool_) embedded_pool_->join();
}

ProviderDispatch::ProviderState& ProviderDispatch::state(const ProviderConfig& provider) {
  return providers_.at(provider.name);
}

void ProviderDispatch::report_circuit(ProviderState& state) {
  const auto now_state = state.breaker.state();
  if (now_state == state.reported) return;
  state.reported = now_state;
  metrics_.circuit_state(state.config->name, policy::to_string(now_state));
  if (now_state == policy::CircuitState::kHalfOpen) return;
  // The probe decided: the parked jobs ask again now (closed: they go; open: they wait for the new
  // cool-down).
  for (const auto job : std::exchange(state.breaker_waiters, {})) wake_(job);
}

void ProviderDispatch::admit(std::uint64_t job, const ProviderConfig& provider,
                             const format::RequestEnvelope& request, Ticket& ticket, AdmissionHandler done) {
  auto& st = state(provider);
  const auto now = clock_.steady();
  const auto admission = st.breaker.allow(now);
  report_circuit(st);
  if (!admission.allowed) {
    if (st.breaker.state() == policy::CircuitState::kHalfOpen) st.breaker_waiters.push_back(job);
    done(std::max(std::chrono::duration_cast<milliseconds>(admission.retry_at - now), milliseconds(1)),
         false);
    return;
  }
  const bool shared = provider.shared_limits && (provider.rpm > 0 || provider.tpm > 0);
  if ((shared || st.limiter) && ticket.estimated_tokens == 0) {
    ticket.estimated_tokens = static_cast<std::int64_t>(format::estimate_tokens(request));
  }
  if (shared) {
    shared_take(provider, ticket, std::move(done));
    return;
  }
  if (st.limiter) {
    auto take = st.limiter->acquire(ticket.estimated_tokens, now);
    if (take.status == policy::TakeStatus::kMustWait) {
      done(std::max(take.wait, milliseconds(1)), true);
      return;
    }
  }
  done(milliseconds(0), false);
}

void ProviderDispatch::report(const ProviderConfig& provider, BreakerReport report,
                              const policy::Classification& outcome) {
  auto& st = state(provider);
  const auto now = clock_.steady();
  switch (report) {
    case BreakerReport::kSuccess:
      st.breaker.on_success(now);
      break;
    case BreakerReport::kFailure:
      st.breaker.on_failure(now);
      break;
    case BreakerReport::kClassified:
      st.breaker.on_outcome(outcome, now);
      break;
  }
  report_circuit(st);
}

void ProviderDispatch::refund(const ProviderConfig& provider, const Ticket& ticket) {
  if (ticket.estimated_tokens <= 0) return;
  auto& st = state(provider);
  if (st.limiter) st.limiter->refund(ticket.estimated_tokens, clock_.steady());
  if (provider.shared_limits) shared_charge(provider, -1, -ticket.estimated_tokens);
}

void ProviderDispatch::settle(const ProviderConfig& provider, const Ticket& ticket,
                              std::int64_t total_tokens) {
  if (ticket.estimated_tokens <= 0) return;
  auto& st = state(provider);
  const auto delta = total_tokens - ticket.estimated_tokens;
  if (st.limiter) st.limiter->settle(delta, clock_.steady());
  if (provider.shared_limits && delta != 0) shared_charge(provider, 0, delta);
}

http::Client::RequestId ProviderDispatch::call(const ProviderConfig& provider,
                                               std::optional<http::Request> http,
                                               const format::RequestEnvelope& request,
                                               http::Client::DataHandler on_data, DoneHandler done) {
  if (http) {
    return http_->start(std::move(*http), std::move(on_data),
                        [done = std::move(done)](http::Response&& response) {
                          done(ProviderCall::from(std::move(response)));
                        });
  }
  const auto started = clock_.steady();
  asio::post(*embedded_pool_, [this, fn = state(provider).embedded, path = std::string(request.path),
                               body = request.body.dump(), started, done = std::move(done)]() mutable {
    ProviderCall outcome;
    try {
      auto result = fn(path, body);
      outcome.status = result.status_code;
      outcome.body = std::move(result.body_json);
    } catch (const std::exception& e) {
      outcome.status = 500;
      outcome.transport_message = e.what();
      outcome.final_error = true;
    }
    outcome.latency = std::chrono::duration_cast<std::chrono::microseconds>(clock_.steady() - started);
    asio::post(
        io_, [outcome = std::move(outcome), done = std::move(done)]() mutable { done(std::move(outcome)); });
  });
  return 0;
}

void ProviderDispatch::cancel(http::Client::RequestId id) {
  if (id != 0 && http_) http_->cancel(id);
}

// Limits shared by every worker: token buckets in Redis, one atomic script per check-and-take.
std::vector<std::string> ProviderDispatch::shared_args(const ProviderConfig& provider,
                                                       policy::SharedRateLimitMode mode,
                                                       std::int64_t requests, std::int64_t tokens) const {
  // One hash tag per provider keeps the keys of a call in one Redis Cluster slot.
  const std::string base = config_.redis.key_prefix + ":rl:{" + provider.name + "}:";
  std::vector<std::string> keys;
  std::vector<policy::SharedBucketOp> ops;
  if (provider.rpm > 0) {
    keys.push_back(base + "rpm");
    ops.push_back({policy::TokenBucketConfig::per_minute(static_cast<std::int64_t>(provider.rpm)), requests});
  }
  if (provider.tpm > 0) {
    keys.push_back(base + "tpm");
    ops.push_back({policy::TokenBucketConfig::per_minute(static_cast<std::int64_t>(provider.tpm)), tokens});
  }
  std::vector<std::string> args = {std::to_string(keys.size())};
  args.insert(args.end(), keys.begin(), keys.end());
  for (auto& a : policy::shared_rate_limit_argv(clock_.system(), mode, ops)) args.push_back(std::move(a));
  return args;
}

void ProviderDispatch::shared_take(const ProviderConfig& provider, const Ticket& ticket,
                                   AdmissionHandler done) {
  const auto args = shared_args(provider, policy::SharedRateLimitMode::kTake, 1, ticket.estimated_tokens);
  const std::vector<std::string_view> views(args.begin(), args.end());
  redis_.eval(shared_rate_limit_script_, views, [done = std::move(done)](redis::RedisReply&& reply) {
    if (!reply.ok() || reply.type != redis::RedisReply::Type::kInteger) {
      done(kSharedRetryDelay, false);
      return;
    }
    done(milliseconds(std::max<std::int64_t>(reply.integer, 0)), reply.integer > 0);
  });
}

void ProviderDispatch::shared_charge(const ProviderConfig& provider, std::int64_t requests,
                                     std::int64_t tokens) {
  // A lost correction leaves the shared limit slightly off until the buckets refill.
  const auto args = shared_args(provider, policy::SharedRateLimitMode::kCharge, requests, tokens);
  const std::vector<std::string_view> views(args.begin(), args.end());
  redis_.eval(shared_rate_limit_script_, views, [](redis::RedisReply&&) {});
}

}  // namespace kafka_llm::pipeline
