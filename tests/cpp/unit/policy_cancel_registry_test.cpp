#include <gtest/gtest.h>

#include <string>

#include "kafka_llm/policy/cancel_registry.hpp"

namespace kafka_llm::policy {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kNow = 1'800'000'000'000;

TEST(PolicyCancelRegistry, RemembersACancellationWithItsReason) {
  CancelRegistry r(60s);
  EXPECT_EQ(r.find("a", kNow), nullptr);
  EXPECT_TRUE(r.add("a", "client disconnected", kNow, kNow));
  ASSERT_NE(r.find("a", kNow), nullptr);
  EXPECT_EQ(*r.find("a", kNow), "client disconnected");
  EXPECT_EQ(r.find("b", kNow), nullptr);
  EXPECT_EQ(r.size(), 1U);
}

TEST(PolicyCancelRegistry, TheFirstCancellationOfAnIdStands) {
  CancelRegistry r(60s);
  EXPECT_TRUE(r.add("a", "first", kNow, kNow));
  EXPECT_FALSE(r.add("a", "second", kNow + 5, kNow + 5));
  EXPECT_EQ(*r.find("a", kNow + 5), "first");
  EXPECT_EQ(r.size(), 1U);
}

TEST(PolicyCancelRegistry, ForgetsAfterTheRetentionCountedFromTheCancelTime) {
  CancelRegistry r(60s);
  EXPECT_TRUE(r.add("a", "", kNow - 50'000, kNow));  // read back after a restart: 50 s old
  EXPECT_NE(r.find("a", kNow + 9'999), nullptr);
  EXPECT_EQ(r.find("a", kNow + 10'000), nullptr);  // hidden at once, before expire() runs
  EXPECT_EQ(r.size(), 1U);
  r.expire(kNow + 10'000);
  EXPECT_EQ(r.size(), 0U);
}

TEST(PolicyCancelRegistry, ACancellationOlderThanTheRetentionIsNotAdded) {
  CancelRegistry r(60s);
  EXPECT_FALSE(r.add("a", "", kNow - 60'000, kNow));
  EXPECT_EQ(r.size(), 0U);
  EXPECT_TRUE(r.add("b", "", kNow - 59'999, kNow));
}

TEST(PolicyCancelRegistry, ExpireStopsAtTheFirstLiveEntry) {
  CancelRegistry r(10s);
  r.add("old", "", kNow, kNow);
  r.add("new", "", kNow + 5'000, kNow + 5'000);
  r.expire(kNow + 10'000);
  EXPECT_EQ(r.size(), 1U);
  EXPECT_NE(r.find("new", kNow + 10'000), nullptr);
  r.expire(kNow + 15'000);
  EXPECT_EQ(r.size(), 0U);
}

TEST(PolicyCancelRegistry, AnOutOfOrderEntryWaitsBehindANewerOneButIsHidden) {
  CancelRegistry r(10s);
  r.add("newer", "", kNow + 5'000, kNow + 5'000);
  r.add("older", "", kNow, kNow + 5'000);
  r.expire(kNow + 12'000);
  EXPECT_EQ(r.size(), 2U);  // "older" sits behind "newer", which is still live
  EXPECT_EQ(r.find("older", kNow + 12'000), nullptr);
  EXPECT_NE(r.find("newer", kNow + 12'000), nullptr);
  r.expire(kNow + 15'000);
  EXPECT_EQ(r.size(), 0U);
}

TEST(PolicyCancelRegistry, MemoryIsBoundedByForgettingTheOldestFirst) {
  CancelRegistry r(1h, 3);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(r.add("id" + std::to_string(i), "", kNow + i, kNow + i));
  EXPECT_EQ(r.size(), 3U);
  EXPECT_EQ(r.find("id0", kNow + 5), nullptr);
  EXPECT_EQ(r.find("id1", kNow + 5), nullptr);
  for (int i = 2; i < 5; ++i) EXPECT_NE(r.find("id" + std::to_string(i), kNow + 5), nullptr);
  // A forgotten id can be cancelled again.
  EXPECT_TRUE(r.add("id0", "again", kNow + 6, kNow + 6));
  EXPECT_EQ(*r.find("id0", kNow + 6), "again");
}

TEST(PolicyCancelRegistry, AZeroBoundStillKeepsTheNewest) {
  CancelRegistry r(1h, 0);
  r.add("a", "", kNow, kNow);
  r.add("b", "", kNow, kNow);
  EXPECT_EQ(r.size(), 1U);
  EXPECT_NE(r.find("b", kNow), nullptr);
}

}  // namespace
}  // namespace kafka_llm::policy
