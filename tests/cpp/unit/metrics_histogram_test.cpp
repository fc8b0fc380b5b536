#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "kafka_llm/metrics/histogram.hpp"

namespace kafka_llm::metrics {
namespace {

TEST(MetricsHistogram, BucketsAreMonotonicAndBoundsContainTheirValues) {
  int previous = -1;
  for (std::uint64_t v = 0; v < 5'000'000; v = v < 100 ? v + 1 : v + v / 7) {
    const int b = Histogram::bucket_of(v);
    EXPECT_GE(b, previous);
    EXPECT_LE(v, Histogram::upper_bound(b)) << v;
    if (b > 0) {
      EXPECT_GT(v, Histogram::upper_bound(b - 1)) << v;
    }
    previous = b;
  }
}

TEST(MetricsHistogram, QuantilesWithinSixPercentOfExact) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(20'000.0), 0.8);
  Histogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    const auto exact = static_cast<double>(values[static_cast<std::size_t>(q * values.size()) - 1]);
    const auto approx = static_cast<double>(h.quantile(q));
    EXPECT_NEAR(approx / exact, 1.0, 0.07) << "q=" << q;
  }
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.quantile(1.0), values.back());
}

TEST(MetricsHistogram, CountAtMostAndMerge) {
  Histogram a;
  Histogram b;
  for (std::uint64_t v : {1u, 5u, 10u, 1000u, 1'000'000u}) a.record(v);
  for (std::uint64_t v : {2u, 2000u}) b.record(v);
  a.merge(b);
  EXPECT_EQ(a.count(), 7u);
  EXPECT_EQ(a.count_at_most(10), 4u);
  EXPECT_EQ(a.count_at_most(0), 0u);
  EXPECT_EQ(a.count_at_most(10'000'000), 7u);
  EXPECT_DOUBLE_EQ(a.sum(), 1.0 + 5 + 10 + 1000 + 1'000'000 + 2 + 2000);
  EXPECT_EQ(Histogram().quantile(0.5), 0u);
}

}  // namespace
}  // namespace kafka_llm::metrics
