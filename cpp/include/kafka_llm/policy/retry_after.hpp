#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "kafka_llm/common/types.hpp"

namespace kafka_llm::policy {

/// Server hints longer than this are clamped to it (the retry policy caps them much lower, at
/// errorMaxBackoff); keeps every later time-point addition far from overflow.
inline constexpr std::chrono::milliseconds kMaxRetryAfterHint{std::chrono::hours{24} * 366};

/// Which response header a retry hint came from.
enum class RetryAfterSource : std::uint8_t {
  kRetryAfterMs,    ///< `retry-after-ms` (OpenAI, Azure).
  kRetryAfter,      ///< `Retry-After` (RFC 9110 10.2.3).
  kRateLimitReset,  ///< `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (OpenAI, Groq).
  kAnthropicReset,  ///< `anthropic-ratelimit-*-reset` (Anthropic).
};

/// "retry_after_ms", "retry_after", "ratelimit_reset" or "anthropic_reset".
std::string_view to_string(RetryAfterSource source) noexcept;

/// How long the server asked us to wait, and which header said so.
struct RetryAfterHint {
  std::chrono::milliseconds delay{0};
  RetryAfterSource source = RetryAfterSource::kRetryAfter;
};

// Every parser below is total: it never throws, never overflows and never reads out of bounds,
// whatever the input. Leading and trailing spaces/tabs are ignored. Results are whole
// milliseconds rounded up (never earlier than asked), clamped to [0, kMaxRetryAfterHint];
// a negative number or a date in the past gives zero; unparseable input gives std::nullopt.

/// A `retry-after-ms` value: decimal milliseconds, possibly fractional ("250", "0.5", "-3").
std::optional<std::chrono::milliseconds> parse_retry_after_ms(std::string_view value) noexcept;

/// A `Retry-After` value: delta-seconds (integer, or fractional as some servers send) or an
/// HTTP-date in any of the three RFC 9110 forms, relative to the wall clock `now`.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) noexcept;

/// A Go-style duration as OpenAI sends in `x-ratelimit-reset-*`: one or more decimal numbers,
/// each with a unit of ns, us, µs, ms, s, m or h ("20ms", "6m0s", "1h2m3.5s", ".5s"), an
/// optional leading sign, or a bare "0".
std::optional<std::chrono::milliseconds> parse_duration(std::string_view value) noexcept;

/// An HTTP-date (RFC 9110 5.6.7): IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete
/// RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT", two-digit years resolved against `now` as
/// RFC 9110 prescribes) or asctime ("Sun Nov  6 08:49:37 1994"). Names are matched
/// case-insensitively; the weekday must be a valid name but is not checked against the date.
/// Invalid calendar dates (Feb 30), hours > 23, minutes > 59 and seconds > 60 are rejected.
std::optional<std::chrono::sys_time<std::chrono::milliseconds>> parse_http_date(
    std::string_view value, std::chrono::system_clock::time_point now) noexcept;

/// An RFC 3339 date-time ("2024-05-01T12:00:30.25Z", "2024-05-01T14:00:30+02:00"); fractional
/// seconds are rounded up to the millisecond.
std::optional<std::chrono::sys_time<std::chrono::milliseconds>> parse_rfc3339(
    std::string_view value) noexcept;

/// The hint a single header gives, or std::nullopt when `name` (case-insensitive) is not one of
/// the recognised headers or its value is unusable. Meant for fuzzing and for callers that see
/// headers one at a time.
std::optional<RetryAfterHint> retry_after_hint(std::string_view name, std::string_view value,
                                               std::chrono::system_clock::time_point now) noexcept;

/// The server's retry hint from a set of response headers, in priority order:
/// 1. `retry-after-ms`;
/// 2. `Retry-After`;
/// 3. the larger of `x-ratelimit-reset-requests` and `x-ratelimit-reset-tokens`;
/// 4. the latest of `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`.
/// A header present but unusable is skipped, so a lower-priority one can still answer.
/// std::nullopt when none gives a hint. Only the first occurrence of each name is considered.
std::optional<RetryAfterHint> retry_after_hint(const HeaderList& headers,
                                               std::chrono::system_clock::time_point now) noexcept;

}  // namespace kafka_llm::policy
