#include "kafka_llm/policy/offset_tracker.hpp"

#include <algorithm>

namespace kafka_llm::policy {

std::uint64_t OffsetTracker::assign(const PartitionKey& partition, std::optional<std::int64_t> committed) {
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) {
    it = partitions_.emplace(partition, PartitionState{}).first;
  } else {
    in_flight_ -= it->second.unfinished;
    it->second = PartitionState{};
  }
  it->second.generation = next_generation_++;
  it->second.committed = committed;
  return it->second.generation;
}

std::optional<CommitPosition> OffsetTracker::revoke(const PartitionKey& partition) {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return std::nullopt;
  auto result = advanced(partition, it->second);
  in_flight_ -= it->second.unfinished;
  partitions_.erase(it);
  return result;
}

std::optional<std::uint64_t> OffsetTracker::generation(const PartitionKey& partition) const {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return std::nullopt;
  return it->second.generation;
}

std::optional<OffsetTicket> OffsetTracker::begin(const PartitionKey& partition, std::int64_t offset) {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end() || offset < 0) return std::nullopt;
  PartitionState& state = it->second;
  if (state.last_begun && offset <= *state.last_begun) return std::nullopt;
  state.pending.push_back(Entry{offset, false});
  state.last_begun = offset;
  ++state.unfinished;
  ++in_flight_;
  return OffsetTicket{partition, state.generation, offset};
}

FinishResult OffsetTracker::finish(const OffsetTicket& ticket) {
  const auto it = partitions_.find(ticket.partition);
  if (it == partitions_.end() || it->second.generation != ticket.generation) return FinishResult::kStale;
  PartitionState& state = it->second;
  if (state.pending.empty() || ticket.offset < state.pending.front().offset) {
    // Below the front: either finished and already released, or never begun.
    const bool released = state.next_after_finished && ticket.offset < *state.next_after_finished;
    return released ? FinishResult::kDuplicate : FinishResult::kUnknown;
  }
  const auto entry = std::lower_bound(state.pending.begin(), state.pending.end(), ticket.offset,
                                      [](const Entry& e, std::int64_t offset) { return e.offset < offset; });
  if (entry == state.pending.end() || entry->offset != ticket.offset) return FinishResult::kUnknown;
  if (entry->finished) return FinishResult::kDuplicate;
  entry->finished = true;
  --state.unfinished;
  --in_flight_;
  while (!state.pending.empty() && state.pending.front().finished) {
    state.next_after_finished = state.pending.front().offset + 1;
    state.pending.pop_front();
  }
  return FinishResult::kFinished;
}

std::optional<std::int64_t> OffsetTracker::position_of(const PartitionState& state) {
  if (!state.pending.empty()) return state.pending.front().offset;
  return state.next_after_finished;
}

std::optional<CommitPosition> OffsetTracker::advanced(const PartitionKey& partition,
                                                      const PartitionState& state) {
  const auto position = position_of(state);
  if (!position || (state.committed && *position <= *state.committed)) return std::nullopt;
  return CommitPosition{partition, state.generation, *position};
}

std::vector<CommitPosition> OffsetTracker::committable() const {
  std::vector<CommitPosition> result;
  for (const auto& [partition, state] : partitions_) {
    if (auto position = advanced(partition, state)) result.push_back(std::move(*position));
  }
  return result;
}

std::optional<CommitPosition> OffsetTracker::committable(const PartitionKey& partition) const {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return std::nullopt;
  return advanced(partition, it->second);
}

std::optional<std::int64_t> OffsetTracker::position(const PartitionKey& partition) const {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return std::nullopt;
  return position_of(it->second);
}

void OffsetTracker::mark_committed(const CommitPosition& position) {
  const auto it = partitions_.find(position.partition);
  if (it == partitions_.end() || it->second.generation != position.generation) return;
  auto& committed = it->second.committed;
  if (!committed || position.offset > *committed) committed = position.offset;
}

std::size_t OffsetTracker::in_flight(const PartitionKey& partition) const {
  const auto it = partitions_.find(partition);
  return it == partitions_.end() ? 0 : it->second.unfinished;
}

std::vector<PartitionKey> OffsetTracker::assigned() const {
  std::vector<PartitionKey> result;
  result.reserve(partitions_.size());
  for (const auto& entry : partitions_) result.push_back(entry.first);
  return result;
}

}  // namespace kafka_llm::policy
