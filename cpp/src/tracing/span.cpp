#include "kafka_llm/tracing/span.hpp"

#include <array>
#include <cmath>

namespace kafka_llm::tracing {

namespace {
constexpr std::array<char, 16> kHex{'0', '1', '2', '3', '4', '5', '6', '7',
                                    '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

bool is_hex(std::string_view text) noexcept {
  for (const char c : text) {
    if (hex_digit(c) < 0) return false;
  }
  return true;
}

bool all_zero(std::string_view text) noexcept {
  return text.find_first_not_of('0') == std::string_view::npos;
}

void append_hex(std::string& out, std::uint64_t value) {
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(value >> shift) & 0xFU]);
}

std::uint64_t nonzero(policy::RandomSource& rng) {
  std::uint64_t value = 0;
  while (value == 0) value = rng.next_u64();
  return value;
}
}  // namespace

std::optional<TraceContext> parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" trace-flags; later versions may append "-" fields.
  if (value.size() < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  const auto version = value.substr(0, 2);
  if (!is_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && value.size() != 55) return std::nullopt;
  if (value.size() > 55 && value[55] != '-') return std::nullopt;
  const auto trace_id = value.substr(3, 32);
  const auto span_id = value.substr(36, 16);
  const auto flags = value.substr(53, 2);
  if (!is_hex(trace_id) || !is_hex(span_id) || !is_hex(flags)) return std::nullopt;
  if (all_zero(trace_id) || all_zero(span_id)) return std::nullopt;
  return TraceContext{std::string(trace_id), std::string(span_id),
                      static_cast<std::uint8_t>(hex_digit(flags[0]) * 16 + hex_digit(flags[1]))};
}

std::string format_traceparent(const TraceContext& context) {
  std::string out = "00-" + context.trace_id + "-" + context.span_id + "-";
  out.push_back(kHex[(context.flags >> 4U) & 0xFU]);
  out.push_back(kHex[context.flags & 0xFU]);
  return out;
}

std::string new_span_id(policy::RandomSource& rng) {
  std::string out;
  out.reserve(16);
  append_hex(out, nonzero(rng));
  return out;
}

std::string new_trace_id(policy::RandomSource& rng) {
  std::string out;
  out.reserve(32);
  append_hex(out, rng.next_u64());
  append_hex(out, nonzero(rng));
  return out;
}

bool sampled_at_ratio(std::string_view trace_id, double ratio) noexcept {
  if (ratio >= 1.0) return true;
  if (ratio <= 0.0 || trace_id.size() < 16) return false;
  std::uint64_t low = 0;
  for (const char c : trace_id.substr(trace_id.size() - 16)) {
    const int digit = hex_digit(c);
    if (digit < 0) return false;
    low = (low << 4U) | static_cast<std::uint64_t>(digit);
  }
  return static_cast<long double>(low) < static_cast<long double>(ratio) * 18446744073709551616.0L;
}

}  // namespace kafka_llm::tracing
