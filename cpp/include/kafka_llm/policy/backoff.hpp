#pragma once

#include <chrono>

#include "kafka_llm/policy/random_source.hpp"

namespace kafka_llm::policy {

/// Exponential backoff with full jitter (docs/guarantees.md): the delay before retry number `attempt`
/// (0-based: the first retry is attempt 0) is uniform in [0, min(max, initial * 2^attempt)].
/// Pure value type; cheap to copy.
class ExponentialBackoff {
 public:
  /// Throws std::invalid_argument when `initial` or `max` is negative.
  ExponentialBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  /// The upper bound of the jitter window: min(max, initial * 2^attempt), computed without
  /// overflow for any attempt. A negative attempt counts as 0.
  std::chrono::milliseconds ceiling(int attempt) const noexcept;

  /// A delay drawn uniformly from [0, ceiling(attempt)], whole milliseconds, both ends included.
  std::chrono::milliseconds delay(int attempt, RandomSource& rng) const;

  std::chrono::milliseconds initial() const noexcept { return initial_; }
  std::chrono::milliseconds max() const noexcept { return max_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
};

}  // namespace kafka_llm::policy
