#include <gtest/gtest.h>

#include "kafka_llm/features/dedupe.hpp"
#include "kafka_llm/format/prompt_hash.hpp"

namespace kafka_llm::features {
namespace {

TEST(FeaturesDedupe, KeyHasPrefixScopeAndAHashOfTheParts) {
  const std::string hash(64, 'a');
  const std::string key = dedupe_key("kafka-llm", "group-1", hash, "gpt-4o-mini", "openai");
  EXPECT_EQ(key,
            "kafka-llm:dedupe:group-1:" + format::sha256_hex("64:" + hash + "\n11:gpt-4o-mini\n6:openai\n"));
  EXPECT_EQ(key, dedupe_key("kafka-llm", "group-1", hash, "gpt-4o-mini", "openai"));
  EXPECT_NE(key, dedupe_key("kafka-llm", "group-2", hash, "gpt-4o-mini", "openai"));
  EXPECT_NE(key, dedupe_key("kafka-llm", "group-1", std::string(64, 'b'), "gpt-4o-mini", "openai"));
  EXPECT_NE(key, dedupe_key("kafka-llm", "group-1", hash, "gpt-4o", "openai"));
  EXPECT_NE(key, dedupe_key("kafka-llm", "group-1", hash, "gpt-4o-mini", "groq"));
  EXPECT_NE(key, dedupe_key("other", "group-1", hash, "gpt-4o-mini", "openai"));
  // Moving bytes between parts changes the key.
  EXPECT_NE(dedupe_key("p", "s", hash, "ab", "c"), dedupe_key("p", "s", hash, "a", "bc"));
}

TEST(FeaturesDedupe, DecisionFollowsTheEarlierResult) {
  EXPECT_EQ(decide_dedupe(nullptr), DedupeAction::kCallProvider);
  format::ResultRecord earlier;
  earlier.status = format::ResultStatus::kPending;
  EXPECT_EQ(decide_dedupe(&earlier), DedupeAction::kWait);
  earlier.status = format::ResultStatus::kDone;
  EXPECT_EQ(decide_dedupe(&earlier), DedupeAction::kServe);
  earlier.status = format::ResultStatus::kError;
  EXPECT_EQ(decide_dedupe(&earlier), DedupeAction::kCallProvider);
}

TEST(FeaturesDedupe, PollDelayDoublesUpToACap) {
  using std::chrono::milliseconds;
  EXPECT_EQ(dedupe_poll_delay(0), milliseconds(25));
  EXPECT_EQ(dedupe_poll_delay(1), milliseconds(50));
  EXPECT_EQ(dedupe_poll_delay(3), milliseconds(200));
  EXPECT_EQ(dedupe_poll_delay(4), milliseconds(400));
  EXPECT_EQ(dedupe_poll_delay(1000), milliseconds(400));
  EXPECT_EQ(dedupe_poll_delay(-1), milliseconds(25));
}

}  // namespace
}  // namespace kafka_llm::features
