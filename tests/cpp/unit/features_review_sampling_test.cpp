#include <gtest/gtest.h>

#include <string>

#include "kafka_llm/features/review_sampling.hpp"

namespace kafka_llm::features {
namespace {

TEST(FeaturesReviewSampling, PointIsTheSha256PrefixOverTwoToTheSixtyFour) {
  // Computed independently: int.from_bytes(hashlib.sha256(id).digest()[:8], "big") / 2**64.
  EXPECT_DOUBLE_EQ(sample_point(""), 0.8894159948913374);
  EXPECT_DOUBLE_EQ(sample_point("abc"), 0.7283949105904022);
  EXPECT_DOUBLE_EQ(sample_point("req-1"), 0.5794485793621024);
}

TEST(FeaturesReviewSampling, DeterministicAndNearTheRate) {
  int sampled = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = "r-" + std::to_string(i);
    const bool first = sampled_for_review(id, 0.05);
    EXPECT_EQ(first, sampled_for_review(id, 0.05));
    // Monotone in the rate: an id sampled at 5% is sampled at every higher rate.
    if (first) {
      EXPECT_TRUE(sampled_for_review(id, 0.2));
    }
    sampled += first ? 1 : 0;
  }
  EXPECT_EQ(sampled, 500);  // the same count Python's hashlib gives for these ids
}

TEST(FeaturesReviewSampling, RateBounds) {
  EXPECT_FALSE(sampled_for_review("", 0.0));
  EXPECT_TRUE(sampled_for_review("", 1.0));
  EXPECT_FALSE(sampled_for_review("", 0.8894));
  EXPECT_TRUE(sampled_for_review("", 0.8895));
}

}  // namespace
}  // namespace kafka_llm::features
