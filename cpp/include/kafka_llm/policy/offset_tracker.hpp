#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace kafka_llm::policy {

/// A Kafka topic partition, as the tracker's key.
struct PartitionKey {
  std::string topic;
  std::int32_t partition = -1;

  friend bool operator==(const PartitionKey&, const PartitionKey&) = default;
  friend bool operator<(const PartitionKey& a, const PartitionKey& b) noexcept {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  }
};

/// Proof that a record was begun: hand it back to OffsetTracker::finish(). The generation ties
/// it to one assignment of its partition, so a finish that arrives after a revoke (or after the
/// partition came back) is recognised as stale.
struct OffsetTicket {
  PartitionKey partition;
  std::uint64_t generation = 0;
  std::int64_t offset = -1;
};

/// An offset to commit: the next record to consume after a restart.
struct CommitPosition {
  PartitionKey partition;
  std::uint64_t generation = 0;
  std::int64_t offset = -1;

  friend bool operator==(const CommitPosition&, const CommitPosition&) = default;
};

/// What finish() did with a ticket.
enum class FinishResult : std::uint8_t {
  kFinished,   ///< Recorded.
  kDuplicate,  ///< Already finished in this generation, or below the committable position
               ///< (released offsets are not remembered, so a gap there reads the same).
  kStale,      ///< The partition is not assigned, or was re-assigned since; ignored.
  kUnknown,    ///< The offset was never begun in this generation; ignored.
};

/// Tracks in-flight records per partition so that only contiguous finished work is committed
/// (docs/guarantees.md, "Nothing is lost"; cf. modern-cpp-kafka's UnorderedOffsetCommitQueue). Records are
/// begun in increasing offset order per partition, gaps allowed (compaction, transaction markers), and
/// finished in any order. The committable offset of a partition is its lowest unfinished offset,
/// or the last finished offset + 1 when none is unfinished.
///
/// Complexity: begin O(log P) amortised, finish O(log P + log n), where P is the number of
/// assigned partitions and n the records in flight on the partition; memory O(span of offsets
/// in flight). Pure and not thread-safe: call it from the consumer's thread.
class OffsetTracker {
 public:
  /// Starts a new generation of `partition`, dropping any state it had. `committed` is the
  /// group's committed offset when known: positions at or below it are not reported. Without
  /// it, the first position is reported even when it is the start offset (harmless, and it
  /// protects records in flight under auto.offset.reset=latest). Returns the new generation.
  std::uint64_t assign(const PartitionKey& partition, std::optional<std::int64_t> committed = std::nullopt);

  /// Forgets `partition`. Returns the position still to commit, if it advanced past the last
  /// mark_committed(), so that the caller can commit it before the partition goes; later
  /// finishes of its tickets return kStale. Unknown partitions return std::nullopt.
  std::optional<CommitPosition> revoke(const PartitionKey& partition);

  /// The current generation of `partition`, or std::nullopt when it is not assigned.
  std::optional<std::uint64_t> generation(const PartitionKey& partition) const;

  /// Registers a received record. std::nullopt (and nothing recorded) when the partition is not
  /// assigned, the offset is negative, or it is not above the last begun offset of this
  /// generation (a redelivery within one assignment must not be tracked twice).
  std::optional<OffsetTicket> begin(const PartitionKey& partition, std::int64_t offset);

  /// Marks the ticket's record finished (result stored and response delivered).
  FinishResult finish(const OffsetTicket& ticket);

  /// The partitions whose position advanced since their last mark_committed(), with that
  /// position, ordered by partition.
  std::vector<CommitPosition> committable() const;

  /// The same for one partition.
  std::optional<CommitPosition> committable(const PartitionKey& partition) const;

  /// The committable position of `partition` whether or not it advanced; std::nullopt when the
  /// partition is unassigned or nothing was begun in this generation.
  std::optional<std::int64_t> position(const PartitionKey& partition) const;

  /// Records that `position` was committed (call from the successful commit callback). Ignored
  /// for another generation; a position below an earlier mark does not move it back.
  void mark_committed(const CommitPosition& position);

  /// Records begun but not finished, over all partitions.
  std::size_t in_flight() const noexcept { return in_flight_; }

  /// Records begun but not finished on `partition` (0 when unassigned).
  std::size_t in_flight(const PartitionKey& partition) const;

  /// The assigned partitions.
  std::vector<PartitionKey> assigned() const;

 private:
  struct Entry {
    std::int64_t offset = -1;
    bool finished = false;
  };
  struct PartitionState {
    std::uint64_t generation = 0;
    std::deque<Entry> pending;  // begun, increasing offsets; the front is always unfinished
    std::size_t unfinished = 0;
    std::optional<std::int64_t> last_begun;
    std::optional<std::int64_t> next_after_finished;  // last offset popped off the front + 1
    std::optional<std::int64_t> committed;
  };

  static std::optional<std::int64_t> position_of(const PartitionState& state);
  static std::optional<CommitPosition> advanced(const PartitionKey& partition, const PartitionState& state);

  std::map<PartitionKey, PartitionState> partitions_;
  std::uint64_t next_generation_ = 1;
  std::size_t in_flight_ = 0;
};

}  // namespace kafka_llm::policy
