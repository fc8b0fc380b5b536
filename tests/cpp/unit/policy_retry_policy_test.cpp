#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "kafka_llm/policy/retry_policy.hpp"
#include "kafka_llm/policy/split_mix64.hpp"

namespace kafka_llm::policy {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

class PolicyRetryPolicy : public ::testing::Test {
 protected:
  static RetryConfig config() {
    RetryConfig c;
    c.max_attempts = 6;
    c.initial_backoff = 500ms;
    c.max_backoff = 30s;
    c.error_max_backoff = 30s;
    c.request_timeout = 120s;
    c.max_malformed_retries = 1;
    return c;
  }

  RetryDecision decide(const RetryPolicy& policy, int attempt, int status, const HeaderList& headers = {},
                       milliseconds since_first = 1s, TransportError transport = TransportError::kNone,
                       int malformed = 0) {
    AttemptContext context;
    context.attempt = attempt;
    context.malformed_responses = malformed;
    context.first_attempt_at = first_;
    return policy.decide(context, classify(transport, status, headers), headers, first_ + since_first, wall_,
                         rng_);
  }

  std::chrono::steady_clock::time_point first_ = std::chrono::steady_clock::time_point{} + 1000h;
  std::chrono::system_clock::time_point wall_ = std::chrono::sys_days{std::chrono::year{2024} / 5 / 1};
  SplitMix64 rng_{77};
};

TEST_F(PolicyRetryPolicy, SuccessSucceedsEvenPastTheDeadline) {
  const RetryPolicy policy(config());
  for (milliseconds since : {milliseconds{0}, milliseconds{1s}, milliseconds{120s}, milliseconds{1h}}) {
    const RetryDecision d = decide(policy, 3, 200, {}, since);
    EXPECT_EQ(d.action, RetryAction::kSucceed);
    EXPECT_TRUE(d.reason.empty());
    EXPECT_EQ(d.reason_label, "ok");
  }
}

TEST_F(PolicyRetryPolicy, FinalStatusesFailNonRetryableAtOnce) {
  const RetryPolicy policy(config());
  for (int status : {400, 401, 403, 404, 413, 422, 501, 301}) {
    const RetryDecision d = decide(policy, 0, status);
    SCOPED_TRACE(status);
    EXPECT_EQ(d.action, RetryAction::kFail);
    EXPECT_EQ(d.error_class, ErrorClass::kNonRetryable);
    EXPECT_NE(d.reason.find("http_" + std::to_string(status)), std::string::npos) << d.reason;
  }
  const RetryDecision other = decide(policy, 0, 0, {}, 1s, TransportError::kOther);
  EXPECT_EQ(other.action, RetryAction::kFail);
  EXPECT_EQ(other.error_class, ErrorClass::kNonRetryable);
  EXPECT_NE(other.reason.find("transport_other"), std::string::npos) << other.reason;
}

TEST_F(PolicyRetryPolicy, EveryRetryableOutcomeRetriesWithJitteredBackoff) {
  const RetryPolicy policy(config());
  for (int status : {408, 425, 429, 500, 502, 503, 504, 529}) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      const RetryDecision d = decide(policy, attempt, status);
      SCOPED_TRACE(std::to_string(status) + " attempt " + std::to_string(attempt));
      ASSERT_EQ(d.action, RetryAction::kRetry);
      EXPECT_EQ(d.delay_source, DelaySource::kBackoff);
      EXPECT_FALSE(d.hint.has_value());
      EXPECT_GE(d.delay.count(), 0);
      EXPECT_LE(d.delay, policy.backoff().ceiling(attempt));
      EXPECT_EQ(d.reason_label, "http_" + std::to_string(status));
    }
  }
  for (TransportError e :
       {TransportError::kConnect, TransportError::kTls, TransportError::kDns, TransportError::kReset,
        TransportError::kTimeoutConnect, TransportError::kTimeoutFirstByte, TransportError::kTimeoutTotal}) {
    const RetryDecision d = decide(policy, 0, 0, {}, 1s, e);
    EXPECT_EQ(d.action, RetryAction::kRetry) << to_string(e);
    EXPECT_EQ(d.reason_label, to_string(e));
  }
}

