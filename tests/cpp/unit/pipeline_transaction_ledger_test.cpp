#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kafka_llm/pipeline/transaction_ledger.hpp"

namespace kafka_llm::pipeline {
namespace {

const policy::PartitionKey kP0{"req", 0};
const policy::PartitionKey kP1{"req", 1};

std::vector<Output> bundle(const std::string& value, int outputs = 1) {
  std::vector<Output> out;
  for (int i = 0; i < outputs; ++i) out.push_back(Output{"resp", "k", value + "/" + std::to_string(i), {}});
  return out;
}

std::vector<std::string> values(const TransactionLedger::Taken& taken) {
  std::vector<std::string> out;
  for (const auto& o : taken.outputs) out.push_back(o.value);
  return out;
}

TEST(PipelineTransactionLedger, ReleasesOnlyWhatThePositionCoversInOffsetOrder) {
  TransactionLedger ledger;
  ledger.add(kP0, 1, 12, bundle("c"));
  ledger.add(kP0, 1, 10, bundle("a", 2));  // finished later, but earlier in the partition
  ledger.add(kP0, 1, 11, bundle("b"));
  EXPECT_EQ(ledger.size(), 3U);
  auto taken = ledger.take({kP0, 1, 12});  // record 12 is not covered: its offset is not committed
  EXPECT_EQ(values(taken), (std::vector<std::string>{"a/0", "a/1", "b/0"}));
  EXPECT_EQ(taken.first_offset, 10);
  EXPECT_EQ(taken.records, 2U);
  EXPECT_EQ(ledger.size(), 1U);
  taken = ledger.take({kP0, 1, 13});
  EXPECT_EQ(values(taken), std::vector<std::string>{"c/0"});
  EXPECT_EQ(taken.first_offset, 12);
  EXPECT_EQ(ledger.size(), 0U);
}

TEST(PipelineTransactionLedger, NothingBelowThePositionGivesAnEmptyTake) {
  TransactionLedger ledger;
  ledger.add(kP0, 1, 10, bundle("a"));
  auto taken = ledger.take({kP0, 1, 10});
  EXPECT_TRUE(taken.outputs.empty());
  EXPECT_EQ(taken.first_offset, -1);
  EXPECT_EQ(taken.records, 0U);
  EXPECT_TRUE(ledger.take({kP1, 1, 100}).outputs.empty());
}

TEST(PipelineTransactionLedger, PartitionsAreApart) {
  TransactionLedger ledger;
  ledger.add(kP0, 1, 5, bundle("p0"));
  ledger.add(kP1, 1, 5, bundle("p1"));
  EXPECT_EQ(values(ledger.take({kP1, 1, 6})), std::vector<std::string>{"p1/0"});
  EXPECT_EQ(values(ledger.take({kP0, 1, 6})), std::vector<std::string>{"p0/0"});
}

TEST(PipelineTransactionLedger, ANewGenerationDropsWhatTheOldOneHeld) {
  TransactionLedger ledger;
  ledger.add(kP0, 1, 10, bundle("old"));
  ledger.add(kP0, 2, 10, bundle("new"));
  EXPECT_EQ(ledger.size(), 1U);
  EXPECT_TRUE(ledger.take({kP0, 1, 11}).outputs.empty()) << "a position of the old generation takes nothing";
  EXPECT_EQ(values(ledger.take({kP0, 2, 11})), std::vector<std::string>{"new/0"});
}

TEST(PipelineTransactionLedger, ALateBundleOfAnOlderGenerationIsDropped) {
  TransactionLedger ledger;
  ledger.add(kP0, 2, 10, bundle("new"));
  ledger.add(kP0, 1, 11, bundle("stale"));
  EXPECT_EQ(ledger.size(), 1U);
  EXPECT_EQ(values(ledger.take({kP0, 2, 12})), std::vector<std::string>{"new/0"});
}

TEST(PipelineTransactionLedger, DropForgetsAPartition) {
  TransactionLedger ledger;
  ledger.add(kP0, 1, 10, bundle("a"));
  ledger.add(kP1, 1, 10, bundle("b"));
  ledger.drop(kP0);
  EXPECT_EQ(ledger.size(), 1U);
  EXPECT_TRUE(ledger.take({kP0, 1, 11}).outputs.empty());
}

TEST(PipelineTransactionLedger, ARedeliveredOffsetReplacesItsBundle) {
  TransactionLedger ledger;
  ledger.add(kP0, 1, 10, bundle("first"));
  ledger.add(kP0, 1, 10, bundle("again"));
  EXPECT_EQ(values(ledger.take({kP0, 1, 11})), std::vector<std::string>{"again/0"});
}

}  // namespace
}  // namespace kafka_llm::pipeline
