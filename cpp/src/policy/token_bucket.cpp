#include "kafka_llm/policy/token_bucket.hpp"

#include <algorithm>
#include <stdexcept>

namespace kafka_llm::policy {

namespace {

constexpr std::int64_t kMaxCapacityUnits = std::int64_t{1} << 50;

std::int64_t ceil_div(std::int64_t numerator, std::int64_t denominator) noexcept {
  return numerator / denominator + (numerator % denominator > 0 ? 1 : 0);
}

}  // namespace

std::int64_t bucket_capacity_units(const TokenBucketConfig& config) noexcept {
  return config.capacity * config.refill_period.count();
}

void validate(const TokenBucketConfig& config) {
  if (config.capacity <= 0) throw std::invalid_argument("token bucket: capacity must be positive");
  if (config.refill_amount <= 0) throw std::invalid_argument("token bucket: refill amount must be positive");
  if (config.refill_period.count() <= 0)
    throw std::invalid_argument("token bucket: refill period must be positive");
  if (config.capacity > kMaxCapacityUnits / config.refill_period.count()) {
    throw std::invalid_argument("token bucket: capacity * refill period (ms) must not exceed 2^50");
  }
  if (config.refill_amount > bucket_capacity_units(config)) {
    throw std::invalid_argument("token bucket: refill amount must not exceed capacity * refill period (ms)");
  }
}

TokenBucketState bucket_full(const TokenBucketConfig& config, std::int64_t now_ms) noexcept {
  return {bucket_capacity_units(config), now_ms};
}

std::int64_t bucket_full_refill_ms(const TokenBucketConfig& config) noexcept {
  return ceil_div(2 * bucket_capacity_units(config), config.refill_amount);
}

TokenBucketState bucket_refill(const TokenBucketConfig& config, TokenBucketState state,
                               std::int64_t now_ms) noexcept {
  if (now_ms <= state.last_ms) return state;
  // Capping elapsed first keeps elapsed * refill_amount below 2^52: idle time beyond a full
  // refill from maximal debt adds nothing anyway.
  const std::int64_t elapsed = std::min(now_ms - state.last_ms, bucket_full_refill_ms(config));
  state.units = std::min(bucket_capacity_units(config), state.units + elapsed * config.refill_amount);
  state.last_ms = now_ms;
  return state;
}

std::int64_t bucket_wait_ms(const TokenBucketConfig& config, const TokenBucketState& state,
                            std::int64_t tokens) noexcept {
  const std::int64_t need =
      std::clamp<std::int64_t>(tokens, 0, config.capacity) * config.refill_period.count();
  if (state.units >= need) return 0;
  return ceil_div(need - state.units, config.refill_amount);
}

TokenBucketState bucket_charge(const TokenBucketConfig& config, TokenBucketState state,
                               std::int64_t tokens) noexcept {
  const std::int64_t full = bucket_capacity_units(config);
  const std::int64_t clamped = std::clamp<std::int64_t>(tokens, -2 * config.capacity, 2 * config.capacity);
  state.units = std::clamp<std::int64_t>(state.units - clamped * config.refill_period.count(), -full, full);
  return state;
}

TokenBucket::TokenBucket(TokenBucketConfig config) : config_(config) {
  validate(config_);
}

TokenBucket::TokenBucket(TokenBucketConfig config, TokenBucketState state)
    : config_(config), state_(state), started_(true) {
  validate(config_);
}

std::int64_t TokenBucket::to_ms(std::chrono::steady_clock::time_point now) noexcept {
  return std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

void TokenBucket::refill(std::chrono::steady_clock::time_point now) noexcept {
  const std::int64_t now_ms = to_ms(now);
  if (!started_) {
    state_ = bucket_full(config_, now_ms);
    started_ = true;
  }
  state_ = bucket_refill(config_, state_, now_ms);
}

TakeResult TokenBucket::try_take(std::int64_t tokens, std::chrono::steady_clock::time_point now) {
  refill(now);
  const std::int64_t wait = bucket_wait_ms(config_, state_, tokens);
  if (wait > 0) return {TakeStatus::kMustWait, std::chrono::milliseconds{wait}};
  state_ = bucket_charge(config_, state_, std::max<std::int64_t>(tokens, 0));
  return {TakeStatus::kTaken, std::chrono::milliseconds{0}};
}

std::chrono::milliseconds TokenBucket::wait_for(std::int64_t tokens,
                                                std::chrono::steady_clock::time_point now) {
  refill(now);
  return std::chrono::milliseconds{bucket_wait_ms(config_, state_, tokens)};
}

void TokenBucket::charge(std::int64_t tokens, std::chrono::steady_clock::time_point now) {
  refill(now);
  state_ = bucket_charge(config_, state_, tokens);
}

double TokenBucket::available(std::chrono::steady_clock::time_point now) {
  refill(now);
  return static_cast<double>(state_.units) / static_cast<double>(config_.refill_period.count());
}

}  // namespace kafka_llm::policy