TEST_F(PolicyRetryPolicy, BackoffDelayIsTheSeededFullJitterDraw) {
  const RetryPolicy policy(config());
  SplitMix64 expected_rng(77);
  for (int attempt = 0; attempt < 5; ++attempt) {
    const RetryDecision d = decide(policy, attempt, 503);
    EXPECT_EQ(d.delay, policy.backoff().delay(attempt, expected_rng)) << attempt;
  }
}

TEST_F(PolicyRetryPolicy, JitterSpreadsRetriesOfManyRequests) {
  const RetryPolicy policy(config());
  milliseconds lowest{60s};
  milliseconds highest{0};
  double sum = 0;
  constexpr int kRequests = 20'000;
  for (int i = 0; i < kRequests; ++i) {
    const RetryDecision d = decide(policy, 2, 429);  // window [0, 2000]
    lowest = std::min(lowest, d.delay);
    highest = std::max(highest, d.delay);
    sum += static_cast<double>(d.delay.count());
  }
  EXPECT_LT(lowest.count(), 20);
  EXPECT_GT(highest.count(), 1980);
  EXPECT_LE(highest.count(), 2000);
  EXPECT_NEAR(sum / kRequests, 1000.0, 25.0);
}

TEST_F(PolicyRetryPolicy, ServerHintSetsTheDelay) {
  const RetryPolicy policy(config());
  const RetryDecision seconds = decide(policy, 0, 503, {{"Retry-After", "3"}});
  ASSERT_EQ(seconds.action, RetryAction::kRetry);
  EXPECT_EQ(seconds.delay, 3s);
  EXPECT_EQ(seconds.delay_source, DelaySource::kServerHint);
  ASSERT_TRUE(seconds.hint.has_value());
  EXPECT_EQ(seconds.hint->source, RetryAfterSource::kRetryAfter);

  const RetryDecision ms = decide(policy, 4, 429, {{"retry-after-ms", "1234.5"}});
  EXPECT_EQ(ms.delay, 1235ms);

  const RetryDecision date = decide(policy, 0, 503, {{"Retry-After", "Wed, 01 May 2024 00:00:07 GMT"}});
  EXPECT_EQ(date.delay, 7s);

  const RetryDecision zero = decide(policy, 0, 429, {{"Retry-After", "0"}});
  EXPECT_EQ(zero.delay, 0ms);
  EXPECT_EQ(zero.delay_source, DelaySource::kServerHint);

  // Garbage is no hint: back to backoff.
  const RetryDecision garbage = decide(policy, 0, 503, {{"Retry-After", "soon"}});
  EXPECT_EQ(garbage.delay_source, DelaySource::kBackoff);
}

TEST_F(PolicyRetryPolicy, ServerHintIsCappedByErrorMaxBackoff) {
  RetryConfig c = config();
  c.error_max_backoff = 10s;
  c.max_backoff = 1s;  // the backoff cap does not apply to hints
  const RetryPolicy policy(c);
  const RetryDecision d = decide(policy, 0, 429, {{"Retry-After", "60"}});
  ASSERT_EQ(d.action, RetryAction::kRetry);
  EXPECT_EQ(d.delay, 10s);
  ASSERT_TRUE(d.hint.has_value());
  EXPECT_EQ(d.hint->delay, 60s);
  EXPECT_EQ(decide(policy, 0, 429, {{"Retry-After", "5"}}).delay, 5s);
  EXPECT_EQ(decide(policy, 0, 429, {{"Retry-After", "99999999999999999999"}}).delay, 10s);
}

