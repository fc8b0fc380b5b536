#pragma once

#include <array>
#include <cstdint>

namespace kafka_llm::metrics {

/// A log-linear histogram of non-negative durations in microseconds: 16 sub-buckets per power
/// of two (about 6% relative error), 1 µs to ~2^40 µs. Fixed size, no allocation; not
/// thread-safe (callers lock).
class Histogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr int kSubBuckets = 1 << kSubBits;
  static constexpr int kBuckets = 41 * kSubBuckets;

  void record(std::uint64_t micros) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  /// Sum of all recorded values, in microseconds.
  double sum() const noexcept { return sum_; }
  std::uint64_t max() const noexcept { return max_; }
  /// The value at quantile q in [0, 1] (the upper bound of its bucket, capped at max()); 0 if empty.
  std::uint64_t quantile(double q) const noexcept;
  /// How many recorded values are <= micros (exact at bucket bounds, conservative between).
  std::uint64_t count_at_most(std::uint64_t micros) const noexcept;
  void merge(const Histogram& other) noexcept;

  static int bucket_of(std::uint64_t micros) noexcept;
  /// The largest value that falls into bucket `index`.
  static std::uint64_t upper_bound(int index) noexcept;

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace kafka_llm::metrics
