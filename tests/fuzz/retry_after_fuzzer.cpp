// Fuzz target: the retry-hint parsers (provider response headers are untrusted). The input is a
// header block, one "Name: value" per line (as in the seed corpus); every line's value is also
// given to each parser directly. Each is evaluated at several wall-clock instants, from the epoch
// to the far future, including the extremes of system_clock. Invariants:
// - every hint is within [0, kMaxRetryAfterHint] and names the header family it came from; an
//   unknown header gives none;
// - retry_after_hint(name, value) agrees with the parser of that header's family;
// - an HTTP-date reformatted as IMF-fixdate parses to the same instant; the delay until a date
//   never grows as `now` advances;
// - "N" read as seconds is never shorter than "N" read as milliseconds;
// - the header-list overload follows its documented priority (retry-after-ms, Retry-After, the
//   larger x-ratelimit-reset-*, the latest anthropic-ratelimit-*-reset; first occurrence of each).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "kafka_llm/common/types.hpp"
#include "kafka_llm/policy/retry_after.hpp"

namespace {

using kafka_llm::HeaderList;
using std::chrono::milliseconds;
namespace policy = kafka_llm::policy;
using SysMs = std::chrono::sys_time<milliseconds>;
using Clock = std::chrono::system_clock;

constexpr std::size_t kMaxLines = 16;

// Increasing instants: monotonicity of date delays is checked along this order.
const std::array<Clock::time_point, 6> kNows = {
    Clock::time_point::min(),
    Clock::time_point{},                                                         // the epoch
    Clock::time_point{std::chrono::sys_days{std::chrono::year{1994} / 11 / 6}},  // the RFC example
    Clock::time_point{std::chrono::sys_days{std::chrono::year{2024} / 5 / 1}} + milliseconds{43'200'250},
    Clock::time_point{std::chrono::sys_days{std::chrono::year{2099} / 12 / 31}},  // 2-digit years wrap
    Clock::time_point::max(),
};

constexpr std::array<std::string_view, 7> kDayNames = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool in_bounds(milliseconds delay) {
  return delay >= milliseconds{0} && delay <= policy::kMaxRetryAfterHint;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

std::optional<policy::RetryAfterSource> family(std::string_view name) {
  const std::string n = lowered(name);
  if (n == "retry-after-ms") return policy::RetryAfterSource::kRetryAfterMs;
  if (n == "retry-after") return policy::RetryAfterSource::kRetryAfter;
  if (n == "x-ratelimit-reset-requests" || n == "x-ratelimit-reset-tokens") {
    return policy::RetryAfterSource::kRateLimitReset;
  }
  if (n == "anthropic-ratelimit-requests-reset" || n == "anthropic-ratelimit-tokens-reset" ||
      n == "anthropic-ratelimit-input-tokens-reset" || n == "anthropic-ratelimit-output-tokens-reset") {
    return policy::RetryAfterSource::kAnthropicReset;
  }
  return std::nullopt;
}

// IMF-fixdate of an instant with a four-digit year, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::string> imf_fixdate(SysMs when) {
  const auto day = std::chrono::floor<std::chrono::days>(when);
  const std::chrono::year_month_day ymd{day};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return std::nullopt;
  const std::chrono::hh_mm_ss time{when - day};
  const std::chrono::weekday weekday{day};
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kDayNames[(weekday.c_encoding() + 6) % 7].data(), static_cast<unsigned>(ymd.day()),
                kMonthNames[static_cast<unsigned>(ymd.month()) - 1].data(), year,
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return std::string(buffer.data());
}

void check_value(std::string_view value) {
  std::optional<SysMs> previous_date;
  std::optional<milliseconds> previous_date_delay;
  for (const auto now : kNows) {
    const auto ms = policy::parse_retry_after_ms(value);
    const auto seconds = policy::parse_retry_after(value, now);
    const auto duration = policy::parse_duration(value);
    const auto date = policy::parse_http_date(value, now);
    const auto rfc3339 = policy::parse_rfc3339(value);
    for (const auto& delay : {ms, seconds, duration}) {
      if (delay) FUZZ_CHECK(in_bounds(*delay), value);
    }
    if (ms && seconds && !date) FUZZ_CHECK(*seconds >= *ms, value);
    if (date) {
      // Only the date forms reach the date parser through parse_retry_after.
      FUZZ_CHECK(seconds.has_value(), value);
      FUZZ_CHECK(date->time_since_epoch() % std::chrono::seconds{1} == milliseconds{0}, value);
      if (const auto text = imf_fixdate(*date)) {
        const auto again = policy::parse_http_date(*text, now);
        FUZZ_CHECK(again == date, *text);
      }
      // Two-digit years resolve against `now`, so only the same instant must come closer.
      if (previous_date == date) FUZZ_CHECK(*seconds <= *previous_date_delay, value);
      previous_date = date;
      previous_date_delay = seconds;
    }
    if (rfc3339) {
      const auto hint = policy::retry_after_hint("anthropic-ratelimit-tokens-reset", value, now);
      FUZZ_CHECK(hint && in_bounds(hint->delay), value);
    }
  }
}

void check_header(std::string_view name, std::string_view value) {
  for (const auto now : kNows) {
    const auto hint = policy::retry_after_hint(name, value, now);
    const auto expected_source = family(name);
    if (!expected_source) {
      FUZZ_CHECK(!hint, name);
      continue;
    }
    if (!hint) continue;
    FUZZ_CHECK(hint->source == *expected_source, name);
    FUZZ_CHECK(in_bounds(hint->delay), value);
    std::optional<milliseconds> direct;
    switch (hint->source) {
      case policy::RetryAfterSource::kRetryAfterMs:
        direct = policy::parse_retry_after_ms(value);
        break;
      case policy::RetryAfterSource::kRetryAfter:
        direct = policy::parse_retry_after(value, now);
        break;
      case policy::RetryAfterSource::kRateLimitReset:
        direct = policy::parse_duration(value);
        break;
      case policy::RetryAfterSource::kAnthropicReset:
        FUZZ_CHECK(policy::parse_rfc3339(value).has_value(), value);
        break;
    }
    if (hint->source != policy::RetryAfterSource::kAnthropicReset) FUZZ_CHECK(direct == hint->delay, value);
  }
}

// The documented priority, recomputed from the single-header function.
std::optional<policy::RetryAfterHint> expected_hint(const HeaderList& headers, Clock::time_point now) {
  const auto single = [&](std::string_view name) -> std::optional<policy::RetryAfterHint> {
    const std::string* value = kafka_llm::find_header(headers, name);
    if (value == nullptr) return std::nullopt;
    return policy::retry_after_hint(name, *value, now);
  };
  if (auto hint = single("retry-after-ms")) return hint;
  if (auto hint = single("retry-after")) return hint;
  const auto latest = [&](std::initializer_list<std::string_view> names) {
    std::optional<policy::RetryAfterHint> best;
    for (const auto name : names) {
      const auto hint = single(name);
      if (hint && (!best || hint->delay > best->delay)) best = hint;
    }
    return best;
  };
  if (auto hint = latest({"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"})) return hint;
  return latest({"anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
                 "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  HeaderList headers;
  while (!rest.empty() && headers.size() < kMaxLines) {
    const auto end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    const auto colon = line.find(':');
    const std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
    const std::string_view value = colon == std::string_view::npos ? line : line.substr(colon + 1);
    check_value(value);
    check_header(name, value);
    headers.emplace_back(name, value);
  }
  for (const auto now : kNows) {
    const auto hint = policy::retry_after_hint(headers, now);
    const auto expected = expected_hint(headers, now);
    FUZZ_CHECK(hint.has_value() == expected.has_value(), "header-list priority");
    if (hint) {
      FUZZ_CHECK(hint->delay == expected->delay && hint->source == expected->source, "header-list priority");
      FUZZ_CHECK(in_bounds(hint->delay), "header-list hint out of bounds");
    }
  }
  return 0;
}
