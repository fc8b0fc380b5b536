#include "kafka_llm/policy/retry_after.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace kafka_llm::policy {

namespace {

using std::chrono::milliseconds;
using SysMs = std::chrono::sys_time<milliseconds>;

constexpr std::uint64_t kNsPerUs = 1'000;
constexpr std::uint64_t kNsPerMs = 1'000'000;
constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
constexpr std::uint64_t kNsPerMinute = 60 * kNsPerSecond;
constexpr std::uint64_t kNsPerHour = 60 * kNsPerMinute;
// All intermediate nanosecond values saturate here, far below 2^63, so sums cannot overflow.
constexpr std::uint64_t kCapNs = static_cast<std::uint64_t>(kMaxRetryAfterHint.count()) * kNsPerMs;
constexpr int kFractionDigits = 9;

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

milliseconds ms_from_ns_ceil(std::uint64_t ns) noexcept {
  return milliseconds{static_cast<milliseconds::rep>((ns + kNsPerMs - 1) / kNsPerMs)};
}

milliseconds clamp_hint(std::int64_t ms) noexcept {
  return milliseconds{std::clamp<std::int64_t>(ms, 0, kMaxRetryAfterHint.count())};
}

// A non-negative decimal "12", "12.5", "12." or ".5": the whole part saturates at kCapNs (any
// larger number is clamped anyway); the fraction keeps nanosecond resolution of its unit.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t nano_fraction = 0;  // fraction * 10^9, truncated
};

bool read_decimal(std::string_view& s, Decimal& out) noexcept {
  std::size_t i = 0;
  bool any_digit = false;
  Decimal d;
  while (i < s.size() && is_digit(s[i])) {
    any_digit = true;
    if (d.whole <= kCapNs) d.whole = d.whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
    ++i;
  }
  int fraction_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) {
      any_digit = true;
      if (fraction_digits < kFractionDigits) {
        d.nano_fraction = d.nano_fraction * 10 + static_cast<std::uint64_t>(s[i] - '0');
        ++fraction_digits;
      }
      ++i;
    }
  }
  if (!any_digit) return false;
  for (; fraction_digits < kFractionDigits; ++fraction_digits) d.nano_fraction *= 10;
  s.remove_prefix(i);
  out = d;
  return true;
}

// value * unit in nanoseconds, saturating at kCapNs.
std::uint64_t scale(const Decimal& d, std::uint64_t unit_ns) noexcept {
  if (d.whole > kCapNs / unit_ns) return kCapNs;
  // Units of a second or more are whole seconds, so the fraction term never overflows:
  // nano_fraction < 10^9 and unit_ns / 10^9 <= 3600.
  const std::uint64_t fraction_ns = unit_ns >= kNsPerSecond ? d.nano_fraction * (unit_ns / kNsPerSecond)
                                                            : d.nano_fraction * unit_ns / kNsPerSecond;
  return std::min(kCapNs, d.whole * unit_ns + fraction_ns);
}

// Consumes an optional sign; true when it was '-'.
bool read_sign(std::string_view& s) noexcept {
  if (s.empty() || (s.front() != '-' && s.front() != '+')) return false;
  const bool negative = s.front() == '-';
  s.remove_prefix(1);
  return negative;
}

std::optional<milliseconds> parse_signed_decimal(std::string_view value, std::uint64_t unit_ns) noexcept {
  std::string_view s = trim(value);
  const bool negative = read_sign(s);
  Decimal d;
  if (!read_decimal(s, d) || !s.empty()) return std::nullopt;
  if (negative) return milliseconds{0};
  return ms_from_ns_ceil(scale(d, unit_ns));
}

std::optional<std::uint64_t> duration_unit_ns(std::string_view unit) noexcept {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") return kNsPerUs;
  if (unit == "ms") return kNsPerMs;
  if (unit == "s") return kNsPerSecond;
  if (unit == "m") return kNsPerMinute;
  if (unit == "h") return kNsPerHour;
  return std::nullopt;
}

// A small forward-only reader for the date grammars.
class Scanner {
 public:
  explicit Scanner(std::string_view s) noexcept : s_(s) {}

