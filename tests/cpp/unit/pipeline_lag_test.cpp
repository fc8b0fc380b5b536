#include <gtest/gtest.h>

#include "kafka_llm/pipeline/lag_probe.hpp"

namespace kafka_llm::pipeline {
namespace {

TEST(PipelineCommittedLag, IsTheHighWatermarkMinusTheCommittedOffset) {
  EXPECT_EQ(committed_lag(0, 100, 40), 60);
  EXPECT_EQ(committed_lag(10, 100, 100), 0);
  EXPECT_EQ(committed_lag(0, 0, 0), 0);
}

TEST(PipelineCommittedLag, WithoutACommitItCountsFromTheLowWatermark) {
  EXPECT_EQ(committed_lag(0, 100, -1001), 100);  // RD_KAFKA_OFFSET_INVALID
  EXPECT_EQ(committed_lag(30, 100, -1), 70);     // retention removed the first 30
}

TEST(PipelineCommittedLag, IsNeverNegative) {
  // A commit read before the watermark it passed (the two are separate requests).
  EXPECT_EQ(committed_lag(0, 100, 105), 0);
}

}  // namespace
}  // namespace kafka_llm::pipeline
