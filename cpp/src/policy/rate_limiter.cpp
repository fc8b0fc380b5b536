#include "kafka_llm/policy/rate_limiter.hpp"

#include <algorithm>
#include <stdexcept>

namespace kafka_llm::policy {

RateLimiter::RateLimiter(std::optional<TokenBucketConfig> requests, std::optional<TokenBucketConfig> tokens) {
  if (requests) requests_.emplace(*requests);
  if (tokens) tokens_.emplace(*tokens);
}

RateLimiter RateLimiter::per_minute(std::optional<std::int64_t> requests_per_minute,
                                    std::optional<std::int64_t> tokens_per_minute) {
  if ((requests_per_minute && *requests_per_minute <= 0) || (tokens_per_minute && *tokens_per_minute <= 0)) {
    throw std::invalid_argument("rate limiter: rpm and tpm must be positive when set");
  }
  std::optional<TokenBucketConfig> requests;
  std::optional<TokenBucketConfig> tokens;
  if (requests_per_minute) requests = TokenBucketConfig::per_minute(*requests_per_minute);
  if (tokens_per_minute) tokens = TokenBucketConfig::per_minute(*tokens_per_minute);
  return {requests, tokens};
}

TakeResult RateLimiter::acquire(std::int64_t estimated_tokens, std::chrono::steady_clock::time_point now) {
  std::chrono::milliseconds wait{0};
  if (requests_) wait = std::max(wait, requests_->wait_for(1, now));
  if (tokens_) wait = std::max(wait, tokens_->wait_for(estimated_tokens, now));
  if (wait.count() > 0) return {TakeStatus::kMustWait, wait};
  if (requests_) requests_->charge(1, now);
  if (tokens_) tokens_->charge(std::max<std::int64_t>(estimated_tokens, 0), now);
  return {TakeStatus::kTaken, std::chrono::milliseconds{0}};
}

void RateLimiter::settle(std::int64_t token_delta, std::chrono::steady_clock::time_point now) {
  if (tokens_) tokens_->charge(token_delta, now);
}

void RateLimiter::refund(std::int64_t estimated_tokens, std::chrono::steady_clock::time_point now) {
  if (requests_) requests_->charge(-1, now);
  if (tokens_) tokens_->charge(-std::max<std::int64_t>(estimated_tokens, 0), now);
}

}  // namespace kafka_llm::policy
