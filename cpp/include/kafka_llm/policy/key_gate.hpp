#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kafka_llm/policy/offset_tracker.hpp"

namespace kafka_llm::policy {

/// Per-key ordering as a pure policy (docs/guarantees.md, "Per-key ordering"): records of one lane
/// (a Kafka key within one assignment of its partition) run one at a time, in the order they entered
/// (offset order, as the consumer delivers them); records of other lanes are not held. A record that
/// retries keeps its lane's later records waiting, and no one else's.
///
/// The gate knows records by job id. It never starts anything itself: enter() and leave() say which
/// job may run, and the caller runs it. Complexity: O(log L) per call, L the lanes open; memory
/// O(jobs entered and not left). Not thread-safe.
class KeyGate {
 public:
  /// One key within one generation of a partition (OffsetTicket::generation): after a revoke the
  /// partition's lanes are dropped, and a job of the old generation that leaves later releases nothing.
  struct Lane {
    PartitionKey partition;
    std::uint64_t generation = 0;
    std::string key;
    friend bool operator<(const Lane& a, const Lane& b) noexcept {
      return std::tie(a.partition, a.generation, a.key) < std::tie(b.partition, b.generation, b.key);
    }
  };

  /// Registers `job` at the tail of `lane`. true: no earlier job of the lane is still there, so it
  /// may run now; false: it is held until the jobs before it have left. A job id entered twice is a
  /// caller error and returns false without entering it again.
  bool enter(const Lane& lane, std::uint64_t job);

  /// `job` is done with (finished, abandoned or dropped). When it was its lane's running job, returns
  /// the lane's next job, which may run now; std::nullopt when the lane is empty, the job is unknown
  /// (never entered, or its partition was dropped) or it was itself still held (it is removed).
  std::optional<std::uint64_t> leave(std::uint64_t job);

  /// Forgets every lane of `partition` (any generation). Returns the held jobs, which never ran, in
  /// entry order per lane; the lanes' running jobs are forgotten (their leave() returns std::nullopt).
  std::vector<std::uint64_t> drop_partition(const PartitionKey& partition);

  /// Forgets every lane; returns the held jobs like drop_partition().
  std::vector<std::uint64_t> drop_all();

  /// Jobs entered and held behind an earlier job of their lane.
  std::size_t held() const noexcept { return held_; }
  /// Lanes with at least one job (running or held).
  std::size_t lanes() const noexcept { return lanes_.size(); }
  /// The lane `job` is in; null when it is not entered (or its partition was dropped).
  const Lane* lane_of(std::uint64_t job) const;
  /// Whether `job` is entered and held.
  bool is_held(std::uint64_t job) const;

 private:
  using Lanes = std::map<Lane, std::deque<std::uint64_t>>;  // front: the running job
  void forget(Lanes::iterator lane, std::vector<std::uint64_t>& held_out);

  Lanes lanes_;
  std::unordered_map<std::uint64_t, Lane> job_lane_;
  std::size_t held_ = 0;
};

}  // namespace kafka_llm::policy
