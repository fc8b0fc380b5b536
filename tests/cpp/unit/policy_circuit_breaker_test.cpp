#include <gtest/gtest.h>

#include <stdexcept>

#include "kafka_llm/policy/circuit_breaker.hpp"

namespace kafka_llm::policy {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

const auto kT0 = std::chrono::steady_clock::time_point{} + 100h;

CircuitBreakerConfig consecutive_only(int threshold) {
  CircuitBreakerConfig c;
  c.consecutive_failures = threshold;
  c.failure_ratio = 0.0;
  c.open_cooldown = 5s;
  c.max_open_cooldown = 60s;
  c.half_open_probes = 1;
  c.probe_timeout = 30s;
  return c;
}

Classification outcome(int status, TransportError transport = TransportError::kNone) {
  return classify(transport, status, {});
}

TEST(PolicyCircuitBreaker, StartsClosedAndAdmits) {
  CircuitBreaker breaker(consecutive_only(3));
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(breaker.allow(kT0).allowed);
  EXPECT_EQ(breaker.trips(), 0);
}

TEST(PolicyCircuitBreaker, TripsAfterConsecutiveFailures) {
  CircuitBreaker breaker(consecutive_only(3));
  EXPECT_EQ(breaker.on_failure(kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.on_failure(kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.consecutive_failures(), 2);
  EXPECT_EQ(breaker.on_success(kT0), CircuitState::kClosed);  // resets the run
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  EXPECT_EQ(breaker.on_failure(kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.on_failure(kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.on_failure(kT0 + 1s), CircuitState::kOpen);
  EXPECT_EQ(breaker.trips(), 1);
  EXPECT_EQ(breaker.open_until(), kT0 + 6s);
  const BreakerAdmission denied = breaker.allow(kT0 + 2s);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.retry_at, kT0 + 6s);
  EXPECT_FALSE(breaker.allow(kT0 + 6s - 1ms).allowed);
}

TEST(PolicyCircuitBreaker, HalfOpenProbeSuccessCloses) {
  CircuitBreaker breaker(consecutive_only(1));
  breaker.on_failure(kT0);
  ASSERT_EQ(breaker.state(), CircuitState::kOpen);
  const BreakerAdmission probe = breaker.allow(kT0 + 5s);
  EXPECT_TRUE(probe.allowed);
  EXPECT_EQ(breaker.state(), CircuitState::kHalfOpen);
  // Only one probe at a time; others wait until the probe times out at the latest.
  const BreakerAdmission second = breaker.allow(kT0 + 6s);
  EXPECT_FALSE(second.allowed);
  EXPECT_EQ(second.retry_at, kT0 + 5s + 30s);
  EXPECT_EQ(breaker.on_success(kT0 + 7s), CircuitState::kClosed);
  EXPECT_EQ(breaker.trips(), 0);
  EXPECT_TRUE(breaker.allow(kT0 + 7s).allowed);
  EXPECT_TRUE(breaker.allow(kT0 + 7s).allowed);
}

TEST(PolicyCircuitBreaker, RepeatedTripsDoubleTheCooldownUpToTheMax) {
  CircuitBreaker breaker(consecutive_only(1));
  auto now = kT0;
  breaker.on_failure(now);
  const milliseconds expected[] = {5s, 10s, 20s, 40s, 60s, 60s, 60s};
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    ASSERT_EQ(breaker.state(), CircuitState::kOpen) << i;
    EXPECT_EQ(breaker.open_until() - now, expected[i]) << "trip " << i + 1;
    now = breaker.open_until();
    ASSERT_TRUE(breaker.allow(now).allowed);
    EXPECT_EQ(breaker.on_failure(now), CircuitState::kOpen);  // the probe failed
  }
  EXPECT_EQ(breaker.trips(), 8);
  // A success resets the cool-down: the next trip is short again.
  now = breaker.open_until();
  ASSERT_TRUE(breaker.allow(now).allowed);
  breaker.on_success(now);
  breaker.on_failure(now);
  EXPECT_EQ(breaker.open_until() - now, 5s);
}

TEST(PolicyCircuitBreaker, ManyTripsDoNotOverflowTheCooldown) {
  CircuitBreakerConfig c = consecutive_only(1);
  c.open_cooldown = 1ms;
  c.max_open_cooldown = std::chrono::hours{24 * 365};
  CircuitBreaker breaker(c);
  auto now = kT0;
  breaker.on_failure(now);
  for (int i = 0; i < 200; ++i) {
    now = breaker.open_until();
    ASSERT_TRUE(breaker.allow(now).allowed);
    breaker.on_failure(now);
    ASSERT_GT(breaker.open_until(), now);
    ASSERT_LE(breaker.open_until() - now, c.max_open_cooldown);
  }
  EXPECT_EQ(breaker.open_until() - now, c.max_open_cooldown);
}

TEST(PolicyCircuitBreaker, OutcomesWhileOpenAreIgnored) {
  CircuitBreaker breaker(consecutive_only(1));
  breaker.on_failure(kT0);
  const auto until = breaker.open_until();
  EXPECT_EQ(breaker.on_success(kT0 + 1s), CircuitState::kOpen);
  EXPECT_EQ(breaker.on_failure(kT0 + 2s), CircuitState::kOpen);
  EXPECT_EQ(breaker.open_until(), until);
  EXPECT_EQ(breaker.trips(), 1);
}

TEST(PolicyCircuitBreaker, SeveralProbesAndLostProbes) {
  CircuitBreakerConfig c = consecutive_only(1);
  c.half_open_probes = 3;
  c.probe_timeout = 10s;
  CircuitBreaker breaker(c);
  breaker.on_failure(kT0);
  const auto open_end = breaker.open_until();
  EXPECT_TRUE(breaker.allow(open_end).allowed);
  EXPECT_TRUE(breaker.allow(open_end + 1s).allowed);
  EXPECT_TRUE(breaker.allow(open_end + 2s).allowed);
  const BreakerAdmission full = breaker.allow(open_end + 3s);
  EXPECT_FALSE(full.allowed);
  EXPECT_EQ(full.retry_at, open_end + 10s);
  // Nobody reports back: after the probe timeout, probing starts afresh.
  EXPECT_TRUE(breaker.allow(open_end + 10s).allowed);
  EXPECT_EQ(breaker.state(), CircuitState::kHalfOpen);
  // A neutral outcome frees its probe slot without deciding anything.
  EXPECT_TRUE(breaker.allow(open_end + 11s).allowed);
  EXPECT_TRUE(breaker.allow(open_end + 11s).allowed);
  EXPECT_FALSE(breaker.allow(open_end + 11s).allowed);
  EXPECT_EQ(breaker.on_outcome(outcome(0, TransportError::kOther), open_end + 12s), CircuitState::kHalfOpen);
  EXPECT_TRUE(breaker.allow(open_end + 12s).allowed);
  // One failed probe reopens.
  EXPECT_EQ(breaker.on_failure(open_end + 13s), CircuitState::kOpen);
  EXPECT_EQ(breaker.open_until(), open_end + 13s + 10s);
}

TEST(PolicyCircuitBreaker, FailureRatioOverTheWindow) {
  CircuitBreakerConfig c;
  c.consecutive_failures = 0;
  c.failure_ratio = 0.5;
  c.minimum_outcomes = 10;
  c.window = 10s;
  CircuitBreaker breaker(c);
  // 9 outcomes, 5 failures: below the minimum.
  for (int i = 0; i < 4; ++i) {
    breaker.on_success(kT0);
    breaker.on_failure(kT0);
  }
  EXPECT_EQ(breaker.on_failure(kT0), CircuitState::kClosed);
  // The 10th outcome, a success: ratio 5/10 checked only on failures.
  EXPECT_EQ(breaker.on_success(kT0), CircuitState::kClosed);
  // 11th, failure: 6/11 >= 0.5.
  EXPECT_EQ(breaker.on_failure(kT0 + 1s), CircuitState::kOpen);
}

TEST(PolicyCircuitBreaker, RatioBelowThresholdStaysClosed) {
  CircuitBreakerConfig c;
  c.consecutive_failures = 0;
  c.failure_ratio = 0.5;
  c.minimum_outcomes = 10;
  c.window = 10s;
  CircuitBreaker breaker(c);
  for (int i = 0; i < 100; ++i) {
    breaker.on_success(kT0 + milliseconds{i * 10});
    breaker.on_success(kT0 + milliseconds{i * 10});
    ASSERT_EQ(breaker.on_failure(kT0 + milliseconds{i * 10}), CircuitState::kClosed) << i;  // 1/3
  }
}

TEST(PolicyCircuitBreaker, OldOutcomesLeaveTheWindow) {
  CircuitBreakerConfig c;
  c.consecutive_failures = 0;
  c.failure_ratio = 0.5;
  c.minimum_outcomes = 10;
  c.window = 10s;
  CircuitBreaker breaker(c);
  for (int i = 0; i < 9; ++i) breaker.on_failure(kT0);
  // 11 s later the 9 failures are gone: one more failure is 1 outcome, below the minimum.
  EXPECT_EQ(breaker.on_failure(kT0 + 11s), CircuitState::kClosed);
  // Within the window they count: 9 + 1 failures reach the minimum.
  CircuitBreaker fresh(c);
  for (int i = 0; i < 9; ++i) fresh.on_failure(kT0);
  EXPECT_EQ(fresh.on_failure(kT0 + 8s), CircuitState::kOpen);
}

TEST(PolicyCircuitBreaker, HealthSignalsOfClassifiedOutcomes) {
  struct Case {
    Classification outcome;
    HealthSignal counting;
    HealthSignal ignoring;
  };
  for (const Case& c : {
           Case{outcome(200), HealthSignal::kSuccess, HealthSignal::kSuccess},
           Case{outcome(400), HealthSignal::kSuccess, HealthSignal::kSuccess},
           Case{outcome(404), HealthSignal::kSuccess, HealthSignal::kSuccess},
           Case{outcome(429), HealthSignal::kFailure, HealthSignal::kNeutral},
           Case{outcome(500), HealthSignal::kFailure, HealthSignal::kFailure},
           Case{outcome(529), HealthSignal::kFailure, HealthSignal::kFailure},
           Case{outcome(501), HealthSignal::kFailure, HealthSignal::kFailure},
           Case{outcome(408), HealthSignal::kFailure, HealthSignal::kFailure},
           Case{outcome(0, TransportError::kConnect), HealthSignal::kFailure, HealthSignal::kFailure},
           Case{outcome(0, TransportError::kTimeoutTotal), HealthSignal::kFailure, HealthSignal::kFailure},
           Case{outcome(200, TransportError::kMalformedResponse), HealthSignal::kFailure,
                HealthSignal::kFailure},
           Case{outcome(0, TransportError::kOther), HealthSignal::kNeutral, HealthSignal::kNeutral},
           Case{outcome(302), HealthSignal::kNeutral, HealthSignal::kNeutral},
       }) {
    SCOPED_TRACE(c.outcome.reason);
    EXPECT_EQ(health_signal(c.outcome, RateLimitCounting::kCountAsFailure), c.counting);
    EXPECT_EQ(health_signal(c.outcome, RateLimitCounting::kIgnore), c.ignoring);
  }
}

TEST(PolicyCircuitBreaker, OnOutcomeRoutesThroughHealthSignals) {
  CircuitBreakerConfig c = consecutive_only(2);
  c.rate_limited = RateLimitCounting::kIgnore;
  CircuitBreaker breaker(c);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(breaker.on_outcome(outcome(429), kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.on_outcome(outcome(503), kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.on_outcome(outcome(400), kT0), CircuitState::kClosed);  // provider answered
  EXPECT_EQ(breaker.on_outcome(outcome(503), kT0), CircuitState::kClosed);
  EXPECT_EQ(breaker.on_outcome(outcome(0, TransportError::kReset), kT0), CircuitState::kOpen);

  CircuitBreaker counting(consecutive_only(2));
  counting.on_outcome(outcome(429), kT0);
  EXPECT_EQ(counting.on_outcome(outcome(429), kT0), CircuitState::kOpen);
}

TEST(PolicyCircuitBreaker, RejectsInvalidConfigs) {
  const auto with = [](auto change) {
    CircuitBreakerConfig c;
    change(c);
    return c;
  };
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.consecutive_failures = -1; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.failure_ratio = 1.5; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.failure_ratio = -0.1; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.minimum_outcomes = -1; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.half_open_probes = 0; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.window = 0ms; })), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.open_cooldown = 0ms; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.probe_timeout = -1ms; })),
               std::invalid_argument);
  EXPECT_THROW(CircuitBreaker(with([](CircuitBreakerConfig& c) { c.max_open_cooldown = 1s; })),
               std::invalid_argument);
  EXPECT_EQ(to_string(CircuitState::kClosed), "closed");
  EXPECT_EQ(to_string(CircuitState::kOpen), "open");
  EXPECT_EQ(to_string(CircuitState::kHalfOpen), "half_open");
}

}  // namespace
}  // namespace kafka_llm::policy
