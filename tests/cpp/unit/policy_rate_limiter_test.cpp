#include <gtest/gtest.h>

#include <stdexcept>

#include "kafka_llm/policy/rate_limiter.hpp"

namespace kafka_llm::policy {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

std::chrono::steady_clock::time_point at(std::int64_t ms) {
  return std::chrono::steady_clock::time_point{} + milliseconds{ms};
}

TEST(PolicyRateLimiter, UnlimitedAlwaysAdmits) {
  RateLimiter limiter(std::nullopt, std::nullopt);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.acquire(1'000'000, at(0)).status, TakeStatus::kTaken);
  EXPECT_FALSE(limiter.requests().has_value());
  EXPECT_FALSE(limiter.tokens().has_value());
  limiter.settle(5, at(0));
  limiter.refund(5, at(0));
}

TEST(PolicyRateLimiter, RequestsPerMinute) {
  RateLimiter limiter = RateLimiter::per_minute(60, std::nullopt);
  for (int i = 0; i < 60; ++i) ASSERT_EQ(limiter.acquire(500, at(0)).status, TakeStatus::kTaken) << i;
  const TakeResult r = limiter.acquire(500, at(0));
  EXPECT_EQ(r.status, TakeStatus::kMustWait);
  EXPECT_EQ(r.wait, 1s);
  EXPECT_EQ(limiter.acquire(500, at(1000)).status, TakeStatus::kTaken);
}

TEST(PolicyRateLimiter, TokensPerMinuteWithSettleDebt) {
  RateLimiter limiter = RateLimiter::per_minute(std::nullopt, 6000);  // 100 tokens per second
  EXPECT_EQ(limiter.acquire(5000, at(0)).status, TakeStatus::kTaken);
  EXPECT_EQ(limiter.acquire(1000, at(0)).status, TakeStatus::kTaken);
  // The two requests used 4000 more than estimated: the bucket goes 4000 into debt.
  limiter.settle(4000, at(0));
  EXPECT_EQ(limiter.tokens()->config().capacity, 6000);
  TakeResult r = limiter.acquire(100, at(0));
  EXPECT_EQ(r.status, TakeStatus::kMustWait);
  EXPECT_EQ(r.wait, 41s);  // (4000 debt + 100) / 100 per second
  // Over-estimates are given back.
  limiter.settle(-4100, at(0));
  EXPECT_EQ(limiter.acquire(100, at(0)).status, TakeStatus::kTaken);
}

TEST(PolicyRateLimiter, AcquireIsAllOrNothing) {
  RateLimiter limiter = RateLimiter::per_minute(60, 600);  // 1 request/s, 10 tokens/s
  EXPECT_EQ(limiter.acquire(600, at(0)).status, TakeStatus::kTaken);
  // Tokens are exhausted; the request bucket must not be charged by the failed attempt.
  for (int i = 0; i < 10; ++i) {
    const TakeResult r = limiter.acquire(10, at(0));
    EXPECT_EQ(r.status, TakeStatus::kMustWait);
    EXPECT_EQ(r.wait, 1s);
  }
  EXPECT_DOUBLE_EQ(limiter.requests()->state().units / 60'000.0, 59.0);
  EXPECT_EQ(limiter.acquire(10, at(1000)).status, TakeStatus::kTaken);
  EXPECT_DOUBLE_EQ(limiter.requests()->state().units / 60'000.0, 59.0);  // refilled one, took one
}

TEST(PolicyRateLimiter, WaitIsTheLongerOfTheTwo) {
  RateLimiter limiter = RateLimiter::per_minute(1, 60'000);  // 1 request/min, 1000 tokens/s
  EXPECT_EQ(limiter.acquire(60'000, at(0)).status, TakeStatus::kTaken);
  const TakeResult r = limiter.acquire(30'000, at(0));
  EXPECT_EQ(r.status, TakeStatus::kMustWait);
  EXPECT_EQ(r.wait, 60s);  // requests: 60 s; tokens: 30 s
  const TakeResult later = limiter.acquire(50'000, at(59'000));
  EXPECT_EQ(later.wait, 1s);
}

TEST(PolicyRateLimiter, OversizedEstimateWaitsForAFullBucket) {
  RateLimiter limiter = RateLimiter::per_minute(std::nullopt, 1000);
  EXPECT_EQ(limiter.acquire(10, at(0)).status, TakeStatus::kTaken);
  const TakeResult r = limiter.acquire(5000, at(0));
  EXPECT_EQ(r.status, TakeStatus::kMustWait);
  EXPECT_EQ(r.wait, 600ms);  // 10 tokens at 1000/min
  EXPECT_EQ(limiter.acquire(5000, at(600)).status, TakeStatus::kTaken);
  // Debt is floored at one bucket: a full minute to get back to zero, then 60 ms per token.
  EXPECT_EQ(limiter.acquire(1, at(600)).wait, 60'060ms);
}

TEST(PolicyRateLimiter, RefundGivesBackAnUnsentRequest) {
  RateLimiter limiter = RateLimiter::per_minute(1, 100);
  EXPECT_EQ(limiter.acquire(100, at(0)).status, TakeStatus::kTaken);
  EXPECT_EQ(limiter.acquire(1, at(0)).status, TakeStatus::kMustWait);
  limiter.refund(100, at(0));
  EXPECT_EQ(limiter.acquire(100, at(0)).status, TakeStatus::kTaken);
}

TEST(PolicyRateLimiter, RejectsInvalidLimits) {
  EXPECT_THROW(RateLimiter::per_minute(0, std::nullopt), std::invalid_argument);
  EXPECT_THROW(RateLimiter::per_minute(std::nullopt, -5), std::invalid_argument);
  EXPECT_THROW(RateLimiter(TokenBucketConfig{1, 0, 1000ms}, std::nullopt), std::invalid_argument);
}

}  // namespace
}  // namespace kafka_llm::policy
