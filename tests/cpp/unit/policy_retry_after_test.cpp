#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "kafka_llm/policy/retry_after.hpp"
#include "kafka_llm/policy/split_mix64.hpp"

namespace kafka_llm::policy {
namespace {

using std::chrono::milliseconds;
using SysMs = std::chrono::sys_time<milliseconds>;
using namespace std::chrono_literals;

constexpr std::int64_t kCap = kMaxRetryAfterHint.count();

std::chrono::system_clock::time_point at(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms = 0) {
  const std::chrono::sys_days day{std::chrono::year{y} / std::chrono::month{mo} / std::chrono::day{d}};
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      day + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{s} + milliseconds{ms});
}

SysMs at_ms(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms = 0) {
  return std::chrono::time_point_cast<milliseconds>(at(y, mo, d, h, mi, s, ms));
}

// The RFC 9110 example instant, minus 37 s.
const auto kNow = at(1994, 11, 6, 8, 49, 0);

struct NumberCase {
  std::string input;
  std::optional<std::int64_t> expected_ms;
};

TEST(PolicyRetryAfter, RetryAfterMsValues) {
  const std::vector<NumberCase> cases{
      {"250", 250},
      {"0", 0},
      {"0.5", 1},
      {"1.0", 1},
      {"1.001", 2},
      {"1.000", 1},
      {" 30 ", 30},
      {"\t30\t", 30},
      {"-5", 0},
      {"-0.5", 0},
      {"+7", 7},
      {"5.", 5},
      {".5", 1},
      {"007", 7},
      {"2000", 2000},
      {"", std::nullopt},
      {"   ", std::nullopt},
      {"abc", std::nullopt},
      {"1e3", std::nullopt},
      {"12abc", std::nullopt},
      {"1 2", std::nullopt},
      {".", std::nullopt},
      {"-", std::nullopt},
      {"--5", std::nullopt},
      {"0x10", std::nullopt},
      {"1,5", std::nullopt},
      {"\xEF\xBC\x91", std::nullopt},
      {"5ms", std::nullopt},
      {"NaN", std::nullopt},
      {"inf", std::nullopt},
      {"99999999999999999999999999999999", kCap},
      {"31622400000", kCap},
      {"31622399999", 31'622'399'999},
      {"1.9999999999999", 2},
  };
  for (const auto& c : cases) {
    const auto result = parse_retry_after_ms(c.input);
    SCOPED_TRACE("input '" + c.input + "'");
    ASSERT_EQ(result.has_value(), c.expected_ms.has_value());
    if (result) {
      EXPECT_EQ(result->count(), *c.expected_ms);
    }
  }
}

TEST(PolicyRetryAfter, RetryAfterDeltaSeconds) {
  const std::vector<NumberCase> cases{
      {"120", 120'000},
      {"0", 0},
      {"1.5", 1500},
      {"0.0001", 1},
      {"-1", 0},
      {"  7 ", 7000},
      {"+3", 3000},
      {".25", 250},
      {"1e2", std::nullopt},
      {"5 s", std::nullopt},
      {"5s", std::nullopt},
      {"", std::nullopt},
      {"\t", std::nullopt},
      {"9999999999999999999999", kCap},
      {"31622400", kCap},
      {"18446744073709551616", kCap},
  };
  for (const auto& c : cases) {
    const auto result = parse_retry_after(c.input, kNow);
    SCOPED_TRACE("input '" + c.input + "'");
    ASSERT_EQ(result.has_value(), c.expected_ms.has_value());
    if (result) {
      EXPECT_EQ(result->count(), *c.expected_ms);
    }
  }
}

TEST(PolicyRetryAfter, RetryAfterHttpDatesInAllThreeForms) {
  const std::vector<NumberCase> cases{
      {"Sun, 06 Nov 1994 08:49:37 GMT", 37'000},      // IMF-fixdate
      {"Sunday, 06-Nov-94 08:49:37 GMT", 37'000},     // RFC 850
      {"Sun Nov  6 08:49:37 1994", 37'000},           // asctime
      {"Sun Nov 06 08:49:37 1994", 37'000},           // asctime, zero-padded day
      {"  Sun, 06 Nov 1994 08:49:37 GMT\t", 37'000},  // surrounding whitespace
      {"sun, 06 nov 1994 08:49:37 gmt", 37'000},      // case-insensitive names
      {"Sun, 6 Nov 1994 08:49:37 GMT", 37'000},       // one-digit day tolerated
      {"Sunday, 06-Nov-1994 08:49:37 GMT", 37'000},   // RFC 850 with a four-digit year
      {"Mon, 06 Nov 1994 08:49:37 GMT", 37'000},      // weekday not cross-checked
      {"Sun, 06 Nov 1994 08:50:60 GMT", 120'000},     // leap second rolls over
      {"Sun, 06 Nov 1994 09:49:00 GMT", 3'600'000},  {"Sun, 06 Nov 1994 08:49:00 GMT", 0},  // now
      {"Sun, 06 Nov 1994 08:48:59 GMT", 0},                                                 // past
      {"Thu, 01 Jan 1970 00:00:00 GMT", 0},                                                 // far past
      {"Sat, 01 Jan 0000 00:00:00 GMT", 0},                                                 // year zero
      {"Fri, 31 Dec 9999 23:59:59 GMT", kCap},  // far future: clamped
      {"Wed, 07 Nov 1994 08:49:00 GMT", 86'400'000},
  };
  for (const auto& c : cases) {
    const auto result = parse_retry_after(c.input, kNow);
    SCOPED_TRACE("input '" + c.input + "'");
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->count(), c.expected_ms);
  }
}

TEST(PolicyRetryAfter, InvalidHttpDatesGiveNoHint) {
  for (const std::string input : {
           "Sun, 30 Feb 1994 08:49:37 GMT",  // no such day
           "Sun, 31 Apr 1994 08:49:37 GMT",  // no such day
           "Sun, 29 Feb 1995 08:49:37 GMT",  // not a leap year
           "Sun, 00 Nov 1994 08:49:37 GMT",  // day zero
           "Sun, 06 Nov 1994 24:00:00 GMT",  // hour 24
           "Sun, 06 Nov 1994 08:60:00 GMT",  // minute 60
           "Sun, 06 Nov 1994 08:49:61 GMT",  // second 61
           "Sun, 06 Nov 1994 8:49:37 GMT",   // one-digit hour
           "Sun, 06 Nov 1994 08:49:37",      // no zone
           "Sun, 06 Nov 1994 08:49:37 PST",  // not GMT
           "Sun, 06 Nov 1994 08:49:37 GMT+1",
           "Sun, 06 Nov 1994 08:49:37 GMT x",
           "Sun, 06 Foo 1994 08:49:37 GMT",  // bad month
           "Foo, 06 Nov 1994 08:49:37 GMT",  // bad weekday
           "Sun 06 Nov 1994 08:49:37 GMT",   // missing comma
           "Sun, 06 Nov 94 08:49:37 GMT",    // two-digit year in IMF-fixdate
           "Sun, 06 Nov 19945 08:49:37 GMT",
           "Sunday, 06-Nov-945 08:49:37 GMT",
           "Sunday, 06-Nov-9 08:49:37 GMT",
           "Sunday, 06 Nov-94 08:49:37 GMT",
           "Sun Nov  6 08:49:37",  // asctime without year
           "Sun Nov  6 08:49:37 94",
           "Sun Nov 123 08:49:37 1994",
           "Sun Nov  6 08:49:37 1994 GMT",
           "Sun,",
           "Sun",
           "GMT",
           "2024-05-01T00:00:00Z",  // RFC 3339 is not an HTTP-date
           "now",
       }) {
    EXPECT_FALSE(parse_retry_after(input, kNow).has_value()) << input;
    EXPECT_FALSE(parse_http_date(input, kNow).has_value()) << input;
  }
}

TEST(PolicyRetryAfter, Rfc850TwoDigitYearsFollowRfc9110) {
  const auto now = at(2025, 6, 1, 0, 0, 0);
  // 2070 is at most 50 years ahead: kept. 2080 would be more: it is 1980.
  EXPECT_EQ(parse_http_date("Tuesday, 01-Jan-70 00:00:00 GMT", now), at_ms(2070, 1, 1, 0, 0, 0));
  EXPECT_EQ(parse_http_date("Monday, 01-Jan-80 00:00:00 GMT", now), at_ms(1980, 1, 1, 0, 0, 0));
  EXPECT_EQ(parse_http_date("Sunday, 01-Jun-25 00:00:10 GMT", now), at_ms(2025, 6, 1, 0, 0, 10));
  EXPECT_EQ(parse_http_date("Wednesday, 01-Jan-75 00:00:00 GMT", now), at_ms(2075, 1, 1, 0, 0, 0));
  EXPECT_EQ(parse_http_date("Friday, 01-Jan-76 00:00:00 GMT", now), at_ms(1976, 1, 1, 0, 0, 0));
  EXPECT_EQ(parse_retry_after("Sunday, 01-Jun-25 00:00:10 GMT", now)->count(), 10'000);
  EXPECT_EQ(parse_retry_after("Monday, 01-Jan-80 00:00:00 GMT", now)->count(), 0);
}

TEST(PolicyRetryAfter, SubMillisecondNowRoundsTheDelayUp) {
  const auto now = at(1994, 11, 6, 8, 49, 36) + std::chrono::microseconds{500};
  // 999.5 ms to go: report 1000, never earlier than asked.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now)->count(), 1000);
}

TEST(PolicyRetryAfter, Rfc3339Timestamps) {
  struct Case {
    std::string input;
    std::optional<SysMs> expected;
  };
  const std::vector<Case> cases{
      {"2024-05-01T12:00:30Z", at_ms(2024, 5, 1, 12, 0, 30)},
      {"2024-05-01t12:00:30z", at_ms(2024, 5, 1, 12, 0, 30)},
      {"2024-05-01 12:00:30Z", at_ms(2024, 5, 1, 12, 0, 30)},
      {" 2024-05-01T12:00:30Z ", at_ms(2024, 5, 1, 12, 0, 30)},
      {"2024-05-01T12:00:30.25Z", at_ms(2024, 5, 1, 12, 0, 30, 250)},
      {"2024-05-01T12:00:30.2Z", at_ms(2024, 5, 1, 12, 0, 30, 200)},
      {"2024-05-01T12:00:30.123Z", at_ms(2024, 5, 1, 12, 0, 30, 123)},
      {"2024-05-01T12:00:30.1230Z", at_ms(2024, 5, 1, 12, 0, 30, 123)},
      {"2024-05-01T12:00:30.1231Z", at_ms(2024, 5, 1, 12, 0, 30, 124)},
      {"2024-05-01T12:00:30.999999Z", at_ms(2024, 5, 1, 12, 0, 31)},
      {"2024-05-01T14:00:30+02:00", at_ms(2024, 5, 1, 12, 0, 30)},
      {"2024-05-01T07:30:30-04:30", at_ms(2024, 5, 1, 12, 0, 30)},
      {"2024-05-01T00:30:00+01:00", at_ms(2024, 4, 30, 23, 30, 0)},
      {"2024-02-29T00:00:00Z", at_ms(2024, 2, 29, 0, 0, 0)},
      {"2024-12-31T23:59:60Z", at_ms(2025, 1, 1, 0, 0, 0)},
      {"2023-02-29T00:00:00Z", std::nullopt},
      {"2024-13-01T00:00:00Z", std::nullopt},
      {"2024-00-01T00:00:00Z", std::nullopt},
      {"2024-05-01T24:00:00Z", std::nullopt},
      {"2024-05-01T12:00:30", std::nullopt},
      {"2024-05-01T12:00:30.Z", std::nullopt},
      {"2024-05-01T12:00:30+24:00", std::nullopt},
      {"2024-05-01T12:00:30+02:60", std::nullopt},
      {"2024-05-01T12:00:30+0200", std::nullopt},
      {"2024-5-01T12:00:30Z", std::nullopt},
      {"24-05-01T12:00:30Z", std::nullopt},
      {"2024-05-01T12:00:30Zjunk", std::nullopt},
      {"2024-05-01X12:00:30Z", std::nullopt},
      {"2024-05-01", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    EXPECT_EQ(parse_rfc3339(c.input), c.expected);
  }
}

TEST(PolicyRetryAfter, GoDurations) {
  const std::vector<NumberCase> cases{
      {"1s", 1000},
      {"6m0s", 360'000},
      {"20ms", 20},
      {"1h2m3.5s", 3'723'500},
      {"0.5s", 500},
      {".5s", 500},
      {"1.s", 1000},
      {"0", 0},
      {"-0", 0},
      {"+0", 0},
      {"-1s", 0},
      {"+1s", 1000},
      {"1us", 1},
      {"1500us", 2},
      {"1\xC2\xB5s", 1},
      {"1\xCE\xBCs", 1},
      {"1000000ns", 1},
      {"1ns", 1},
      {"1000001ns", 2},
      {"2h", 7'200'000},
      {"1h1h", 7'200'000},
      {"1m30s", 90'000},
      {"59.999s", 59'999},
      {"0.0001s", 1},
      {" 1s ", 1000},
      {"100000000000000h", kCap},
      {"9999999999999999999999s", kCap},
      {"8784h", kCap},
      {"8783h", 8783LL * 3'600'000},
      {"", std::nullopt},
      {"s", std::nullopt},
      {"1", std::nullopt},
      {"10", std::nullopt},
      {"1x", std::nullopt},
      {"1 s", std::nullopt},
      {"1S", std::nullopt},
      {"1sec", std::nullopt},
      {"--1s", std::nullopt},
      {"1s-", std::nullopt},
      {".s", std::nullopt},
      {"1..5s", std::nullopt},
      {"ms", std::nullopt},
      {"-", std::nullopt},
      {"1s2", std::nullopt},
      {"1e3s", std::nullopt},
      {"\xC2\xB5s", std::nullopt},
      {"1\xC2s", std::nullopt},
  };
  for (const auto& c : cases) {
    const auto result = parse_duration(c.input);
    SCOPED_TRACE("input '" + c.input + "'");
    ASSERT_EQ(result.has_value(), c.expected_ms.has_value());
    if (result) {
      EXPECT_EQ(result->count(), *c.expected_ms);
    }
  }
}

TEST(PolicyRetryAfter, HeaderPriorityAndFallThrough) {
  const auto now = at(2024, 5, 1, 12, 0, 0);
  struct Case {
    std::string name;
    HeaderList headers;
    std::optional<std::int64_t> delay_ms;
    RetryAfterSource source = RetryAfterSource::kRetryAfter;
  };
  const std::vector<Case> cases{
      {"none", {}, std::nullopt},
      {"unrelated",
       {{"content-type", "application/json"}, {"x-ratelimit-remaining-requests", "0"}},
       std::nullopt},
      {"ms beats seconds",
       {{"Retry-After", "5"}, {"retry-after-ms", "1500"}},
       1500,
       RetryAfterSource::kRetryAfterMs},
      {"seconds beat resets",
       {{"x-ratelimit-reset-requests", "20s"}, {"retry-after", "2"}},
       2000,
       RetryAfterSource::kRetryAfter},
      {"garbage ms falls through",
       {{"retry-after-ms", "soon"}, {"Retry-After", "3"}},
       3000,
       RetryAfterSource::kRetryAfter},
      {"garbage everywhere",
       {{"retry-after-ms", "x"}, {"Retry-After", "y"}, {"x-ratelimit-reset-tokens", "z"}},
       std::nullopt},
      {"header names are case-insensitive", {{"RETRY-AFTER-MS", "42"}}, 42, RetryAfterSource::kRetryAfterMs},
      {"http date",
       {{"Retry-After", "Wed, 01 May 2024 12:00:10 GMT"}},
       10'000,
       RetryAfterSource::kRetryAfter},
      {"openai: larger of the two",
       {{"x-ratelimit-reset-requests", "1s"}, {"x-ratelimit-reset-tokens", "6m0s"}},
       360'000,
       RetryAfterSource::kRateLimitReset},
      {"openai: larger of the two, other order",
       {{"x-ratelimit-reset-tokens", "20ms"}, {"x-ratelimit-reset-requests", "1.5s"}},
       1500,
       RetryAfterSource::kRateLimitReset},
      {"openai: one present", {{"x-ratelimit-reset-tokens", "0.5s"}}, 500, RetryAfterSource::kRateLimitReset},
      {"openai: one garbage",
       {{"x-ratelimit-reset-tokens", "later"}, {"x-ratelimit-reset-requests", "2s"}},
       2000,
       RetryAfterSource::kRateLimitReset},
      {"openai beats anthropic",
       {{"anthropic-ratelimit-requests-reset", "2024-05-01T12:00:30Z"}, {"x-ratelimit-reset-requests", "1s"}},
       1000,
       RetryAfterSource::kRateLimitReset},
      {"anthropic: latest reset",
       {{"anthropic-ratelimit-requests-reset", "2024-05-01T12:00:05Z"},
        {"anthropic-ratelimit-tokens-reset", "2024-05-01T12:00:30Z"},
        {"anthropic-ratelimit-input-tokens-reset", "2024-05-01T12:00:20Z"}},
       30'000,
       RetryAfterSource::kAnthropicReset},
      {"anthropic: output tokens",
       {{"anthropic-ratelimit-output-tokens-reset", "2024-05-01T12:00:01.5Z"}},
       1500,
       RetryAfterSource::kAnthropicReset},
      {"anthropic: past reset",
       {{"anthropic-ratelimit-requests-reset", "2024-05-01T11:59:00Z"}},
       0,
       RetryAfterSource::kAnthropicReset},
      {"anthropic: garbage", {{"anthropic-ratelimit-requests-reset", "tomorrow"}}, std::nullopt},
      {"negative ms", {{"retry-after-ms", "-100"}}, 0, RetryAfterSource::kRetryAfterMs},
      {"past date", {{"Retry-After", "Wed, 01 May 2024 11:00:00 GMT"}}, 0, RetryAfterSource::kRetryAfter},
      {"huge", {{"Retry-After", "99999999999999999999"}}, kCap, RetryAfterSource::kRetryAfter},
      {"first occurrence wins",
       {{"Retry-After", "1"}, {"Retry-After", "9"}},
       1000,
       RetryAfterSource::kRetryAfter},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto hint = retry_after_hint(c.headers, now);
    ASSERT_EQ(hint.has_value(), c.delay_ms.has_value());
    if (hint) {
      EXPECT_EQ(hint->delay.count(), *c.delay_ms);
      EXPECT_EQ(hint->source, c.source);
    }
  }
}

TEST(PolicyRetryAfter, SingleHeaderEntryPoint) {
  const auto now = at(2024, 5, 1, 12, 0, 0);
  EXPECT_EQ(retry_after_hint("Retry-After-Ms", "10", now)->delay.count(), 10);
  EXPECT_EQ(retry_after_hint("retry-after", "1", now)->source, RetryAfterSource::kRetryAfter);
  EXPECT_EQ(retry_after_hint("X-RateLimit-Reset-Requests", "2s", now)->delay.count(), 2000);
  EXPECT_EQ(retry_after_hint("anthropic-ratelimit-tokens-reset", "2024-05-01T12:00:01Z", now)->delay.count(),
            1000);
  EXPECT_FALSE(retry_after_hint("content-length", "10", now).has_value());
  EXPECT_FALSE(retry_after_hint("retry-after", "", now).has_value());
  EXPECT_FALSE(retry_after_hint("", "", now).has_value());
  EXPECT_EQ(to_string(RetryAfterSource::kRetryAfterMs), "retry_after_ms");
  EXPECT_EQ(to_string(RetryAfterSource::kRateLimitReset), "ratelimit_reset");
  EXPECT_EQ(to_string(RetryAfterSource::kAnthropicReset), "anthropic_reset");
  EXPECT_EQ(to_string(RetryAfterSource::kRetryAfter), "retry_after");
}

TEST(PolicyRetryAfter, ExtremeClocksDoNotOverflow) {
  for (const auto now :
       {std::chrono::system_clock::time_point::min(), std::chrono::system_clock::time_point::max(),
        std::chrono::system_clock::time_point{}}) {
    for (const std::string value : {"Fri, 31 Dec 9999 23:59:59 GMT", "Sat, 01 Jan 0000 00:00:00 GMT",
                                    "Sunday, 06-Nov-94 08:49:37 GMT", "5"}) {
      const auto delay = parse_retry_after(value, now);
      ASSERT_TRUE(delay.has_value()) << value;
      EXPECT_GE(delay->count(), 0);
      EXPECT_LE(delay->count(), kCap);
    }
    const auto hint =
        retry_after_hint("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59.999999999-23:59", now);
    ASSERT_TRUE(hint.has_value());
    EXPECT_LE(hint->delay.count(), kCap);
  }
}

// A smoke fuzzer until the libFuzzer target exists: random bytes and mutations of valid values
// must never crash, throw or produce a delay outside [0, cap].
TEST(PolicyRetryAfter, ArbitraryInputIsSafe) {
  const std::vector<std::string> seeds{"Sun, 06 Nov 1994 08:49:37 GMT",
                                       "Sunday, 06-Nov-94 08:49:37 GMT",
                                       "Sun Nov  6 08:49:37 1994",
                                       "2024-05-01T12:00:30.25+02:00",
                                       "1h2m3.5s",
                                       "0.5",
                                       "99999999999999999999.999999",
                                       "-1.5s",
                                       "1\xC2\xB5s"};
  const std::vector<std::string> names{"retry-after-ms", "retry-after", "x-ratelimit-reset-tokens",
                                       "anthropic-ratelimit-requests-reset"};
  const std::string alphabet = "0123456789.:-+ ,TZzGMTSunNovhms\t\xC2\xB5\xCE\xBC\x00\xFF";
  SplitMix64 rng(31337);
  for (int i = 0; i < 50'000; ++i) {
    std::string value;
    if (i % 2 == 0) {
      value = seeds[rng.next_u64() % seeds.size()];
      const int mutations = 1 + static_cast<int>(rng.next_u64() % 4);
      for (int m = 0; m < mutations && !value.empty(); ++m) {
        const std::size_t pos = rng.next_u64() % value.size();
        switch (rng.next_u64() % 3) {
          case 0:
            value[pos] = alphabet[rng.next_u64() % alphabet.size()];
            break;
          case 1:
            value.erase(pos, 1);
            break;
          default:
            value.insert(pos, 1, alphabet[rng.next_u64() % alphabet.size()]);
            break;
        }
      }
    } else {
      const std::size_t length = rng.next_u64() % 40;
      for (std::size_t j = 0; j < length; ++j) value.push_back(static_cast<char>(rng.next_u64() & 0xFFU));
    }
    const auto now =
        at(2024, 5, 1, 12, 0, 0) + milliseconds{static_cast<std::int64_t>(rng.next_u64() % 1'000'000)};
    for (const auto& name : names) {
      const auto hint = retry_after_hint(name, value, now);
      if (hint) {
        ASSERT_GE(hint->delay.count(), 0) << value;
        ASSERT_LE(hint->delay.count(), kCap) << value;
      }
    }
    (void)parse_http_date(value, now);
    (void)parse_rfc3339(value);
  }
}

}  // namespace
}  // namespace kafka_llm::policy
