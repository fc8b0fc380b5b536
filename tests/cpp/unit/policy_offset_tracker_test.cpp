#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "kafka_llm/policy/offset_tracker.hpp"
#include "kafka_llm/policy/split_mix64.hpp"

namespace kafka_llm::policy {
namespace {

const PartitionKey kP0{"llm.requests", 0};
const PartitionKey kP1{"llm.requests", 1};
const PartitionKey kOther{"other", 0};

std::optional<std::int64_t> committable_offset(const OffsetTracker& t, const PartitionKey& p) {
  const auto c = t.committable(p);
  if (!c) return std::nullopt;
  return c->offset;
}

TEST(PolicyOffsetTracker, InOrderFinishesAdvance) {
  OffsetTracker t;
  t.assign(kP0, 0);
  std::vector<OffsetTicket> tickets;
  for (std::int64_t o = 0; o < 5; ++o) tickets.push_back(*t.begin(kP0, o));
  EXPECT_EQ(t.in_flight(), 5U);
  EXPECT_EQ(committable_offset(t, kP0), std::nullopt);  // position 0 == committed 0
  for (std::int64_t o = 0; o < 5; ++o) {
    EXPECT_EQ(t.finish(tickets[static_cast<std::size_t>(o)]), FinishResult::kFinished);
    EXPECT_EQ(committable_offset(t, kP0), o + 1);
  }
  EXPECT_EQ(t.in_flight(), 0U);
  EXPECT_EQ(t.position(kP0), 5);
}

TEST(PolicyOffsetTracker, OutOfOrderFinishesWaitForTheLowest) {
  OffsetTracker t;
  t.assign(kP0, 100);
  std::vector<OffsetTicket> tickets;
  for (std::int64_t o = 100; o < 106; ++o) tickets.push_back(*t.begin(kP0, o));
  for (std::size_t i : {3U, 1U, 5U, 2U}) EXPECT_EQ(t.finish(tickets[i]), FinishResult::kFinished);
  EXPECT_EQ(t.position(kP0), 100);
  EXPECT_FALSE(t.committable(kP0).has_value());
  EXPECT_EQ(t.in_flight(kP0), 2U);
  EXPECT_EQ(t.finish(tickets[0]), FinishResult::kFinished);  // 100..103 done, 104 not
  EXPECT_EQ(committable_offset(t, kP0), 104);
  EXPECT_EQ(t.finish(tickets[4]), FinishResult::kFinished);
  EXPECT_EQ(committable_offset(t, kP0), 106);
}

TEST(PolicyOffsetTracker, GapsAreSkipped) {
  OffsetTracker t;
  t.assign(kP0, 10);
  const auto a = *t.begin(kP0, 10);
  const auto b = *t.begin(kP0, 12);  // 11: a transaction marker
  const auto c = *t.begin(kP0, 15);  // 13, 14: compacted away
  EXPECT_EQ(t.finish(a), FinishResult::kFinished);
  EXPECT_EQ(committable_offset(t, kP0), 12);
  EXPECT_EQ(t.finish(c), FinishResult::kFinished);
  EXPECT_EQ(committable_offset(t, kP0), 12);
  EXPECT_EQ(t.finish(b), FinishResult::kFinished);
  EXPECT_EQ(committable_offset(t, kP0), 16);
  // Below the position, released offsets are not remembered: a gap reads as a duplicate.
  EXPECT_EQ(t.finish(OffsetTicket{kP0, a.generation, 13}), FinishResult::kDuplicate);
  // Above it, an offset never begun is unknown.
  const auto d = *t.begin(kP0, 20);
  EXPECT_EQ(t.finish(OffsetTicket{kP0, a.generation, 18}), FinishResult::kUnknown);
  EXPECT_EQ(t.finish(OffsetTicket{kP0, a.generation, 21}), FinishResult::kUnknown);
  EXPECT_EQ(t.finish(d), FinishResult::kFinished);
}

TEST(PolicyOffsetTracker, MarkCommittedSuppressesUntilTheNextAdvance) {
  OffsetTracker t;
  const auto gen = t.assign(kP0);
  const auto a = *t.begin(kP0, 7);
  // Without a known committed offset the start position is reported once.
  ASSERT_EQ(t.committable().size(), 1U);
  EXPECT_EQ(t.committable().front(), (CommitPosition{kP0, gen, 7}));
  t.mark_committed(t.committable().front());
  EXPECT_TRUE(t.committable().empty());
  t.finish(a);
  ASSERT_EQ(t.committable().size(), 1U);
  EXPECT_EQ(t.committable().front().offset, 8);
  // A late success callback for an older commit does not move the mark back.
  t.mark_committed(CommitPosition{kP0, gen, 8});
  t.mark_committed(CommitPosition{kP0, gen, 7});
  EXPECT_TRUE(t.committable().empty());
  // A commit of another generation is ignored.
  const auto b = *t.begin(kP0, 9);
  t.finish(b);
  t.mark_committed(CommitPosition{kP0, gen + 1, 10});
  EXPECT_EQ(committable_offset(t, kP0), 10);
  t.mark_committed(CommitPosition{kOther, gen, 10});
  EXPECT_EQ(committable_offset(t, kP0), 10);
}

TEST(PolicyOffsetTracker, BeginRejectsWhatCannotBeTracked) {
  OffsetTracker t;
  EXPECT_FALSE(t.begin(kP0, 0).has_value());  // not assigned
  t.assign(kP0);
  EXPECT_FALSE(t.begin(kP0, -1).has_value());
  ASSERT_TRUE(t.begin(kP0, 5).has_value());
  EXPECT_FALSE(t.begin(kP0, 5).has_value());  // redelivered within the assignment
  EXPECT_FALSE(t.begin(kP0, 3).has_value());
  EXPECT_TRUE(t.begin(kP0, 6).has_value());
  EXPECT_EQ(t.in_flight(), 2U);
}

TEST(PolicyOffsetTracker, DuplicateFinishes) {
  OffsetTracker t;
  t.assign(kP0);
  const auto a = *t.begin(kP0, 0);
  const auto b = *t.begin(kP0, 1);
  const auto c = *t.begin(kP0, 2);
  EXPECT_EQ(t.finish(c), FinishResult::kFinished);
  EXPECT_EQ(t.finish(c), FinishResult::kDuplicate);  // finished, still pending behind 0
  EXPECT_EQ(t.finish(a), FinishResult::kFinished);
  EXPECT_EQ(t.finish(a), FinishResult::kDuplicate);  // released
  EXPECT_EQ(t.in_flight(), 1U);
  EXPECT_EQ(t.finish(b), FinishResult::kFinished);
  EXPECT_EQ(t.in_flight(), 0U);
  EXPECT_EQ(t.position(kP0), 3);
}

TEST(PolicyOffsetTracker, RevokeDropsStateAndLateFinishesAreStale) {
  OffsetTracker t;
  const auto gen = t.assign(kP0, 0);
  t.assign(kP1, 0);
  const auto a = *t.begin(kP0, 0);
  const auto b = *t.begin(kP0, 1);
  const auto c = *t.begin(kP1, 0);
  EXPECT_EQ(t.in_flight(), 3U);
  t.finish(a);
  const auto last = t.revoke(kP0);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, (CommitPosition{kP0, gen, 1}));  // 1 is still in flight: not past it
  EXPECT_EQ(t.in_flight(), 1U);
  EXPECT_EQ(t.in_flight(kP0), 0U);
  EXPECT_EQ(t.finish(b), FinishResult::kStale);
  EXPECT_FALSE(t.generation(kP0).has_value());
  EXPECT_FALSE(t.position(kP0).has_value());
  EXPECT_FALSE(t.committable(kP0).has_value());
  EXPECT_FALSE(t.revoke(kP0).has_value());
  EXPECT_EQ(t.assigned(), std::vector<PartitionKey>{kP1});
  EXPECT_EQ(t.finish(c), FinishResult::kFinished);
}

TEST(PolicyOffsetTracker, ReassignedPartitionIsNotConfusedWithTheOldOne) {
  OffsetTracker t;
  const auto old_gen = t.assign(kP0, 0);
  const auto old0 = *t.begin(kP0, 0);
  const auto old1 = *t.begin(kP0, 1);
  EXPECT_FALSE(t.revoke(kP0).has_value());  // nothing advanced
  const auto new_gen = t.assign(kP0, 0);
  EXPECT_NE(new_gen, old_gen);
  EXPECT_EQ(t.generation(kP0), new_gen);
  // The partition comes back and redelivers the same offsets.
  const auto new0 = *t.begin(kP0, 0);
  const auto new1 = *t.begin(kP0, 1);
  // The old assignment's handlers finish late: ignored, nothing committed past new work.
  EXPECT_EQ(t.finish(old0), FinishResult::kStale);
  EXPECT_EQ(t.finish(old1), FinishResult::kStale);
  EXPECT_FALSE(t.committable(kP0).has_value());
  EXPECT_EQ(t.in_flight(), 2U);
  EXPECT_EQ(t.finish(new1), FinishResult::kFinished);
  EXPECT_EQ(t.finish(new0), FinishResult::kFinished);
  EXPECT_EQ(committable_offset(t, kP0), 2);
  // Commits of the old generation are ignored too.
  t.mark_committed(CommitPosition{kP0, old_gen, 2});
  EXPECT_EQ(committable_offset(t, kP0), 2);
}

TEST(PolicyOffsetTracker, AssignOverAnAssignedPartitionStartsAFreshGeneration) {
  OffsetTracker t;
  t.assign(kP0);
  const auto a = *t.begin(kP0, 4);
  (void)t.begin(kP0, 5);
  const auto gen = t.assign(kP0, 4);
  EXPECT_EQ(t.in_flight(), 0U);
  EXPECT_EQ(t.finish(a), FinishResult::kStale);
  EXPECT_FALSE(t.position(kP0).has_value());
  const auto b = *t.begin(kP0, 4);
  EXPECT_EQ(b.generation, gen);
}

TEST(PolicyOffsetTracker, SeveralPartitionsReportInOrder) {
  OffsetTracker t;
  const auto g1 = t.assign(kP1, 0);
  const auto g0 = t.assign(kP0, 0);
  const auto g2 = t.assign(kOther, 0);
  t.finish(*t.begin(kP1, 0));
  t.finish(*t.begin(kP0, 0));
  (void)t.begin(kOther, 0);
  const std::vector<CommitPosition> expected{{kP0, g0, 1}, {kP1, g1, 1}};
  EXPECT_EQ(t.committable(), expected);
  EXPECT_EQ(t.in_flight(), 1U);
  EXPECT_EQ(t.in_flight(kOther), 1U);
  EXPECT_EQ(t.in_flight(PartitionKey{"nope", 3}), 0U);
  (void)g2;
}

// A reference model: sets of begun and finished offsets per partition and generation.
struct ModelPartition {
  std::uint64_t generation = 0;
  std::set<std::int64_t> begun;
  std::set<std::int64_t> unfinished;
  std::optional<std::int64_t> committed;
  std::optional<std::int64_t> position() const {
    if (!unfinished.empty()) return *unfinished.begin();
    if (!begun.empty()) return *begun.rbegin() + 1;
    return std::nullopt;
  }
};

TEST(PolicyOffsetTracker, RandomisedAgainstAReferenceModel) {
  const std::vector<PartitionKey> partitions{kP0, kP1, kOther};
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SplitMix64 rng(seed);
    OffsetTracker t;
    std::map<PartitionKey, ModelPartition> model;
    std::map<PartitionKey, std::int64_t> next_offset;
    std::vector<OffsetTicket> outstanding;  // including stale and already-finished ones
    for (int step = 0; step < 4000; ++step) {
      const PartitionKey& p = partitions[rng.next_u64() % partitions.size()];
      const auto op = rng.next_u64() % 100;
      if (op < 3) {  // (re)assign
        const std::optional<std::int64_t> committed =
            rng.next_u64() % 2 ? std::optional<std::int64_t>{next_offset[p]} : std::nullopt;
        const auto gen = t.assign(p, committed);
        model[p] = ModelPartition{gen, {}, {}, committed};
      } else if (op < 5) {  // revoke
        const auto result = t.revoke(p);
        const auto it = model.find(p);
        if (it == model.end()) {
          ASSERT_FALSE(result.has_value());
        } else {
          const auto pos = it->second.position();
          const bool advanced = pos && (!it->second.committed || *pos > *it->second.committed);
          ASSERT_EQ(result.has_value(), advanced);
          if (result) {
            ASSERT_EQ(result->offset, *pos);
          }
          model.erase(it);
        }
      } else if (op < 50) {  // begin, with occasional gaps
        next_offset[p] += 1 + (rng.next_u64() % 10 == 0 ? static_cast<std::int64_t>(rng.next_u64() % 5) : 0);
        const auto ticket = t.begin(p, next_offset[p]);
        const auto it = model.find(p);
        ASSERT_EQ(ticket.has_value(), it != model.end());
        if (ticket) {
          ASSERT_EQ(ticket->generation, it->second.generation);
          it->second.begun.insert(next_offset[p]);
          it->second.unfinished.insert(next_offset[p]);
          outstanding.push_back(*ticket);
        }
      } else if (op < 95) {  // finish a random outstanding ticket (maybe stale or duplicate)
        if (outstanding.empty()) continue;
        const std::size_t index = rng.next_u64() % outstanding.size();
        const OffsetTicket ticket = outstanding[index];
        if (rng.next_u64() % 4 != 0) {  // usually retire it; sometimes keep it for a duplicate
          outstanding[index] = outstanding.back();
          outstanding.pop_back();
        }
        const FinishResult result = t.finish(ticket);
        const auto it = model.find(ticket.partition);
        if (it == model.end() || it->second.generation != ticket.generation) {
          ASSERT_EQ(result, FinishResult::kStale);
        } else if (it->second.unfinished.erase(ticket.offset) == 1) {
          ASSERT_EQ(result, FinishResult::kFinished);
        } else {
          ASSERT_EQ(result, FinishResult::kDuplicate);
        }
      } else {  // commit whatever is committable, sometimes only some of it
        for (const auto& position : t.committable()) {
          if (rng.next_u64() % 3 == 0) continue;
          t.mark_committed(position);
          auto& m = model.at(position.partition);
          m.committed = std::max(m.committed.value_or(position.offset), position.offset);
        }
      }
      // Compare every observable.
      std::size_t total = 0;
      std::vector<CommitPosition> expected;
      for (const auto& [key, m] : model) {
        total += m.unfinished.size();
        ASSERT_EQ(t.in_flight(key), m.unfinished.size());
        ASSERT_EQ(t.position(key), m.position()) << "seed " << seed << " step " << step;
        const auto pos = m.position();
        if (pos && (!m.committed || *pos > *m.committed)) expected.push_back({key, m.generation, *pos});
      }
      ASSERT_EQ(t.in_flight(), total);
      ASSERT_EQ(t.committable(), expected) << "seed " << seed << " step " << step;
    }
  }
}