TEST_F(PolicyRetryPolicy, RateLimitResetHeadersOnlyCountOn429) {
  const RetryPolicy policy(config());
  const HeaderList openai{{"x-ratelimit-reset-requests", "2s"}, {"x-ratelimit-reset-tokens", "7s"}};
  const RetryDecision limited = decide(policy, 0, 429, openai);
  EXPECT_EQ(limited.delay, 7s);
  EXPECT_EQ(limited.delay_source, DelaySource::kServerHint);
  const RetryDecision outage = decide(policy, 0, 503, openai);
  EXPECT_EQ(outage.delay_source, DelaySource::kBackoff);
  EXPECT_FALSE(outage.hint.has_value());

  const HeaderList anthropic{{"anthropic-ratelimit-tokens-reset", "2024-05-01T00:00:04Z"}};
  EXPECT_EQ(decide(policy, 0, 429, anthropic).delay, 4s);
  EXPECT_EQ(decide(policy, 0, 529, anthropic).delay_source, DelaySource::kBackoff);
  // An explicit Retry-After on a 503 still counts, and beats the reset headers on a 429.
  EXPECT_EQ(decide(policy, 0, 503, {{"Retry-After", "2"}, {"x-ratelimit-reset-tokens", "9s"}}).delay, 2s);
  EXPECT_EQ(decide(policy, 0, 429, {{"Retry-After", "2"}, {"x-ratelimit-reset-tokens", "9s"}}).delay, 2s);
}

TEST_F(PolicyRetryPolicy, MaxAttemptsExhaust) {
  RetryConfig c = config();
  c.max_attempts = 3;
  const RetryPolicy policy(c);
  EXPECT_EQ(decide(policy, 0, 503).action, RetryAction::kRetry);
  EXPECT_EQ(decide(policy, 1, 503).action, RetryAction::kRetry);
  const RetryDecision last = decide(policy, 2, 503, {{"Retry-After", "1"}});
  EXPECT_EQ(last.action, RetryAction::kFail);
  EXPECT_EQ(last.error_class, ErrorClass::kRetriesExhausted);
  EXPECT_NE(last.reason.find("3 attempts"), std::string::npos) << last.reason;
  EXPECT_NE(last.reason.find("http_503"), std::string::npos) << last.reason;
  EXPECT_EQ(last.reason_label, "http_503");

  c.max_attempts = 1;
  const RetryPolicy single(c);
  const RetryDecision only = decide(single, 0, 429);
  EXPECT_EQ(only.action, RetryAction::kFail);
  EXPECT_EQ(only.error_class, ErrorClass::kRetriesExhausted);
  EXPECT_NE(only.reason.find("1 attempt"), std::string::npos) << only.reason;
}

TEST_F(PolicyRetryPolicy, DeadlinePassedIsATimeout) {
  const RetryPolicy policy(config());
  for (milliseconds since : {milliseconds{120s}, milliseconds{121s}, milliseconds{1h}}) {
    const RetryDecision d = decide(policy, 0, 503, {}, since, TransportError::kNone);
    EXPECT_EQ(d.action, RetryAction::kFail);
    EXPECT_EQ(d.error_class, ErrorClass::kTimeout);
    EXPECT_NE(d.reason.find("120000 ms"), std::string::npos) << d.reason;
  }
  const RetryDecision total = decide(policy, 1, 0, {}, 120s, TransportError::kTimeoutTotal);
  EXPECT_EQ(total.error_class, ErrorClass::kTimeout);
  // The deadline check comes before the attempt count.
  const RetryDecision both = decide(policy, 5, 503, {}, 130s);
  EXPECT_EQ(both.error_class, ErrorClass::kTimeout);
  // A final error stays non-retryable after the deadline.
  EXPECT_EQ(decide(policy, 0, 400, {}, 130s).error_class, ErrorClass::kNonRetryable);
}

