#pragma once

// Token-bucket cases with hand-computed expectations, shared by the unit test (the C++
// arithmetic) and meant for the Redis integration test (kSharedRateLimitScript): each case is
// one script call, so the same table checks that both implementations agree exactly.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kafka_llm/policy/shared_rate_limit_script.hpp"
#include "kafka_llm/policy/token_bucket.hpp"

namespace kafka_llm::policy::test_cases {

struct BucketCase {
  TokenBucketConfig config;
  std::optional<TokenBucketState> before;  // std::nullopt: no state yet (missing Redis key)
  std::int64_t tokens = 0;
  TokenBucketState after;
};

struct TokenBucketCase {
  std::string name;
  SharedRateLimitMode mode = SharedRateLimitMode::kTake;
  std::int64_t now_ms = 0;
  std::vector<BucketCase> buckets;
  std::int64_t wait_ms = 0;  // the script's return value
};

// per_minute(60): 1 token = 60000 units, refill 60 units/ms = one token per second.
inline const TokenBucketConfig kRpm60 = TokenBucketConfig::per_minute(60);
// per_second(10): 1 token = 1000 units, refill 10 units/ms = one token per 100 ms.
inline const TokenBucketConfig kRps10 = TokenBucketConfig::per_second(10);
// 500 rpm: one token per 120 ms.
inline const TokenBucketConfig kRpm500 = TokenBucketConfig::per_minute(500);
// Burst 10, one token per second: 1 token = 1000 units, refill 1 unit/ms.
inline const TokenBucketConfig kBurst10Slow{10, 1, std::chrono::milliseconds{1000}};
// Odd numbers for the ceiling division: 1 token = 10 units, refill 7 units/ms.
inline const TokenBucketConfig kOdd{3, 7, std::chrono::milliseconds{10}};
// A large TPM limit: 2M tokens/min, 1 token = 60000 units.
inline const TokenBucketConfig kTpm2M = TokenBucketConfig::per_minute(2'000'000);
// Near the validated size limit: 1e9 tokens/min (6e13 units).
inline const TokenBucketConfig kTpm1G = TokenBucketConfig::per_minute(1'000'000'000);

inline std::vector<TokenBucketCase> token_bucket_cases() {
  using Mode = SharedRateLimitMode;
  return {
      {"missing state starts full", Mode::kTake, 1000, {{kRpm60, std::nullopt, 1, {3'540'000, 1000}}}, 0},
      {"empty bucket waits a second",
       Mode::kTake,
       1000,
       {{kRpm60, TokenBucketState{0, 1000}, 1, {0, 1000}}},
       1000},
      {"half refilled waits the rest",
       Mode::kTake,
       1500,
       {{kRpm60, TokenBucketState{0, 1000}, 1, {30'000, 1500}}},
       500},
      {"refilled exactly", Mode::kTake, 2000, {{kRpm60, TokenBucketState{0, 1000}, 1, {0, 2000}}}, 0},
      {"clock behind refills nothing",
       Mode::kTake,
       4000,
       {{kRpm60, TokenBucketState{0, 5000}, 1, {0, 5000}}},
       1000},
      {"oversized request needs a full bucket and leaves debt",
       Mode::kTake,
       0,
       {{kRpm60, TokenBucketState{3'600'000, 0}, 100, {-2'400'000, 0}}},
       0},
      {"oversized request waits for a full bucket",
       Mode::kTake,
       0,
       {{kRpm60, TokenBucketState{3'599'999, 0}, 100, {3'599'999, 0}}},
       1},
      {"debt lengthens the wait",
       Mode::kTake,
       0,
       {{kRpm60, TokenBucketState{-2'400'000, 0}, 1, {-2'400'000, 0}}},
       41'000},
      {"long idle from maximal debt refills to full",
       Mode::kTake,
       1'000'000'000'000,
       {{kRpm60, TokenBucketState{-3'600'000, 0}, 1, {3'540'000, 1'000'000'000'000}}},
       0},
      {"negative take takes nothing", Mode::kTake, 0, {{kRpm60, TokenBucketState{0, 0}, -5, {0, 0}}}, 0},
      {"zero take takes nothing", Mode::kTake, 0, {{kRpm60, TokenBucketState{0, 0}, 0, {0, 0}}}, 0},
      {"per second", Mode::kTake, 30, {{kRps10, TokenBucketState{500, 0}, 1, {800, 30}}}, 20},
      {"rpm 500", Mode::kTake, 1, {{kRpm500, TokenBucketState{0, 0}, 1, {500, 1}}}, 119},
      {"slow refill, burst 10",
       Mode::kTake,
       250,
       {{kBurst10Slow, TokenBucketState{0, 0}, 2, {250, 250}}},
       1750},
      {"ceiling division 10/7", Mode::kTake, 0, {{kOdd, TokenBucketState{0, 0}, 1, {0, 0}}}, 2},
      {"ceiling division 30/7", Mode::kTake, 0, {{kOdd, TokenBucketState{0, 0}, 3, {0, 0}}}, 5},
      {"ceiling division exact", Mode::kTake, 0, {{kOdd, TokenBucketState{-4, 0}, 1, {-4, 0}}}, 2},
      {"refill caps at full", Mode::kTake, 5, {{kOdd, TokenBucketState{29, 0}, 1, {20, 5}}}, 0},
      {"big tpm take",
       Mode::kTake,
       0,
       {{kTpm2M, std::nullopt, 150'000, {120'000'000'000 - 9'000'000'000, 0}}},
       0},
      {"huge tpm waits a minute",
       Mode::kTake,
       0,
       {{kTpm1G, TokenBucketState{0, 0}, 1'000'000'000, {0, 0}}},
       60'000},
      {"charge into debt is floored at one bucket",
       Mode::kCharge,
       0,
       {{kRpm60, TokenBucketState{0, 0}, 500, {-3'600'000, 0}}},
       0},
      {"charge refund caps at full",
       Mode::kCharge,
       0,
       {{kRpm60, TokenBucketState{3'000'000, 0}, -20, {3'600'000, 0}}},
       0},
      {"charge refills first",
       Mode::kCharge,
       1000,
       {{kRpm60, TokenBucketState{0, 0}, 3, {-120'000, 1000}}},
       0},
      {"charge on missing state", Mode::kCharge, 7, {{kRpm60, std::nullopt, 10, {3'000'000, 7}}}, 0},
      {"both buckets have enough: both charged",
       Mode::kTake,
       0,
       {{kRpm60, TokenBucketState{60'000, 0}, 1, {0, 0}},
        {kTpm2M, TokenBucketState{60'000'000, 0}, 1000, {0, 0}}},
       0},
      {"tokens short: nothing charged, tokens' wait",
       Mode::kTake,
       0,
       {{kRpm60, TokenBucketState{3'600'000, 0}, 1, {3'600'000, 0}},
        {kTpm2M, TokenBucketState{0, 0}, 100, {0, 0}}},
       3},
      {"both short: the longer wait",
       Mode::kTake,
       10,
       {{kRpm60, TokenBucketState{0, 0}, 1, {600, 10}}, {kRps10, TokenBucketState{0, 0}, 5, {100, 10}}},
       990},
      {"charge applies to every bucket",
       Mode::kCharge,
       0,
       {{kRpm60, TokenBucketState{0, 0}, -1, {60'000, 0}},
        {kTpm2M, TokenBucketState{0, 0}, -10, {600'000, 0}}},
       0},
  };
}

}  // namespace kafka_llm::policy::test_cases
