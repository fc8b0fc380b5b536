#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "kafka_llm/policy/shared_rate_limit_script.hpp"
#include "kafka_llm/policy/split_mix64.hpp"
#include "kafka_llm/policy/token_bucket.hpp"
#include "policy_token_bucket_cases.hpp"

namespace kafka_llm::policy {
namespace {

using std::chrono::milliseconds;
using test_cases::TokenBucketCase;

std::chrono::steady_clock::time_point steady_ms(std::int64_t ms) {
  return std::chrono::steady_clock::time_point{} + milliseconds{ms};
}

// The control flow of one kSharedRateLimitScript call, composed from the documented functions.
std::int64_t run_script_flow(const TokenBucketCase& c, std::vector<TokenBucketState>& states) {
  states.clear();
  std::int64_t wait = 0;
  for (const auto& b : c.buckets) {
    TokenBucketState state = b.before ? *b.before : bucket_full(b.config, c.now_ms);
    state = bucket_refill(b.config, state, c.now_ms);
    if (c.mode == SharedRateLimitMode::kTake)
      wait = std::max(wait, bucket_wait_ms(b.config, state, b.tokens));
    states.push_back(state);
  }
  if (wait == 0) {
    for (std::size_t i = 0; i < c.buckets.size(); ++i) {
      const auto& b = c.buckets[i];
      const std::int64_t tokens =
          c.mode == SharedRateLimitMode::kTake ? std::max<std::int64_t>(b.tokens, 0) : b.tokens;
      states[i] = bucket_charge(b.config, states[i], tokens);
    }
  }
  return wait;
}

TEST(PolicyTokenBucket, ArithmeticMatchesTheSharedCaseTable) {
  for (const TokenBucketCase& c : test_cases::token_bucket_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<TokenBucketState> states;
    EXPECT_EQ(run_script_flow(c, states), c.wait_ms);
    ASSERT_EQ(states.size(), c.buckets.size());
    for (std::size_t i = 0; i < states.size(); ++i)
      EXPECT_EQ(states[i], c.buckets[i].after) << "bucket " << i;
  }
}

TEST(PolicyTokenBucket, ClassMatchesTheSharedCaseTable) {
  int checked = 0;
  for (const TokenBucketCase& c : test_cases::token_bucket_cases()) {
    if (c.buckets.size() != 1) continue;
    SCOPED_TRACE(c.name);
    const auto& b = c.buckets.front();
    TokenBucket bucket = b.before ? TokenBucket(b.config, *b.before) : TokenBucket(b.config);
    if (c.mode == SharedRateLimitMode::kTake) {
      const TakeResult result = bucket.try_take(b.tokens, steady_ms(c.now_ms));
      EXPECT_EQ(result.wait.count(), c.wait_ms);
      EXPECT_EQ(result.status, c.wait_ms == 0 ? TakeStatus::kTaken : TakeStatus::kMustWait);
    } else {
      bucket.charge(b.tokens, steady_ms(c.now_ms));
    }
    EXPECT_EQ(bucket.state(), b.after);
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(PolicyTokenBucket, ValidatesConfigs) {
  EXPECT_THROW(TokenBucket({0, 1, milliseconds{1000}}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({-1, 1, milliseconds{1000}}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({1, 0, milliseconds{1000}}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({1, 1, milliseconds{0}}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({1, 1001, milliseconds{1000}}),
               std::invalid_argument);  // refill > units of a full bucket
  const std::int64_t limit = std::int64_t{1} << 50;
  EXPECT_NO_THROW(TokenBucket({limit / 60'000, 1, milliseconds{60'000}}));
  EXPECT_THROW(TokenBucket({limit / 60'000 + 1, 1, milliseconds{60'000}}), std::invalid_argument);
  EXPECT_THROW(TokenBucket({std::int64_t{1} << 62, 1, milliseconds{60'000}}), std::invalid_argument);
  EXPECT_NO_THROW(TokenBucket(TokenBucketConfig::per_minute(1'000'000'000)));
}

TEST(PolicyTokenBucket, StartsFullAndRefillsContinuously) {
  TokenBucket bucket(TokenBucketConfig::per_second(10));
  const auto t0 = steady_ms(5'000);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bucket.try_take(1, t0).status, TakeStatus::kTaken) << i;
  const TakeResult empty = bucket.try_take(1, t0);
  EXPECT_EQ(empty.status, TakeStatus::kMustWait);
  EXPECT_EQ(empty.wait, milliseconds{100});
  EXPECT_EQ(bucket.try_take(1, t0 + milliseconds{99}).status, TakeStatus::kMustWait);
  EXPECT_EQ(bucket.try_take(1, t0 + milliseconds{100}).status, TakeStatus::kTaken);
  EXPECT_DOUBLE_EQ(bucket.available(t0 + milliseconds{150}), 0.5);
  EXPECT_EQ(bucket.wait_for(3, t0 + milliseconds{150}), milliseconds{250});
  // wait_for takes nothing.
  EXPECT_DOUBLE_EQ(bucket.available(t0 + milliseconds{150}), 0.5);
  // Sub-millisecond readings floor to the millisecond.
  EXPECT_DOUBLE_EQ(bucket.available(t0 + std::chrono::microseconds{150'999}), 0.5);
}

TEST(PolicyTokenBucket, OversizedRequestsAreAdmissibleAndPayTheirDebt) {
  TokenBucket bucket(TokenBucketConfig::per_second(10));
  const auto t0 = steady_ms(0);
  EXPECT_EQ(bucket.try_take(1, t0).status, TakeStatus::kTaken);
  const TakeResult big = bucket.try_take(25, t0);  // capacity 10: waits for a full bucket
  EXPECT_EQ(big.status, TakeStatus::kMustWait);
  EXPECT_EQ(big.wait, milliseconds{100});
  EXPECT_EQ(bucket.try_take(25, t0 + big.wait).status, TakeStatus::kTaken);
  EXPECT_DOUBLE_EQ(bucket.available(t0 + big.wait), -10.0);  // 10 - 25, floored at -capacity
  // Debt of 10 plus 1 token: 1.1 s.
  EXPECT_EQ(bucket.wait_for(1, t0 + big.wait), milliseconds{1100});
}

TEST(PolicyTokenBucket, ChargeAndRefundAdjustWithinBounds) {
  TokenBucket bucket(TokenBucketConfig::per_minute(100));
  const auto t0 = steady_ms(0);
  bucket.charge(30, t0);
  EXPECT_DOUBLE_EQ(bucket.available(t0), 70.0);
  bucket.charge(-10, t0);
  EXPECT_DOUBLE_EQ(bucket.available(t0), 80.0);
  bucket.charge(-1000, t0);
  EXPECT_DOUBLE_EQ(bucket.available(t0), 100.0);
  bucket.charge(std::numeric_limits<std::int64_t>::max(), t0);
  EXPECT_DOUBLE_EQ(bucket.available(t0), -100.0);
  bucket.charge(std::numeric_limits<std::int64_t>::min(), t0);
  EXPECT_DOUBLE_EQ(bucket.available(t0), 100.0);
  EXPECT_EQ(bucket.try_take(std::numeric_limits<std::int64_t>::max(), t0).status, TakeStatus::kTaken);
  EXPECT_DOUBLE_EQ(bucket.available(t0), -100.0);
}

// The guarantee a limiter exists for: over any run, what was taken never exceeds the burst plus
// the refill, and a reported wait is exact (enough, and not longer than needed).
TEST(PolicyTokenBucket, RandomisedRunsRespectTheRateAndExactWaits) {
  for (const TokenBucketConfig& config :
       {TokenBucketConfig::per_second(10), TokenBucketConfig::per_minute(500),
        TokenBucketConfig{50, 7, milliseconds{90}}, TokenBucketConfig::per_minute(200'000)}) {
    TokenBucket bucket(config);
    SplitMix64 rng(static_cast<std::uint64_t>(config.capacity));
    std::int64_t now = 1'000;
    const std::int64_t start = now;
    std::int64_t taken = 0;
    for (int i = 0; i < 20'000; ++i) {
      now += static_cast<std::int64_t>(rng.next_u64() % 50);
      const auto tokens =
          static_cast<std::int64_t>(rng.next_u64() % static_cast<std::uint64_t>(config.capacity)) + 1;
      const TakeResult r = bucket.try_take(tokens, steady_ms(now));
      if (r.status == TakeStatus::kTaken) {
        taken += tokens;
      } else {
        ASSERT_GT(r.wait.count(), 0);
        TokenBucket probe = bucket;
        ASSERT_EQ(probe.wait_for(tokens, steady_ms(now + r.wait.count() - 1)).count(), 1);
        ASSERT_EQ(probe.try_take(tokens, steady_ms(now + r.wait.count())).status, TakeStatus::kTaken);
      }
      const auto units = bucket.state().units;
      ASSERT_LE(units, bucket_capacity_units(config));
      ASSERT_GE(units, -bucket_capacity_units(config));
      // taken <= capacity + refill over the elapsed time.
      const double allowed = static_cast<double>(config.capacity) +
                             static_cast<double>(now - start) * static_cast<double>(config.refill_amount) /
                                 static_cast<double>(config.refill_period.count());
      ASSERT_LE(static_cast<double>(taken), allowed + 1e-6);
    }
    EXPECT_GT(taken, 0);
  }
}

TEST(PolicyTokenBucket, FullRefillTime) {
  EXPECT_EQ(bucket_full_refill_ms(TokenBucketConfig::per_minute(60)), 120'000);
  EXPECT_EQ(bucket_full_refill_ms(TokenBucketConfig{3, 7, milliseconds{10}}), 9);
  EXPECT_EQ(bucket_capacity_units(TokenBucketConfig::per_minute(60)), 3'600'000);
}

TEST(PolicySharedRateLimitScript, ArgvFollowsTheDocumentedLayout) {
  const std::vector<SharedBucketOp> ops{{TokenBucketConfig::per_minute(60), 1},
                                        {TokenBucketConfig{10, 1, milliseconds{1000}}, -3}};
  const auto now = std::chrono::system_clock::time_point{} + milliseconds{1'714'560'000'123} +
                   std::chrono::microseconds{999};
  const auto argv = shared_rate_limit_argv(now, SharedRateLimitMode::kTake, ops);
  const std::vector<std::string> expected{
      "1714560000123", "take", "121000", "60", "60", "60000", "1", "10", "1", "1000", "-3"};
  EXPECT_EQ(argv, expected);
  EXPECT_EQ(shared_rate_limit_argv(now, SharedRateLimitMode::kCharge, ops)[1], "charge");
  const std::vector<SharedBucketOp> bad{{TokenBucketConfig{0, 1, milliseconds{1}}, 1}};
  EXPECT_THROW(shared_rate_limit_argv(now, SharedRateLimitMode::kTake, bad), std::invalid_argument);
}

// The script itself runs only against Redis (integration tier, with test_cases::token_bucket_cases());
// here: it reads the documented arguments and state fields, and mirrors each formula.
TEST(PolicySharedRateLimitScript, MirrorsTheDocumentedFormulas) {
  const std::string_view script = kSharedRateLimitScript;
  for (std::string_view fragment :
       {"tonumber(ARGV[1])", "ARGV[2]", "tonumber(ARGV[3])", "local base = 3 + (i - 1) * 4",
        "redis.call('HMGET', KEYS[i], 'u', 't')", "b.full = b.capacity * b.period",
        "b.units, b.last = b.full, now", "if now > b.last then",
        "math.min(now - b.last, ceil_div(2 * b.full, b.refill))",
        "b.units = math.min(b.full, b.units + elapsed * b.refill)",
        "math.max(0, math.min(b.tokens, b.capacity)) * b.period", "ceil_div(need - b.units, b.refill)",
        "math.max(-2 * b.capacity, math.min(2 * b.capacity, tokens))",
        "math.max(-b.full, math.min(b.full, b.units - tokens * b.period))", "string.format('%.17g'",
        "redis.call('PEXPIRE', KEYS[i], ttl)", "return wait"}) {
    EXPECT_NE(script.find(fragment), std::string_view::npos) << fragment;
  }
}

}  // namespace
}  // namespace kafka_llm::policy
