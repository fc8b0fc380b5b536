#include "kafka_llm/policy/retry_policy.hpp"

#include <algorithm>
#include <stdexcept>

namespace kafka_llm::policy {

namespace {

using std::chrono::milliseconds;

// Bounding every configured duration keeps `now + delay` and `first_attempt_at + timeout` far
// from overflowing a nanosecond time point.
constexpr milliseconds kMaxConfiguredDuration{std::chrono::hours{24} * 366};

void check_duration(milliseconds value, const char* message) {
  if (value.count() < 0 || value > kMaxConfiguredDuration) throw std::invalid_argument(message);
}

const RetryConfig& validated(const RetryConfig& config) {
  if (config.max_attempts < 1) throw std::invalid_argument("retry: maxAttempts must be at least 1");
  if (config.max_malformed_retries < 0)
    throw std::invalid_argument("retry: malformed retries must not be negative");
  check_duration(config.initial_backoff, "retry: initialBackoff must be between 0 and 366 days");
  check_duration(config.max_backoff, "retry: maxBackoff must be between 0 and 366 days");
  check_duration(config.error_max_backoff, "messaging: errorMaxBackoff must be between 0 and 366 days");
  check_duration(config.request_timeout, "retry: requestTimeout must be between 0 and 366 days");
  if (config.request_timeout.count() == 0)
    throw std::invalid_argument("retry: requestTimeout must be positive");
  return config;
}

bool is_rate_limit_reset(RetryAfterSource source) noexcept {
  return source == RetryAfterSource::kRateLimitReset || source == RetryAfterSource::kAnthropicReset;
}

std::string describe(const Classification& outcome) {
  std::string text(outcome.reason);
  if (outcome.http_status != 0 && outcome.reason.rfind("http_", 0) != 0) {
    text += " (HTTP " + std::to_string(outcome.http_status) + ")";
  }
  return text;
}

std::string attempts_text(int attempts) {
  return std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts");
}

RetryDecision fail(ErrorClass error_class, const Classification& outcome, std::string reason) {
  RetryDecision decision;
  decision.action = RetryAction::kFail;
  decision.error_class = error_class;
  decision.reason_label = outcome.reason;
  decision.reason = std::move(reason);
  return decision;
}

}  // namespace

RetryPolicy::RetryPolicy(RetryConfig config)
    : config_(validated(config)), backoff_(config.initial_backoff, config.max_backoff) {}

std::chrono::steady_clock::time_point RetryPolicy::deadline(
    std::chrono::steady_clock::time_point first_attempt_at) const noexcept {
  return first_attempt_at + config_.request_timeout;
}

RetryDecision RetryPolicy::decide(const AttemptContext& context, const Classification& outcome,
                                  const HeaderList& headers, std::chrono::steady_clock::time_point steady_now,
                                  std::chrono::system_clock::time_point system_now, RandomSource& rng) const {
  const int attempts_made = std::max(context.attempt, 0) + 1;
  switch (outcome.disposition) {
    case Disposition::kSuccess: {
      RetryDecision decision;
      decision.action = RetryAction::kSucceed;
      decision.reason_label = outcome.reason;
      return decision;
    }
    case Disposition::kFail:
      return fail(ErrorClass::kNonRetryable, outcome,
                  "provider returned a non-retryable error: " + describe(outcome) + " after " +
                      attempts_text(attempts_made));
    case Disposition::kRetry:
      break;
  }

  const auto request_deadline = deadline(context.first_attempt_at);
  if (steady_now >= request_deadline) {
    return fail(ErrorClass::kTimeout, outcome,
                "request timeout of " + std::to_string(config_.request_timeout.count()) +
                    " ms passed after " + attempts_text(attempts_made) +
                    "; last error: " + describe(outcome));
  }
  if (attempts_made >= config_.max_attempts) {
    return fail(ErrorClass::kRetriesExhausted, outcome,
                "gave up after " + attempts_text(attempts_made) + " (maxAttempts " +
                    std::to_string(config_.max_attempts) + "); last error: " + describe(outcome));
  }
  if (outcome.kind == FailureKind::kMalformedResponse &&
      context.malformed_responses > config_.max_malformed_retries) {
    return fail(ErrorClass::kRetriesExhausted, outcome,
                "provider returned a malformed response " + std::to_string(context.malformed_responses) +
                    " times after " + attempts_text(attempts_made));
  }

  RetryDecision decision;
  decision.action = RetryAction::kRetry;
  decision.reason_label = outcome.reason;
  auto hint = retry_after_hint(headers, system_now);
  if (hint && is_rate_limit_reset(hint->source) && outcome.http_status != 429) hint.reset();
  if (hint) {
    decision.delay = std::min(hint->delay, config_.error_max_backoff);
    decision.delay_source = DelaySource::kServerHint;
    decision.hint = hint;
  } else {
    decision.delay = backoff_.delay(context.attempt, rng);
    decision.delay_source = DelaySource::kBackoff;
  }

  const auto remaining = std::chrono::ceil<milliseconds>(request_deadline - steady_now);
  if (decision.delay >= request_deadline - steady_now) {
    return fail(ErrorClass::kRetriesExhausted, outcome,
                "gave up after " + attempts_text(attempts_made) + ": the next retry in " +
                    std::to_string(decision.delay.count()) + " ms would pass the request timeout (" +
                    std::to_string(remaining.count()) + " ms left); last error: " + describe(outcome));
  }
  return decision;
}

}  // namespace kafka_llm::policy
