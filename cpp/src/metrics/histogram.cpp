#include "kafka_llm/metrics/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kafka_llm::metrics {

int Histogram::bucket_of(std::uint64_t micros) noexcept {
  if (micros < static_cast<std::uint64_t>(kSubBuckets)) return static_cast<int>(micros);
  const int msb = 63 - std::countl_zero(micros);
  const int shift = msb - kSubBits;
  const auto sub = static_cast<int>((micros >> shift) & (kSubBuckets - 1));
  const int index = (shift + 1) * kSubBuckets + sub;
  return std::min(index, kBuckets - 1);
}

std::uint64_t Histogram::upper_bound(int index) noexcept {
  if (index < kSubBuckets) return static_cast<std::uint64_t>(index);
  const int shift = index / kSubBuckets - 1;
  const auto sub = static_cast<std::uint64_t>(index % kSubBuckets);
  return (((kSubBuckets + sub + 1) << shift) - 1);
}

void Histogram::record(std::uint64_t micros) noexcept {
  ++buckets_[static_cast<std::size_t>(bucket_of(micros))];
  ++count_;
  sum_ += static_cast<double>(micros);
  max_ = std::max(max_, micros);
}

std::uint64_t Histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  const auto rank =
      static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[static_cast<std::size_t>(i)];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min(upper_bound(i), max_);
  }
  return max_;
}

std::uint64_t Histogram::count_at_most(std::uint64_t micros) const noexcept {
  std::uint64_t total = 0;
  for (int i = 0; i < kBuckets && upper_bound(i) <= micros; ++i)
    total += buckets_[static_cast<std::size_t>(i)];
  return total;
}

void Histogram::merge(const Histogram& other) noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

}  // namespace kafka_llm::metrics
