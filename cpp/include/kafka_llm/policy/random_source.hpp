#pragma once

#include <cstdint>

namespace kafka_llm::policy {

/// A source of uniformly distributed 64-bit values, injected into the policies so that every
/// random decision (jitter) is reproducible in tests. Implementations need not be thread-safe:
/// a policy only draws from the source it is handed, on the caller's thread.
class RandomSource {
 public:
  RandomSource() = default;
  RandomSource(const RandomSource&) = default;
  RandomSource(RandomSource&&) = default;
  RandomSource& operator=(const RandomSource&) = default;
  RandomSource& operator=(RandomSource&&) = default;
  virtual ~RandomSource() = default;

  /// The next value, uniformly distributed over all 2^64 values.
  virtual std::uint64_t next_u64() = 0;
};

/// A value uniformly distributed over [0, bound] (both ends included), without modulo bias.
/// Draws one or (rarely) more values from `rng`. Never throws unless `rng` does.
std::uint64_t uniform_inclusive(RandomSource& rng, std::uint64_t bound);

}  // namespace kafka_llm::policy
