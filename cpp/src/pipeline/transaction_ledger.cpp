#include "kafka_llm/pipeline/transaction_ledger.hpp"

namespace kafka_llm::pipeline {

void TransactionLedger::add(const policy::PartitionKey& partition, std::uint64_t generation,
                            std::int64_t offset, std::vector<Output> bundle) {
  auto& entry = partitions_[partition];
  if (generation < entry.generation) return;
  if (generation > entry.generation) {
    entry.bundles.clear();
    entry.generation = generation;
  }
  entry.bundles.insert_or_assign(offset, std::move(bundle));
}

TransactionLedger::Taken TransactionLedger::take(const policy::CommitPosition& position) {
  Taken taken;
  auto found = partitions_.find(position.partition);
  if (found == partitions_.end() || found->second.generation != position.generation) return taken;
  auto& bundles = found->second.bundles;
  const auto end = bundles.lower_bound(position.offset);
  for (auto it = bundles.begin(); it != end; ++it) {
    if (taken.first_offset < 0) taken.first_offset = it->first;
    ++taken.records;
    for (auto& output : it->second) taken.outputs.push_back(std::move(output));
  }
  bundles.erase(bundles.begin(), end);
  return taken;
}

void TransactionLedger::drop(const policy::PartitionKey& partition) {
  partitions_.erase(partition);
}

std::size_t TransactionLedger::size() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, entry] : partitions_) n += entry.bundles.size();
  return n;
}

}  // namespace kafka_llm::pipeline
