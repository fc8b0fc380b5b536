#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "kafka_llm/policy/key_gate.hpp"
#include "kafka_llm/policy/split_mix64.hpp"

namespace kafka_llm::policy {
namespace {

const PartitionKey kP0{"llm.requests", 0};
const PartitionKey kP1{"llm.requests", 1};

KeyGate::Lane lane(const PartitionKey& p, const std::string& key, std::uint64_t generation = 1) {
  return KeyGate::Lane{p, generation, key};
}

TEST(PolicyKeyGate, FirstOfALaneRunsLaterOnesWait) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 2));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 3));
  EXPECT_EQ(g.held(), 2U);
  EXPECT_EQ(g.lanes(), 1U);
  EXPECT_FALSE(g.is_held(1));
  EXPECT_TRUE(g.is_held(2));
  EXPECT_EQ(g.leave(1), 2U);
  EXPECT_EQ(g.held(), 1U);
  EXPECT_FALSE(g.is_held(2));
  EXPECT_EQ(g.leave(2), 3U);
  EXPECT_EQ(g.leave(3), std::nullopt);
  EXPECT_EQ(g.held(), 0U);
  EXPECT_EQ(g.lanes(), 0U);
}

TEST(PolicyKeyGate, OtherKeysPartitionsAndGenerationsAreOtherLanes) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_TRUE(g.enter(lane(kP0, "b"), 2));
  EXPECT_TRUE(g.enter(lane(kP1, "a"), 3));
  EXPECT_TRUE(g.enter(lane(kP0, "a", 2), 4));
  EXPECT_TRUE(g.enter(lane(kP0, ""), 5));  // the empty key is a key like any other
  EXPECT_EQ(g.held(), 0U);
  EXPECT_EQ(g.lanes(), 5U);
}

TEST(PolicyKeyGate, ALaneEmptiedStartsAfresh) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_EQ(g.leave(1), std::nullopt);
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 2));
}

TEST(PolicyKeyGate, UnknownAndRepeatedLeavesReleaseNothing) {
  KeyGate g;
  EXPECT_EQ(g.leave(42), std::nullopt);
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 2));
  EXPECT_EQ(g.leave(1), 2U);
  EXPECT_EQ(g.leave(1), std::nullopt);  // already left: 2 keeps running
  EXPECT_FALSE(g.is_held(2));
  EXPECT_EQ(g.lanes(), 1U);
}

TEST(PolicyKeyGate, EnteringAJobTwiceIsRefusedAndChangesNothing) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_FALSE(g.enter(lane(kP0, "b"), 1));
  EXPECT_EQ(g.lanes(), 1U);
  EXPECT_EQ(g.held(), 0U);
  EXPECT_EQ(g.leave(1), std::nullopt);
  EXPECT_EQ(g.lanes(), 0U);
}

TEST(PolicyKeyGate, AHeldJobThatLeavesKeepsTheOrderOfTheRest) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 2));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 3));
  EXPECT_EQ(g.leave(2), std::nullopt);  // dropped while held
  EXPECT_EQ(g.held(), 1U);
  EXPECT_EQ(g.leave(1), 3U);
  EXPECT_EQ(g.held(), 0U);
}

TEST(PolicyKeyGate, DropPartitionReturnsItsHeldJobsAndForgetsItsRunningOnes) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 2));
  EXPECT_TRUE(g.enter(lane(kP0, "b", 7), 3));
  EXPECT_FALSE(g.enter(lane(kP0, "b", 7), 4));
  EXPECT_FALSE(g.enter(lane(kP0, "b", 7), 5));
  EXPECT_TRUE(g.enter(lane(kP1, "a"), 6));
  EXPECT_FALSE(g.enter(lane(kP1, "a"), 7));
  auto held = g.drop_partition(kP0);
  std::sort(held.begin(), held.end());
  EXPECT_EQ(held, (std::vector<std::uint64_t>{2, 4, 5}));
  EXPECT_EQ(g.held(), 1U);
  EXPECT_EQ(g.lanes(), 1U);
  EXPECT_EQ(g.leave(1), std::nullopt);  // its lane is gone
  EXPECT_EQ(g.leave(3), std::nullopt);
  EXPECT_TRUE(g.enter(lane(kP0, "a", 2), 8));  // the partition's next assignment
  EXPECT_EQ(g.leave(6), 7U);                   // the other partition is untouched
  EXPECT_TRUE(g.drop_partition(kP0).empty());
}

TEST(PolicyKeyGate, DropAllReturnsEveryHeldJob) {
  KeyGate g;
  EXPECT_TRUE(g.enter(lane(kP0, "a"), 1));
  EXPECT_FALSE(g.enter(lane(kP0, "a"), 2));
  EXPECT_TRUE(g.enter(lane(kP1, "b"), 3));
  EXPECT_FALSE(g.enter(lane(kP1, "b"), 4));
  auto held = g.drop_all();
  std::sort(held.begin(), held.end());
  EXPECT_EQ(held, (std::vector<std::uint64_t>{2, 4}));
  EXPECT_EQ(g.held(), 0U);
  EXPECT_EQ(g.lanes(), 0U);
  EXPECT_EQ(g.leave(1), std::nullopt);
  EXPECT_EQ(g.leave(2), std::nullopt);
}

// Random interleavings against a model: per lane, jobs run one at a time in entry order, and every
// job of a lane runs unless dropped.
TEST(PolicyKeyGate, RandomScheduleRunsEachLaneInEntryOrder) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    SplitMix64 rng(seed);
    KeyGate g;
    const std::vector<std::string> keys = {"a", "b", "c", "d"};
    std::map<std::string, std::vector<std::uint64_t>> entered;
    std::map<std::string, std::vector<std::uint64_t>> ran;
    std::map<std::uint64_t, std::string> key_of;
    std::vector<std::uint64_t> running;
    std::uint64_t next = 1;
    for (int step = 0; step < 400; ++step) {
      if (running.empty() || rng.next_u64() % 3 != 0) {
        const auto& key = keys[rng.next_u64() % keys.size()];
        const std::uint64_t job = next++;
        entered[key].push_back(job);
        key_of[job] = key;
        if (g.enter(lane(kP0, key), job)) {
          running.push_back(job);
          ran[key].push_back(job);
        }
      } else {
        const std::size_t pick = rng.next_u64() % running.size();
        const std::uint64_t job = running[pick];
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(pick));
        if (auto released = g.leave(job)) {
          EXPECT_EQ(key_of[*released], key_of[job]);
          running.push_back(*released);
          ran[key_of[*released]].push_back(*released);
        }
      }
      std::set<std::string> running_keys;
      for (auto job : running) EXPECT_TRUE(running_keys.insert(key_of[job]).second) << "two of a lane run";
    }
    while (!running.empty()) {
      const std::uint64_t job = running.back();
      running.pop_back();
      if (auto released = g.leave(job)) {
        running.push_back(*released);
        ran[key_of[*released]].push_back(*released);
      }
    }
    EXPECT_EQ(ran, entered) << "seed " << seed;
    EXPECT_EQ(g.held(), 0U);
    EXPECT_EQ(g.lanes(), 0U);
  }
}

}  // namespace
}  // namespace kafka_llm::policy
