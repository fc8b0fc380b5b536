#include "kafka_llm/policy/backoff.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace kafka_llm::policy {

ExponentialBackoff::ExponentialBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(initial), max_(max) {
  if (initial.count() < 0) throw std::invalid_argument("backoff: initial delay must not be negative");
  if (max.count() < 0) throw std::invalid_argument("backoff: maximum delay must not be negative");
}

std::chrono::milliseconds ExponentialBackoff::ceiling(int attempt) const noexcept {
  const auto initial = static_cast<std::uint64_t>(initial_.count());
  const auto max = static_cast<std::uint64_t>(max_.count());
  if (initial == 0) return std::chrono::milliseconds{0};
  const auto shift = static_cast<unsigned>(std::clamp(attempt, 0, 63));
  // initial * 2^shift <= max  <=>  initial <= floor(max / 2^shift), so the product is only formed
  // when it cannot exceed max (and so cannot overflow).
  if (initial > (max >> shift)) return max_;
  return std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(initial << shift)};
}

std::chrono::milliseconds ExponentialBackoff::delay(int attempt, RandomSource& rng) const {
  const auto bound = static_cast<std::uint64_t>(ceiling(attempt).count());
  return std::chrono::milliseconds{
      static_cast<std::chrono::milliseconds::rep>(uniform_inclusive(rng, bound))};
}

}  // namespace kafka_llm::policy
