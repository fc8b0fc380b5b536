#include "kafka_llm/policy/circuit_breaker.hpp"

#include <algorithm>
#include <stdexcept>

namespace kafka_llm::policy {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMaxConfiguredDuration{std::chrono::hours{24} * 366};

void check_positive(milliseconds value, const char* message) {
  if (value.count() <= 0 || value > kMaxConfiguredDuration) throw std::invalid_argument(message);
}

}  // namespace

std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

HealthSignal health_signal(const Classification& outcome, RateLimitCounting rate_limited) noexcept {
  switch (outcome.kind) {
    case FailureKind::kNone:
    case FailureKind::kClientError:
      return HealthSignal::kSuccess;
    case FailureKind::kNetwork:
    case FailureKind::kTimeout:
    case FailureKind::kServerError:
    case FailureKind::kMalformedResponse:
      return HealthSignal::kFailure;
    case FailureKind::kRateLimited:
      return rate_limited == RateLimitCounting::kCountAsFailure ? HealthSignal::kFailure
                                                                : HealthSignal::kNeutral;
    case FailureKind::kUnexpectedStatus:
    case FailureKind::kOther:
      return HealthSignal::kNeutral;
  }
  return HealthSignal::kNeutral;
}

CircuitBreaker::CircuitBreaker(CircuitBreakerConfig config) : config_(config) {
  if (config_.consecutive_failures < 0) throw std::invalid_argument("circuit breaker: failure threshold < 0");
  if (!(config_.failure_ratio >= 0.0 && config_.failure_ratio <= 1.0)) {
    throw std::invalid_argument("circuit breaker: failure ratio must be within [0, 1]");
  }
  if (config_.minimum_outcomes < 0) throw std::invalid_argument("circuit breaker: minimum outcomes < 0");
  if (config_.half_open_probes < 1)
    throw std::invalid_argument("circuit breaker: half-open probes must be >= 1");
  check_positive(config_.window, "circuit breaker: window must be positive (at most 366 days)");
  check_positive(config_.open_cooldown, "circuit breaker: cool-down must be positive (at most 366 days)");
  check_positive(config_.max_open_cooldown,
                 "circuit breaker: max cool-down must be positive (at most 366 days)");
  check_positive(config_.probe_timeout, "circuit breaker: probe timeout must be positive (at most 366 days)");
  if (config_.max_open_cooldown < config_.open_cooldown) {
    throw std::invalid_argument("circuit breaker: max cool-down must not be below the cool-down");
  }
}

BreakerAdmission CircuitBreaker::allow(std::chrono::steady_clock::time_point now) {
  if (state_ == CircuitState::kClosed) return {true, {}};
  if (state_ == CircuitState::kOpen) {
    if (now < open_until_) return {false, open_until_};
    state_ = CircuitState::kHalfOpen;
    probes_in_flight_ = 0;
    probe_window_start_ = now;
  }
  // Probes that never report back (a lost callback, a cancelled request) must not wedge the
  // breaker half-open forever: after probe_timeout they are forgotten.
  if (now >= probe_window_start_ + config_.probe_timeout) {
    probes_in_flight_ = 0;
    probe_window_start_ = now;
  }
  if (probes_in_flight_ >= config_.half_open_probes) {
    return {false, probe_window_start_ + config_.probe_timeout};
  }
  if (probes_in_flight_ == 0) probe_window_start_ = now;
  ++probes_in_flight_;
  return {true, {}};
}

CircuitState CircuitBreaker::on_success(std::chrono::steady_clock::time_point now) {
  switch (state_) {
    case CircuitState::kClosed:
      consecutive_failures_ = 0;
      record(now, false);
      break;
    case CircuitState::kHalfOpen:
      close();
      break;
    case CircuitState::kOpen:
      break;
  }
  return state_;
}

CircuitState CircuitBreaker::on_failure(std::chrono::steady_clock::time_point now) {
  switch (state_) {
    case CircuitState::kClosed:
      ++consecutive_failures_;
      record(now, true);
      if ((config_.consecutive_failures > 0 && consecutive_failures_ >= config_.consecutive_failures) ||
          ratio_exceeded(now)) {
        trip(now);
      }
      break;
    case CircuitState::kHalfOpen:
      trip(now);
      break;
    case CircuitState::kOpen:
      break;
  }
  return state_;
}

CircuitState CircuitBreaker::on_outcome(const Classification& outcome,
                                        std::chrono::steady_clock::time_point now) {
  switch (health_signal(outcome, config_.rate_limited)) {
    case HealthSignal::kSuccess:
      return on_success(now);
    case HealthSignal::kFailure:
      return on_failure(now);
    case HealthSignal::kNeutral:
      if (state_ == CircuitState::kHalfOpen && probes_in_flight_ > 0) --probes_in_flight_;
      break;
  }
  return state_;
}

std::int64_t CircuitBreaker::slot_index(std::chrono::steady_clock::time_point now) const {
  const auto slot_ms = std::max<std::int64_t>(1, config_.window.count() / static_cast<std::int64_t>(kSlots));
  const std::int64_t ms = std::chrono::floor<milliseconds>(now.time_since_epoch()).count();
  return ms / slot_ms - (ms % slot_ms < 0 ? 1 : 0);
}

void CircuitBreaker::record(std::chrono::steady_clock::time_point now, bool failure) {
  const std::int64_t index = slot_index(now);
  constexpr auto kSlotCount = static_cast<std::int64_t>(kSlots);
  auto& slot = slots_[static_cast<std::size_t>(((index % kSlotCount) + kSlotCount) % kSlotCount)];
  if (slot.index != index) slot = Slot{index, 0, 0};
  ++(failure ? slot.failures : slot.successes);
}

bool CircuitBreaker::ratio_exceeded(std::chrono::steady_clock::time_point now) const {
  if (config_.failure_ratio <= 0.0) return false;
  const std::int64_t current = slot_index(now);
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  for (const Slot& slot : slots_) {
    if (slot.index > current - static_cast<std::int64_t>(kSlots) && slot.index <= current) {
      successes += slot.successes;
      failures += slot.failures;
    }
  }
  const std::int64_t total = successes + failures;
  if (total == 0 || total < config_.minimum_outcomes) return false;
  return static_cast<double>(failures) >= config_.failure_ratio * static_cast<double>(total);
}

void CircuitBreaker::trip(std::chrono::steady_clock::time_point now) {
  ++trips_;
  // open_cooldown * 2^(trips - 1), capped; the shift is bounded so it cannot overflow.
  milliseconds cooldown = config_.max_open_cooldown;
  const int doublings = std::min(trips_ - 1, 40);
  if (config_.open_cooldown.count() <= (config_.max_open_cooldown.count() >> doublings)) {
    cooldown = config_.open_cooldown * (std::int64_t{1} << doublings);
  }
  state_ = CircuitState::kOpen;
  open_until_ = now + cooldown;
  consecutive_failures_ = 0;
  probes_in_flight_ = 0;
  slots_.fill(Slot{});
}

void CircuitBreaker::close() {
  state_ = CircuitState::kClosed;
  trips_ = 0;
  consecutive_failures_ = 0;
  probes_in_flight_ = 0;
  slots_.fill(Slot{});
}

}  // namespace kafka_llm::policy
