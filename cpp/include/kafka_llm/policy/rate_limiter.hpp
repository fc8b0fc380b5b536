#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "kafka_llm/policy/token_bucket.hpp"

namespace kafka_llm::policy {

/// The request (RPM) and token (TPM) limits of one (provider, model) key, in process.
/// A request needs one request token and its estimated tokens, taken from both buckets
/// atomically (all or nothing); once the provider reports usage, settle() corrects the token
/// bucket by the difference, possibly into debt. Either limit may be absent (unlimited).
/// Not thread-safe; time is injected. For the limit shared across workers see
/// shared_rate_limit_script.hpp, which runs the same arithmetic inside Redis.
class RateLimiter {
 public:
  /// Throws std::invalid_argument when a given config is invalid (see validate()).
  RateLimiter(std::optional<TokenBucketConfig> requests, std::optional<TokenBucketConfig> tokens);

  /// Limits of `requests_per_minute` requests and `tokens_per_minute` tokens (burst = one
  /// minute's worth), each optional. Throws std::invalid_argument for a non-positive limit.
  static RateLimiter per_minute(std::optional<std::int64_t> requests_per_minute,
                                std::optional<std::int64_t> tokens_per_minute);

  /// Takes one request and `estimated_tokens` tokens if both are available; otherwise takes
  /// nothing and returns the longest of the two waits. An estimate above the TPM capacity waits
  /// for a full bucket and leaves debt (see bucket_wait_ms and bucket_charge).
  TakeResult acquire(std::int64_t estimated_tokens, std::chrono::steady_clock::time_point now);

  /// Corrects the token bucket once the real usage is known:
  /// `token_delta` = actual - estimated (positive charges more, allowing debt; negative refunds).
  void settle(std::int64_t token_delta, std::chrono::steady_clock::time_point now);

  /// Gives back an acquisition whose request was never sent (one request, `estimated_tokens`).
  void refund(std::int64_t estimated_tokens, std::chrono::steady_clock::time_point now);

  /// The buckets, when limited (for metrics and tests); nullopt when unlimited.
  const std::optional<TokenBucket>& requests() const noexcept { return requests_; }
  const std::optional<TokenBucket>& tokens() const noexcept { return tokens_; }

 private:
  std::optional<TokenBucket> requests_;
  std::optional<TokenBucket> tokens_;
};

}  // namespace kafka_llm::policy
