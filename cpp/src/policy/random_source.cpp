#include "kafka_llm/policy/random_source.hpp"

#include <limits>

namespace kafka_llm::policy {

std::uint64_t uniform_inclusive(RandomSource& rng, std::uint64_t bound) {
  if (bound == std::numeric_limits<std::uint64_t>::max()) return rng.next_u64();
  const std::uint64_t range = bound + 1;
  // Values below `threshold` would make some residues more likely than others; redraw them.
  // The rejection probability is below 1/2 even in the worst case.
  const std::uint64_t threshold = (0 - range) % range;
  for (;;) {
    const std::uint64_t value = rng.next_u64();
    if (value >= threshold) return value % range;
  }
}

}  // namespace kafka_llm::policy
