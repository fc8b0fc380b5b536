#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/policy/backoff.hpp"
#include "kafka_llm/policy/classify.hpp"
#include "kafka_llm/policy/random_source.hpp"
#include "kafka_llm/policy/retry_after.hpp"

namespace kafka_llm::policy {

/// Retry settings (`retry:` and `messaging.errorMaxBackoff`; docs/guarantees.md, "Retries, backoff and
/// rate limits").
struct RetryConfig {
  int max_attempts = 6;                                 ///< Attempts in total, the first included; >= 1.
  std::chrono::milliseconds initial_backoff{500};       ///< Backoff ceiling of the first retry.
  std::chrono::milliseconds max_backoff{30'000};        ///< Cap of the backoff ceiling.
  std::chrono::milliseconds error_max_backoff{30'000};  ///< Cap of server-given hints (Retry-After, ...).
  std::chrono::milliseconds request_timeout{120'000};   ///< Deadline, counted from the first attempt.
  int max_malformed_retries = 1;  ///< Retries allowed for malformed 2xx bodies, within max_attempts.
};

/// What the retry policy needs to know about the request beyond the last outcome.
struct AttemptContext {
  int attempt = 0;              ///< 0-based index of the attempt that just ended.
  int malformed_responses = 0;  ///< Malformed 2xx bodies so far, the one just received included.
  std::chrono::steady_clock::time_point first_attempt_at{};  ///< When attempt 0 started.
};

/// What to do after an attempt.
enum class RetryAction : std::uint8_t { kSucceed, kRetry, kFail };

/// Where a retry delay came from.
enum class DelaySource : std::uint8_t { kNone, kBackoff, kServerHint };

/// The decision after one attempt. Fields beyond `action` are meaningful as documented.
struct RetryDecision {
  RetryAction action = RetryAction::kFail;
  /// kRetry: wait this long, then start attempt `attempt + 1`.
  std::chrono::milliseconds delay{0};
  /// kRetry: kServerHint when a response header set the delay, else kBackoff.
  DelaySource delay_source = DelaySource::kNone;
  /// kRetry with kServerHint: the hint as received (before the error_max_backoff cap).
  std::optional<RetryAfterHint> hint;
  /// kFail: the dead-letter class.
  ErrorClass error_class = ErrorClass::kNonRetryable;
  /// kRetry, kFail: the metric label of the last outcome (Classification::reason, static storage).
  std::string_view reason_label;
  /// kFail: a human-readable explanation for the error response and `x-error`; empty otherwise.
  std::string reason;
};

/// Decides, after each provider attempt, whether a request succeeded, is retried after which
/// delay, or fails with which error class. Pure: the clocks and the random source are injected.
///
/// For a retryable outcome (Classification::disposition == kRetry), in this order:
/// 1. deadline (first_attempt_at + request_timeout) reached  -> fail, kTimeout;
/// 2. max_attempts used                                     -> fail, kRetriesExhausted;
/// 3. more than max_malformed_retries malformed bodies      -> fail, kRetriesExhausted;
/// 4. delay = the server's hint capped at error_max_backoff, or else full-jitter backoff for
///    retry number `attempt` (0-based). `retry-after-ms` and `Retry-After` count on any retryable
///    status; the rate-limit reset headers (x-ratelimit-reset-*, anthropic-*-reset) only on a
///    429, since providers send them on every response and they describe a quota window, not an
///    outage;
/// 5. a delay that would end at or after the deadline        -> fail now, kRetriesExhausted (the
///    request had time left, but not enough for another attempt after the wait).
/// A final outcome fails with kNonRetryable; a success succeeds even past the deadline.
class RetryPolicy {
 public:
  /// Throws std::invalid_argument for max_attempts < 1, max_malformed_retries < 0, a negative
  /// duration, a non-positive request_timeout, or any duration above 366 days.
  explicit RetryPolicy(RetryConfig config);

  /// The request's deadline: first_attempt_at + request_timeout. The I/O layer should bound
  /// each attempt's total timeout by it.
  std::chrono::steady_clock::time_point deadline(
      std::chrono::steady_clock::time_point first_attempt_at) const noexcept;

  /// The decision after attempt `context.attempt` ended with `outcome` and response `headers`.
  /// `steady_now` is compared with the deadline; `system_now` resolves HTTP-date hints. Draws
  /// from `rng` only for a backoff delay. Never throws except std::bad_alloc.
  RetryDecision decide(const AttemptContext& context, const Classification& outcome,
                       const HeaderList& headers, std::chrono::steady_clock::time_point steady_now,
                       std::chrono::system_clock::time_point system_now, RandomSource& rng) const;

  const RetryConfig& config() const noexcept { return config_; }
  const ExponentialBackoff& backoff() const noexcept { return backoff_; }

 private:
  RetryConfig config_;
  ExponentialBackoff backoff_;
};

}  // namespace kafka_llm::policy
