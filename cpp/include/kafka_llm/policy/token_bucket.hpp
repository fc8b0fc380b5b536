#pragma once

#include <chrono>
#include <cstdint>

namespace kafka_llm::policy {

/// A bucket of `capacity` tokens refilled continuously at `refill_amount` tokens per
/// `refill_period` (e.g. an RPM limit of 500 is {500, 500, 60 s}).
struct TokenBucketConfig {
  std::int64_t capacity = 1;
  std::int64_t refill_amount = 1;
  std::chrono::milliseconds refill_period{1000};

  /// `limit` tokens per minute, burst up to `limit`.
  static TokenBucketConfig per_minute(std::int64_t limit) noexcept {
    return {limit, limit, std::chrono::minutes{1}};
  }
  /// `limit` tokens per second, burst up to `limit`.
  static TokenBucketConfig per_second(std::int64_t limit) noexcept {
    return {limit, limit, std::chrono::seconds{1}};
  }
};

/// A bucket's state in exact integer arithmetic: `units` = tokens * refill_period_ms (so one
/// millisecond of refill adds exactly `refill_amount` units), `last_ms` = the millisecond clock
/// reading of the last refill. `units` lies in [-capacity_units, capacity_units]: negative is debt.
struct TokenBucketState {
  std::int64_t units = 0;
  std::int64_t last_ms = 0;

  friend bool operator==(const TokenBucketState&, const TokenBucketState&) = default;
};

// --- The token-bucket arithmetic: the one place it is defined. -----------------------------
// kSharedRateLimitScript (shared_rate_limit_script.hpp) mirrors these four functions line by
// line for the Redis-shared variant. Everything is integer: exact in int64 here and exact in Lua
// doubles, because validate() keeps every intermediate below 2^53.

/// capacity * refill_period_ms: the units of a full bucket.
std::int64_t bucket_capacity_units(const TokenBucketConfig& config) noexcept;

/// Throws std::invalid_argument unless capacity, refill_amount and refill_period are positive,
/// refill_amount <= capacity_units and capacity_units <= 2^50.
void validate(const TokenBucketConfig& config);

/// A full bucket whose clock starts at `now_ms` (also what a missing Redis key means).
TokenBucketState bucket_full(const TokenBucketConfig& config, std::int64_t now_ms) noexcept;

/// Adds refill for the time since `state.last_ms`, capped at a full bucket. A clock reading
/// earlier than `last_ms` (another worker's skewed clock) refills nothing and keeps `last_ms`.
/// elapsed = min(now_ms - last_ms, ceil(2 * capacity_units / refill_amount));
/// units = min(capacity_units, units + elapsed * refill_amount).
TokenBucketState bucket_refill(const TokenBucketConfig& config, TokenBucketState state,
                               std::int64_t now_ms) noexcept;

/// Milliseconds until `tokens` can be taken from a (refilled) `state`: 0 when they can be now.
/// Requests larger than the capacity only need a full bucket (need = min(tokens, capacity)), so
/// they are admissible eventually; negative counts need nothing.
/// wait = ceil((need * refill_period_ms - units) / refill_amount), or 0 when units suffice.
std::int64_t bucket_wait_ms(const TokenBucketConfig& config, const TokenBucketState& state,
                            std::int64_t tokens) noexcept;

/// Subtracts `tokens` (negative: gives them back) without any check. Debt is allowed but floored
/// at one bucket (-capacity_units), and refunds cap at a full bucket; `tokens` is clamped to
/// [-2 * capacity, 2 * capacity] first, which changes nothing given those bounds.
TokenBucketState bucket_charge(const TokenBucketConfig& config, TokenBucketState state,
                               std::int64_t tokens) noexcept;

/// The longest a bucket takes to go from maximal debt to full: ceil(2 * capacity_units /
/// refill_amount) ms. After that long untouched, a bucket is full, so a shared bucket's Redis
/// key may expire then.
std::int64_t bucket_full_refill_ms(const TokenBucketConfig& config) noexcept;

/// Whether a take succeeded.
enum class TakeStatus : std::uint8_t { kTaken, kMustWait };

/// The result of a take: kTaken (wait is zero), or kMustWait with the time after which the
/// same request would succeed if nothing else takes tokens meanwhile.
struct TakeResult {
  TakeStatus status = TakeStatus::kTaken;
  std::chrono::milliseconds wait{0};
};

/// A local (in-process) token bucket with continuous refill at millisecond resolution.
/// Not thread-safe; time is injected as a steady clock reading. The bucket starts full at the
/// first call. Copyable value type.
class TokenBucket {
 public:
  /// Throws std::invalid_argument for an invalid config (see validate()).
  explicit TokenBucket(TokenBucketConfig config);

  /// Starts from a saved `state` instead of a full bucket. Throws like the other constructor.
  TokenBucket(TokenBucketConfig config, TokenBucketState state);

  /// Takes `tokens` if available (requests above the capacity need a full bucket and then leave
  /// debt); otherwise takes nothing and returns how long to wait. Negative counts take nothing.
  TakeResult try_take(std::int64_t tokens, std::chrono::steady_clock::time_point now);

  /// How long until `tokens` could be taken, refilling first but taking nothing.
  std::chrono::milliseconds wait_for(std::int64_t tokens, std::chrono::steady_clock::time_point now);

  /// Takes (positive) or gives back (negative) `tokens` unconditionally: usage corrections.
  void charge(std::int64_t tokens, std::chrono::steady_clock::time_point now);

  /// Tokens available at `now` (fractional, negative while in debt), after refilling.
  double available(std::chrono::steady_clock::time_point now);

  const TokenBucketConfig& config() const noexcept { return config_; }

  /// The raw state (for tests and diagnostics); meaningless before the first call.
  const TokenBucketState& state() const noexcept { return state_; }

  /// Milliseconds of a steady clock reading, the resolution of all bucket arithmetic.
  static std::int64_t to_ms(std::chrono::steady_clock::time_point now) noexcept;

 private:
  void refill(std::chrono::steady_clock::time_point now) noexcept;

  TokenBucketConfig config_;
  TokenBucketState state_;
  bool started_ = false;
};

}  // namespace kafka_llm::policy
