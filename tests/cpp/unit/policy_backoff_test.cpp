#include <gtest/gtest.h>

#include <array>
#include <climits>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kafka_llm/policy/backoff.hpp"
#include "kafka_llm/policy/random_source.hpp"
#include "kafka_llm/policy/split_mix64.hpp"

namespace kafka_llm::policy {
namespace {

using std::chrono::milliseconds;

class ScriptedRandom final : public RandomSource {
 public:
  explicit ScriptedRandom(std::vector<std::uint64_t> values) : values_(std::move(values)) {}
  std::uint64_t next_u64() override { return values_.at(next_++); }
  std::size_t drawn() const { return next_; }

 private:
  std::vector<std::uint64_t> values_;
  std::size_t next_ = 0;
};

TEST(PolicySplitMix64, MatchesTheReferenceSequence) {
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next_u64(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.next_u64(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.next_u64(), 0x06c45d188009454fULL);
  SplitMix64 a(42);
  SplitMix64 b(42);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a(), b.next_u64());
}

TEST(PolicyUniform, EdgesAndRejection) {
  SplitMix64 rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(uniform_inclusive(rng, 0), 0U);

  ScriptedRandom raw({123});
  EXPECT_EQ(uniform_inclusive(raw, std::numeric_limits<std::uint64_t>::max()), 123U);

  // bound 2^63: range 2^63 + 1, so values below 2^63 - 1 are rejected as biased.
  const std::uint64_t bound = std::uint64_t{1} << 63U;
  ScriptedRandom scripted({5, bound + 7});
  EXPECT_EQ(uniform_inclusive(scripted, bound), 6U);
  EXPECT_EQ(scripted.drawn(), 2U);
}

TEST(PolicyUniform, SmallRangeIsUnbiased) {
  SplitMix64 rng(7);
  std::array<int, 6> counts{};
  constexpr int kDraws = 60'000;
  for (int i = 0; i < kDraws; ++i) ++counts.at(uniform_inclusive(rng, 5));
  double chi_square = 0;
  for (int count : counts) chi_square += (count - 10'000.0) * (count - 10'000.0) / 10'000.0;
  // 5 degrees of freedom: p = 0.001 at 20.5.
  EXPECT_LT(chi_square, 20.5);
}

TEST(PolicyBackoff, CeilingDoublesUpToTheCap) {
  const ExponentialBackoff backoff(milliseconds{500}, milliseconds{30'000});
  struct Case {
    int attempt;
    std::int64_t ceiling_ms;
  };
  for (const Case& c : {Case{-5, 500}, Case{0, 500}, Case{1, 1000}, Case{2, 2000}, Case{3, 4000},
                        Case{4, 8000}, Case{5, 16'000}, Case{6, 30'000}, Case{7, 30'000}, Case{63, 30'000},
                        Case{64, 30'000}, Case{1000, 30'000}, Case{INT_MAX, 30'000}}) {
    EXPECT_EQ(backoff.ceiling(c.attempt).count(), c.ceiling_ms) << c.attempt;
  }
}

TEST(PolicyBackoff, CeilingNeverOverflows) {
  const auto max = milliseconds{std::numeric_limits<milliseconds::rep>::max()};
  const ExponentialBackoff huge(milliseconds{1}, max);
  EXPECT_EQ(huge.ceiling(62).count(), std::int64_t{1} << 62);
  EXPECT_EQ(huge.ceiling(63), max);
  EXPECT_EQ(huge.ceiling(INT_MAX), max);
  const ExponentialBackoff big_initial(milliseconds{std::int64_t{1} << 40}, max);
  EXPECT_EQ(big_initial.ceiling(22).count(), std::int64_t{1} << 62);
  EXPECT_EQ(big_initial.ceiling(23), max);
  EXPECT_EQ(ExponentialBackoff(milliseconds{0}, max).ceiling(100).count(), 0);
  // initial above the cap: the cap wins from the first retry.
  EXPECT_EQ(ExponentialBackoff(milliseconds{5000}, milliseconds{1000}).ceiling(0).count(), 1000);
  EXPECT_EQ(ExponentialBackoff(milliseconds{5}, milliseconds{0}).ceiling(3).count(), 0);
}

TEST(PolicyBackoff, RejectsNegativeDurations) {
  EXPECT_THROW(ExponentialBackoff(milliseconds{-1}, milliseconds{10}), std::invalid_argument);
  EXPECT_THROW(ExponentialBackoff(milliseconds{1}, milliseconds{-10}), std::invalid_argument);
}

TEST(PolicyBackoff, DelayStaysWithinZeroAndTheCeiling) {
  const ExponentialBackoff backoff(milliseconds{100}, milliseconds{10'000});
  SplitMix64 rng(2024);
  for (int attempt = 0; attempt < 12; ++attempt) {
    for (int i = 0; i < 2000; ++i) {
      const auto d = backoff.delay(attempt, rng);
      ASSERT_GE(d.count(), 0);
      ASSERT_LE(d, backoff.ceiling(attempt)) << attempt;
    }
  }
}

TEST(PolicyBackoff, DelayIsDeterministicForASeed) {
  const ExponentialBackoff backoff(milliseconds{500}, milliseconds{30'000});
  SplitMix64 a(99);
  SplitMix64 b(99);
  for (int attempt = 0; attempt < 20; ++attempt)
    EXPECT_EQ(backoff.delay(attempt, a), backoff.delay(attempt, b));
}

TEST(PolicyBackoff, FullJitterSpreadsUniformlyOverTheWindow) {
  const ExponentialBackoff backoff(milliseconds{1000}, milliseconds{60'000});
  SplitMix64 rng(12345);
  constexpr int kDraws = 100'000;
  std::array<int, 10> deciles{};
  double sum = 0;
  std::int64_t lowest = 1000;
  std::int64_t highest = 0;
  for (int i = 0; i < kDraws; ++i) {
    const std::int64_t d = backoff.delay(0, rng).count();  // uniform over [0, 1000]
    sum += static_cast<double>(d);
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
    ++deciles.at(static_cast<std::size_t>(std::min<std::int64_t>(d / 100, 9)));
  }
  // Mean 500, standard error ~0.9: a biased or truncated jitter moves it well past 5.
  EXPECT_NEAR(sum / kDraws, 500.0, 5.0);
  EXPECT_LE(lowest, 2);
  EXPECT_GE(highest, 998);
  for (int count : deciles) {
    EXPECT_NEAR(count, kDraws / 10, 600) << "decile count";
  }
  // Both ends of a tiny window are reachable.
  const ExponentialBackoff tiny(milliseconds{1}, milliseconds{1});
  bool saw_zero = false;
  bool saw_one = false;
  for (int i = 0; i < 200; ++i) {
    const auto d = tiny.delay(0, rng).count();
    saw_zero |= d == 0;
    saw_one |= d == 1;
  }
  EXPECT_TRUE(saw_zero);
  EXPECT_TRUE(saw_one);
}

}  // namespace
}  // namespace kafka_llm::policy
