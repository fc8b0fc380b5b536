#pragma once

#include <cstdint>
#include <limits>

#include "kafka_llm/policy/random_source.hpp"

namespace kafka_llm::policy {

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator with good statistical
/// quality for jitter. Deterministic for a given seed, which is what tests need; production code
/// seeds it once per thread (e.g. from std::random_device). Not cryptographic.
/// Also a UniformRandomBitGenerator, so it works with <random> distributions.
class SplitMix64 final : public RandomSource {
 public:
  using result_type = std::uint64_t;

  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}

  std::uint64_t next_u64() noexcept override {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
  }

  result_type operator()() noexcept { return next_u64(); }
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

 private:
  std::uint64_t state_;
};

}  // namespace kafka_llm::policy
