#include <gtest/gtest.h>

#include "kafka_llm/pipeline/flow_control.hpp"

namespace kafka_llm::pipeline {
namespace {

TEST(FlowControl, ARecordStartsOnlyWithAFreeSlotAndNoBacklog) {
  const FlowControl flow(2);
  EXPECT_TRUE(flow.may_start(0, 0));
  EXPECT_TRUE(flow.may_start(1, 0));
  EXPECT_FALSE(flow.may_start(2, 0));
  EXPECT_FALSE(flow.may_start(0, 1));  // earlier records first
  EXPECT_TRUE(flow.has_slot(1));
  EXPECT_FALSE(flow.has_slot(2));
}

TEST(FlowControl, SmallWindowsKeepAtLeastTheMinimumBacklog) {
  const FlowControl flow(24);
  EXPECT_EQ(flow.high_water(), FlowControl::kMinBacklog);
  EXPECT_EQ(flow.low_water(), FlowControl::kMinBacklog / 2);
}

TEST(FlowControl, LargeWindowsPauseAtTheirSize) {
  const FlowControl flow(5000);
  EXPECT_EQ(flow.high_water(), 5000U);
  EXPECT_EQ(flow.low_water(), 2500U);
}

TEST(FlowControl, PausesAtTheHighWaterAndResumesAtTheLow) {
  const FlowControl flow(4, 10);
  EXPECT_EQ(flow.decide(false, 9), FlowDecision::kKeep);
  EXPECT_EQ(flow.decide(false, 10), FlowDecision::kPause);
  EXPECT_EQ(flow.decide(false, 11), FlowDecision::kPause);
  // Hysteresis: paused between the marks stays paused.
  EXPECT_EQ(flow.decide(true, 10), FlowDecision::kKeep);
  EXPECT_EQ(flow.decide(true, 6), FlowDecision::kKeep);
  EXPECT_EQ(flow.decide(true, 5), FlowDecision::kResume);
  EXPECT_EQ(flow.decide(true, 0), FlowDecision::kResume);
  // Running below the high water stays running.
  EXPECT_EQ(flow.decide(false, 5), FlowDecision::kKeep);
  EXPECT_EQ(flow.decide(false, 0), FlowDecision::kKeep);
}

}  // namespace
}  // namespace kafka_llm::pipeline
