#include "kafka_llm/policy/key_gate.hpp"

#include <algorithm>

namespace kafka_llm::policy {

bool KeyGate::enter(const Lane& lane, std::uint64_t job) {
  if (job_lane_.contains(job)) return false;
  auto& queue = lanes_[lane];
  queue.push_back(job);
  job_lane_.emplace(job, lane);
  if (queue.size() == 1) return true;
  ++held_;
  return false;
}

std::optional<std::uint64_t> KeyGate::leave(std::uint64_t job) {
  auto found = job_lane_.find(job);
  if (found == job_lane_.end()) return std::nullopt;
  auto lane = lanes_.find(found->second);
  job_lane_.erase(found);
  if (lane == lanes_.end()) return std::nullopt;  // cannot happen: lanes and job_lane_ agree
  auto& queue = lane->second;
  if (queue.front() != job) {
    // Held and never run (e.g. dropped by its owner): it leaves its place in the queue.
    queue.erase(std::find(queue.begin(), queue.end(), job));
    --held_;
    return std::nullopt;
  }
  queue.pop_front();
  if (queue.empty()) {
    lanes_.erase(lane);
    return std::nullopt;
  }
  --held_;  // the new front runs
  return queue.front();
}

void KeyGate::forget(Lanes::iterator lane, std::vector<std::uint64_t>& held_out) {
  auto& queue = lane->second;
  for (std::size_t i = 0; i < queue.size(); ++i) {
    job_lane_.erase(queue[i]);
    if (i > 0) {
      held_out.push_back(queue[i]);
      --held_;
    }
  }
}

std::vector<std::uint64_t> KeyGate::drop_partition(const PartitionKey& partition) {
  std::vector<std::uint64_t> held;
  for (auto it = lanes_.lower_bound(Lane{partition, 0, {}});
       it != lanes_.end() && it->first.partition == partition;) {
    forget(it, held);
    it = lanes_.erase(it);
  }
  return held;
}

std::vector<std::uint64_t> KeyGate::drop_all() {
  std::vector<std::uint64_t> held;
  for (auto it = lanes_.begin(); it != lanes_.end(); ++it) forget(it, held);
  lanes_.clear();
  return held;
}

const KeyGate::Lane* KeyGate::lane_of(std::uint64_t job) const {
  auto found = job_lane_.find(job);
  return found == job_lane_.end() ? nullptr : &found->second;
}

bool KeyGate::is_held(std::uint64_t job) const {
  auto found = job_lane_.find(job);
  if (found == job_lane_.end()) return false;
  auto lane = lanes_.find(found->second);
  return lane != lanes_.end() && lane->second.front() != job;
}

}  // namespace kafka_llm::policy