TEST(PolicyOffsetTracker, HundredThousandInFlightFinishedInRandomOrder) {
  OffsetTracker t;
  t.assign(kP0, 0);
  constexpr std::int64_t kRecords = 100'000;
  std::vector<OffsetTicket> tickets;
  tickets.reserve(kRecords);
  for (std::int64_t o = 0; o < kRecords; ++o) tickets.push_back(*t.begin(kP0, o * 2));  // every other offset
  EXPECT_EQ(t.in_flight(), static_cast<std::size_t>(kRecords));
  SplitMix64 rng(5);
  for (std::size_t i = tickets.size() - 1; i > 0; --i)
    std::swap(tickets[i], tickets[rng.next_u64() % (i + 1)]);
  std::int64_t lowest_unfinished = 0;
  std::vector<bool> finished(static_cast<std::size_t>(kRecords * 2 + 2), false);
  for (std::size_t i = 0; i < tickets.size(); ++i) {
    ASSERT_EQ(t.finish(tickets[i]), FinishResult::kFinished);
    finished[static_cast<std::size_t>(tickets[i].offset)] = true;
    while (finished[static_cast<std::size_t>(lowest_unfinished)]) lowest_unfinished += 2;
    if (i % 997 == 0) {
      ASSERT_EQ(t.position(kP0), lowest_unfinished < kRecords * 2 ? lowest_unfinished : kRecords * 2 - 1);
    }
  }
  EXPECT_EQ(t.in_flight(), 0U);
  EXPECT_EQ(t.position(kP0), kRecords * 2 - 1);
}

}  // namespace
}  // namespace kafka_llm::policy
