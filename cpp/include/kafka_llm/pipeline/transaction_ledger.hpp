#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "kafka_llm/pipeline/outputs.hpp"
#include "kafka_llm/policy/offset_tracker.hpp"

namespace kafka_llm::pipeline {

/// Exactly-once mode's bookkeeping (docs/guarantees.md, "Exactly-once"), as a pure class: the outputs
/// of each finished record (its bundle) wait here until every earlier record of its partition is
/// finished too, and leave in offset order together with the position they advance the partition
/// to. So a transaction holds exactly the outputs of the records its offsets cover: none is visible
/// before its offset is committed, and none is committed twice. Not thread-safe.
class TransactionLedger {
 public:
  /// The outputs of the records of one partition that one transaction carries.
  struct Taken {
    std::vector<Output> outputs;     ///< in offset order, each record's in the order produced
    std::int64_t first_offset = -1;  ///< the lowest record taken: where to go back to if it aborts
    std::size_t records = 0;
  };

  /// Keeps `bundle` for the finished record at `offset` of `partition` (assignment `generation`). A
  /// bundle of an older generation than one already kept replaces nothing: it is dropped, as is any
  /// bundle of a partition whose newer generation shows up (its records will be consumed again).
  void add(const policy::PartitionKey& partition, std::uint64_t generation, std::int64_t offset,
           std::vector<Output> bundle);

  /// Takes the bundles of `position.partition` (of `position.generation`) below `position.offset`.
  Taken take(const policy::CommitPosition& position);

  /// Forgets `partition` (revoked, or going back to its committed offset).
  void drop(const policy::PartitionKey& partition);

  /// Records held, all partitions.
  std::size_t size() const noexcept;

 private:
  struct Partition {
    std::uint64_t generation = 0;
    std::map<std::int64_t, std::vector<Output>> bundles;
  };
  std::map<policy::PartitionKey, Partition> partitions_;
};

}  // namespace kafka_llm::pipeline