  bool at_end() const noexcept { return pos_ == s_.size(); }
  bool peek(char c) const noexcept { return pos_ < s_.size() && s_[pos_] == c; }

  bool literal(char c) noexcept {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }

  // One or more spaces (asctime pads single-digit days with a space; tolerate doubled spaces).
  bool spaces() noexcept {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
    return pos_ > start;
  }

  bool number(std::size_t min_digits, std::size_t max_digits, int& out) noexcept {
    std::size_t n = 0;
    int value = 0;
    while (n < max_digits && pos_ + n < s_.size() && is_digit(s_[pos_ + n])) {
      value = value * 10 + (s_[pos_ + n] - '0');
      ++n;
    }
    if (n < min_digits) return false;
    pos_ += n;
    out = value;
    return true;
  }

  std::size_t digits_ahead() const noexcept {
    std::size_t n = 0;
    while (pos_ + n < s_.size() && is_digit(s_[pos_ + n])) ++n;
    return n;
  }

  std::string_view word() noexcept {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_alpha(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

constexpr std::array<std::string_view, 7> kShortDays{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::array<std::string_view, 7> kLongDays{"monday", "tuesday",  "wednesday", "thursday",
                                                    "friday", "saturday", "sunday"};
constexpr std::array<std::string_view, 12> kMonths{"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};

bool is_day_name(std::string_view w) noexcept {
  return std::any_of(kShortDays.begin(), kShortDays.end(),
                     [w](std::string_view d) { return iequals(w, d); }) ||
         std::any_of(kLongDays.begin(), kLongDays.end(), [w](std::string_view d) { return iequals(w, d); });
}

int month_number(std::string_view w) noexcept {
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (iequals(w, kMonths[i])) return static_cast<int>(i) + 1;
  }
  return 0;
}

struct TimeOfDay {
  int hour = 0;
  int minute = 0;
  int second = 0;
};

bool read_time(Scanner& sc, TimeOfDay& t) noexcept {
  return sc.number(2, 2, t.hour) && sc.literal(':') && sc.number(2, 2, t.minute) && sc.literal(':') &&
         sc.number(2, 2, t.second) && t.hour <= 23 && t.minute <= 59 && t.second <= 60;
}

// Milliseconds since the epoch for a validated civil date and time (UTC); nullopt for dates that
// do not exist. Leap second 60 simply rolls over into the next minute.
std::optional<SysMs> make_time(int year, int month, int day, const TimeOfDay& t) noexcept {
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::time_point_cast<milliseconds>(std::chrono::sys_days{ymd}) + std::chrono::hours{t.hour} +
         std::chrono::minutes{t.minute} + std::chrono::seconds{t.second};
}

int current_year(std::chrono::system_clock::time_point now) noexcept {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(now)};
  return static_cast<int>(ymd.year());
}

// RFC 9110 5.6.7: a two-digit year that looks more than 50 years in the future is in the past.
int resolve_two_digit_year(int yy, std::chrono::system_clock::time_point now) noexcept {
  const int this_year = current_year(now);
  int year = this_year - this_year % 100 + yy;
  if (year > this_year + 50) year -= 100;
  return year;
}

bool read_gmt(Scanner& sc) noexcept {
  return iequals(sc.word(), "gmt");
}

std::optional<milliseconds> delay_until(SysMs when, std::chrono::system_clock::time_point now) noexcept {
  // Both are far inside +-2^62 ms (dates have 4-digit years), so the difference cannot overflow.
  const auto now_ms = std::chrono::floor<milliseconds>(now.time_since_epoch()).count();
  return clamp_hint(when.time_since_epoch().count() - now_ms);
}

bool is_anthropic_reset(std::string_view name) noexcept {
  return iequals(name, "anthropic-ratelimit-requests-reset") ||
         iequals(name, "anthropic-ratelimit-tokens-reset") ||
         iequals(name, "anthropic-ratelimit-input-tokens-reset") ||
         iequals(name, "anthropic-ratelimit-output-tokens-reset");
}

constexpr std::array<std::string_view, 2> kOpenAiResetHeaders{"x-ratelimit-reset-requests",
                                                              "x-ratelimit-reset-tokens"};
constexpr std::array<std::string_view, 4> kAnthropicResetHeaders{
    "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset"};

}  // namespace

std::string_view to_string(RetryAfterSource source) noexcept {
  switch (source) {
    case RetryAfterSource::kRetryAfterMs:
      return "retry_after_ms";
    case RetryAfterSource::kRetryAfter:
      return "retry_after";
    case RetryAfterSource::kRateLimitReset:
      return "ratelimit_reset";
    case RetryAfterSource::kAnthropicReset:
      return "anthropic_reset";
  }
  return "retry_after";
}

std::optional<milliseconds> parse_retry_after_ms(std::string_view value) noexcept {
  return parse_signed_decimal(value, kNsPerMs);
}

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) noexcept {
  const std::string_view s = trim(value);
  if (s.empty()) return std::nullopt;
  if (is_digit(s.front()) || s.front() == '-' || s.front() == '+' || s.front() == '.') {
    return parse_signed_decimal(s, kNsPerSecond);
  }
  const auto when = parse_http_date(s, now);
  if (!when) return std::nullopt;
  return delay_until(*when, now);
}

std::optional<milliseconds> parse_duration(std::string_view value) noexcept {
  std::string_view s = trim(value);
  const bool negative = read_sign(s);
  if (s == "0") return milliseconds{0};
  if (s.empty()) return std::nullopt;
  std::uint64_t total_ns = 0;
  while (!s.empty()) {
    Decimal d;
    if (!read_decimal(s, d)) return std::nullopt;
    std::size_t unit_length = 0;
    while (unit_length < s.size() && !is_digit(s[unit_length]) && s[unit_length] != '.') ++unit_length;
    const auto unit_ns = duration_unit_ns(s.substr(0, unit_length));
    if (!unit_ns) return std::nullopt;
    s.remove_prefix(unit_length);
    total_ns = std::min(kCapNs, total_ns + scale(d, *unit_ns));
  }
  if (negative) return milliseconds{0};
  return ms_from_ns_ceil(total_ns);
}

std::optional<SysMs> parse_http_date(std::string_view value,
                                     std::chrono::system_clock::time_point now) noexcept {
  Scanner sc(trim(value));
  if (!is_day_name(sc.word())) return std::nullopt;
  int day = 0;
  int month = 0;
  int year = 0;
  TimeOfDay t;
  if (sc.literal(',')) {
    if (!sc.spaces() || !sc.number(1, 2, day)) return std::nullopt;
    if (sc.literal('-')) {  // RFC 850: 06-Nov-94 (a four-digit year is tolerated)
      month = month_number(sc.word());
      if (month == 0 || !sc.literal('-')) return std::nullopt;
      const std::size_t year_digits = sc.digits_ahead();
      if (year_digits != 2 && year_digits != 4) return std::nullopt;
      if (!sc.number(year_digits, year_digits, year)) return std::nullopt;
      if (year_digits == 2) year = resolve_two_digit_year(year, now);
    } else {  // IMF-fixdate: 06 Nov 1994
      if (!sc.spaces()) return std::nullopt;
      month = month_number(sc.word());
      if (month == 0 || !sc.spaces() || sc.digits_ahead() != 4 || !sc.number(4, 4, year)) return std::nullopt;
    }
    if (!sc.spaces() || !read_time(sc, t) || !sc.spaces() || !read_gmt(sc)) return std::nullopt;
  } else {  // asctime: Nov  6 08:49:37 1994
    if (!sc.spaces()) return std::nullopt;
    month = month_number(sc.word());
    if (month == 0 || !sc.spaces() || sc.digits_ahead() > 2 || !sc.number(1, 2, day)) return std::nullopt;
    if (!sc.spaces() || !read_time(sc, t) || !sc.spaces()) return std::nullopt;
    if (sc.digits_ahead() != 4 || !sc.number(4, 4, year)) return std::nullopt;
  }
  if (!sc.at_end()) return std::nullopt;
  return make_time(year, month, day, t);
}

std::optional<SysMs> parse_rfc3339(std::string_view value) noexcept {
  Scanner sc(trim(value));
  int year = 0;
  int month = 0;
  int day = 0;
  TimeOfDay t;
  if (sc.digits_ahead() != 4 || !sc.number(4, 4, year) || !sc.literal('-') || sc.digits_ahead() != 2 ||
      !sc.number(2, 2, month) || !sc.literal('-') || sc.digits_ahead() != 2 || !sc.number(2, 2, day)) {
    return std::nullopt;
  }
  if (!sc.literal('T') && !sc.literal('t') && !sc.literal(' ')) return std::nullopt;
  if (!read_time(sc, t)) return std::nullopt;
  int fraction_ms = 0;
  if (sc.literal('.')) {
    const std::size_t digits = sc.digits_ahead();
    if (digits == 0) return std::nullopt;
    bool round_up = false;
    for (std::size_t i = 0; i < digits; ++i) {
      int digit = 0;
      sc.number(1, 1, digit);
      if (i < 3) {
        fraction_ms = fraction_ms * 10 + digit;
      } else if (digit != 0) {
        round_up = true;
      }
    }
    for (std::size_t i = digits; i < 3; ++i) fraction_ms *= 10;
    if (round_up) ++fraction_ms;
  }
  int offset_minutes = 0;
  if (!sc.literal('Z') && !sc.literal('z')) {
    int sign = 0;
    if (sc.literal('+')) {
      sign = 1;
    } else if (sc.literal('-')) {
      sign = -1;
    } else {
      return std::nullopt;
    }
    int offset_hours = 0;
    int offset_mins = 0;
    if (sc.digits_ahead() != 2 || !sc.number(2, 2, offset_hours) || !sc.literal(':') ||
        sc.digits_ahead() != 2 || !sc.number(2, 2, offset_mins) || offset_hours > 23 || offset_mins > 59) {
      return std::nullopt;
    }
    offset_minutes = sign * (offset_hours * 60 + offset_mins);
  }
  if (!sc.at_end()) return std::nullopt;
  const auto local = make_time(year, month, day, t);
  if (!local) return std::nullopt;
  return *local + milliseconds{fraction_ms} - std::chrono::minutes{offset_minutes};
}

std::optional<RetryAfterHint> retry_after_hint(std::string_view name, std::string_view value,
                                               std::chrono::system_clock::time_point now) noexcept {
  std::optional<milliseconds> delay;
  RetryAfterSource source = RetryAfterSource::kRetryAfter;
  if (iequals(name, "retry-after-ms")) {
    delay = parse_retry_after_ms(value);
    source = RetryAfterSource::kRetryAfterMs;
  } else if (iequals(name, "retry-after")) {
    delay = parse_retry_after(value, now);
    source = RetryAfterSource::kRetryAfter;
  } else if (iequals(name, kOpenAiResetHeaders[0]) || iequals(name, kOpenAiResetHeaders[1])) {
    delay = parse_duration(value);
    source = RetryAfterSource::kRateLimitReset;
  } else if (is_anthropic_reset(name)) {
    if (const auto when = parse_rfc3339(value)) delay = delay_until(*when, now);
    source = RetryAfterSource::kAnthropicReset;
  }
  if (!delay) return std::nullopt;
  return RetryAfterHint{*delay, source};
}

std::optional<RetryAfterHint> retry_after_hint(const HeaderList& headers,
                                               std::chrono::system_clock::time_point now) noexcept {
  for (const std::string_view name : {std::string_view{"retry-after-ms"}, std::string_view{"retry-after"}}) {
    if (const std::string* value = find_header(headers, name)) {
      if (auto hint = retry_after_hint(name, *value, now)) return hint;
    }
  }
  // Several reset headers: wait for the latest, since the request needs every limit to allow it.
  std::optional<RetryAfterHint> best;
  const auto consider = [&](std::string_view name) {
    if (const std::string* value = find_header(headers, name)) {
      const auto hint = retry_after_hint(name, *value, now);
      if (hint && (!best || hint->delay > best->delay)) best = hint;
    }
  };
  for (const std::string_view name : kOpenAiResetHeaders) consider(name);
  if (best) return best;
  for (const std::string_view name : kAnthropicResetHeaders) consider(name);
  return best;
}

}  // namespace kafka_llm::policy
