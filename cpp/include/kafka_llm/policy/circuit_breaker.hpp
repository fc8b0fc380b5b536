#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "kafka_llm/policy/classify.hpp"

namespace kafka_llm::policy {

/// The three states of a circuit breaker.
enum class CircuitState : std::uint8_t { kClosed, kOpen, kHalfOpen };

/// "closed", "open" or "half_open".
std::string_view to_string(CircuitState state) noexcept;

/// Whether a rate-limited (429) outcome counts against the provider's health.
enum class RateLimitCounting : std::uint8_t { kCountAsFailure, kIgnore };

/// Circuit-breaker settings. A zero threshold disables that trip condition.
struct CircuitBreakerConfig {
  int consecutive_failures = 5;  ///< Trip after this many failures in a row (0: never).
  double failure_ratio = 0.5;    ///< Trip when failures / outcomes in the window reach this (0: never) ...
  int minimum_outcomes = 20;     ///< ... and the window holds at least this many outcomes.
  std::chrono::milliseconds window{10'000};             ///< Sliding window of the ratio, 10 slots.
  std::chrono::milliseconds open_cooldown{5'000};       ///< Open time after the first trip ...
  std::chrono::milliseconds max_open_cooldown{60'000};  ///< ... doubled per repeated trip up to this.
  int half_open_probes = 1;                             ///< Requests let through at once while half-open.
  std::chrono::milliseconds probe_timeout{60'000};      ///< A probe silent this long is presumed lost.
  RateLimitCounting rate_limited = RateLimitCounting::kCountAsFailure;
};

/// The breaker's answer to "may I send a request now?".
struct BreakerAdmission {
  bool allowed = true;
  /// When not allowed: the earliest time asking again can succeed.
  std::chrono::steady_clock::time_point retry_at{};
};

/// How an attempt's classified outcome counts for provider health.
enum class HealthSignal : std::uint8_t { kSuccess, kFailure, kNeutral };

/// Maps a classified attempt to a health signal: success, and client errors (the provider
/// answered), count as success; network errors, timeouts, server errors and malformed bodies
/// as failure; 429 per `rate_limited`; a local transport error (kOther) and unexpected statuses
/// are neutral.
HealthSignal health_signal(const Classification& outcome, RateLimitCounting rate_limited) noexcept;

/// A per-provider circuit breaker. Closed: everything passes; it trips open after
/// `consecutive_failures` failures in a row, or when the failure ratio over the sliding window
/// reaches `failure_ratio` with at least `minimum_outcomes` outcomes. Open: nothing passes for
/// the cool-down (open_cooldown, doubled on each trip that follows a failed probe, up to
/// max_open_cooldown). Then half-open: up to `half_open_probes` requests pass; a success closes
/// the circuit (and resets the cool-down), a failure opens it again.
/// Pure and not thread-safe; time is injected as steady clock readings. Outcomes reported while
/// open are ignored; a result arriving while half-open is taken as a probe result even when the
/// request was admitted earlier (its evidence is just as recent).
class CircuitBreaker {
 public:
  /// Throws std::invalid_argument for negative thresholds, a ratio outside [0, 1],
  /// half_open_probes < 1, a non-positive window, open_cooldown or probe_timeout, or
  /// max_open_cooldown < open_cooldown.
  explicit CircuitBreaker(CircuitBreakerConfig config);

  /// Whether a request may be sent now. Moves open -> half-open when the cool-down is over, and
  /// counts an admitted half-open request as a probe.
  BreakerAdmission allow(std::chrono::steady_clock::time_point now);

  /// Reports a successful (healthy) outcome; returns the state afterwards.
  CircuitState on_success(std::chrono::steady_clock::time_point now);

  /// Reports a failed (unhealthy) outcome; returns the state afterwards.
  CircuitState on_failure(std::chrono::steady_clock::time_point now);

  /// Reports a classified outcome through health_signal(); neutral outcomes only release a probe.
  CircuitState on_outcome(const Classification& outcome, std::chrono::steady_clock::time_point now);

  /// The current state, as of the last call (an elapsed cool-down shows after allow()).
  CircuitState state() const noexcept { return state_; }

  /// While open: when the cool-down ends.
  std::chrono::steady_clock::time_point open_until() const noexcept { return open_until_; }

  /// Trips since the circuit was last closed (0 while closed).
  int trips() const noexcept { return trips_; }

  int consecutive_failures() const noexcept { return consecutive_failures_; }

 private:
  struct Slot {
    std::int64_t index = -1;
    int successes = 0;
    int failures = 0;
  };
  static constexpr std::size_t kSlots = 10;

  void record(std::chrono::steady_clock::time_point now, bool failure);
  bool ratio_exceeded(std::chrono::steady_clock::time_point now) const;
  std::int64_t slot_index(std::chrono::steady_clock::time_point now) const;
  void trip(std::chrono::steady_clock::time_point now);
  void close();

  CircuitBreakerConfig config_;
  CircuitState state_ = CircuitState::kClosed;
  int consecutive_failures_ = 0;
  int trips_ = 0;
  std::chrono::steady_clock::time_point open_until_{};
  int probes_in_flight_ = 0;
  std::chrono::steady_clock::time_point probe_window_start_{};
  std::array<Slot, kSlots> slots_{};
};

}  // namespace kafka_llm::policy