TEST_F(PolicyRetryPolicy, RetryThatWouldEndAfterTheDeadlineFailsNow) {
  RetryConfig c = config();
  c.request_timeout = 10s;
  const RetryPolicy policy(c);
  EXPECT_EQ(policy.deadline(first_), first_ + 10s);
  // 1 s left.
  const RetryDecision too_long = decide(policy, 0, 503, {{"Retry-After", "2"}}, 9s);
  EXPECT_EQ(too_long.action, RetryAction::kFail);
  EXPECT_EQ(too_long.error_class, ErrorClass::kRetriesExhausted);
  EXPECT_NE(too_long.reason.find("2000 ms"), std::string::npos) << too_long.reason;
  EXPECT_NE(too_long.reason.find("1000 ms left"), std::string::npos) << too_long.reason;
  const RetryDecision exact = decide(policy, 0, 503, {{"Retry-After", "1"}}, 9s);
  EXPECT_EQ(exact.action, RetryAction::kFail);
  const RetryDecision fits = decide(policy, 0, 503, {{"retry-after-ms", "999"}}, 9s);
  EXPECT_EQ(fits.action, RetryAction::kRetry);
  EXPECT_EQ(fits.delay, 999ms);
}

TEST_F(PolicyRetryPolicy, BackoffNearTheDeadlineEitherFitsOrFails) {
  RetryConfig c = config();
  c.request_timeout = 10s;
  c.initial_backoff = 4s;
  c.max_backoff = 4s;
  const RetryPolicy policy(c);
  int retried = 0;
  int failed = 0;
  for (int i = 0; i < 2000; ++i) {
    const RetryDecision d = decide(policy, 0, 503, {}, 8s);  // 2 s left, window [0, 4 s]
    if (d.action == RetryAction::kRetry) {
      ++retried;
      EXPECT_LT(d.delay, 2s);
    } else {
      ++failed;
      EXPECT_EQ(d.error_class, ErrorClass::kRetriesExhausted);
    }
  }
  EXPECT_NEAR(retried, 1000, 120);
  EXPECT_NEAR(failed, 1000, 120);
}

TEST_F(PolicyRetryPolicy, MalformedBodiesRetryABoundedNumberOfTimes) {
  const RetryPolicy policy(config());  // max_malformed_retries = 1
  const RetryDecision first = decide(policy, 0, 200, {}, 1s, TransportError::kMalformedResponse, 1);
  EXPECT_EQ(first.action, RetryAction::kRetry);
  EXPECT_EQ(first.reason_label, "malformed_response");
  const RetryDecision second = decide(policy, 1, 200, {}, 1s, TransportError::kMalformedResponse, 2);
  EXPECT_EQ(second.action, RetryAction::kFail);
  EXPECT_EQ(second.error_class, ErrorClass::kRetriesExhausted);
  EXPECT_NE(second.reason.find("malformed"), std::string::npos) << second.reason;
  // Other retryable errors are not limited by the malformed count.
  EXPECT_EQ(decide(policy, 2, 503, {}, 1s, TransportError::kNone, 2).action, RetryAction::kRetry);

  RetryConfig none = config();
  none.max_malformed_retries = 0;
  EXPECT_EQ(decide(RetryPolicy(none), 0, 200, {}, 1s, TransportError::kMalformedResponse, 1).action,
            RetryAction::kFail);
}

TEST_F(PolicyRetryPolicy, RejectsInvalidConfigs) {
  const auto with = [](auto change) {
    RetryConfig c = config();
    change(c);
    return c;
  };
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.max_attempts = 0; })), std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.max_malformed_retries = -1; })),
               std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.initial_backoff = -1ms; })), std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.max_backoff = -1ms; })), std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.error_max_backoff = -1ms; })), std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.request_timeout = 0ms; })), std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.request_timeout = std::chrono::hours{24 * 367}; })),
               std::invalid_argument);
  EXPECT_THROW(RetryPolicy(with([](RetryConfig& c) { c.max_backoff = milliseconds::max(); })),
               std::invalid_argument);
  EXPECT_NO_THROW(RetryPolicy(with([](RetryConfig& c) { c.initial_backoff = 0ms; })));
}

}  // namespace
}  // namespace kafka_llm::policy
