#include "kafka_llm/format/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace kafka_llm::format {

namespace {

bool is_continuation(unsigned char byte) noexcept {
  return (byte & 0xC0U) == 0x80U;
}

// Length of the valid UTF-8 sequence starting at `at`, or 0 when the bytes there are not one.
std::size_t sequence_length(const unsigned char* data, std::size_t size, std::size_t at) noexcept {
  const unsigned char lead = data[at];
  if (lead < 0x80U) return 1;
  // C0 and C1 would start overlong two-byte forms, F5..FF code points above U+10FFFF, and 80..BF
  // are continuation bytes: none can start a sequence.
  if (lead < 0xC2U || lead > 0xF4U) return 0;
  std::size_t length = 4;
  unsigned char second_min = 0x80U;
  unsigned char second_max = 0xBFU;
  if (lead < 0xE0U) {
    length = 2;
  } else if (lead < 0xF0U) {
    length = 3;
    if (lead == 0xE0U) second_min = 0xA0U;  // overlong
    if (lead == 0xEDU) second_max = 0x9FU;  // UTF-16 surrogates
  } else {
    if (lead == 0xF0U) second_min = 0x90U;  // overlong
    if (lead == 0xF4U) second_max = 0x8FU;  // above U+10FFFF
  }
  if (size - at < length) return 0;
  if (data[at + 1] < second_min || data[at + 1] > second_max) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (!is_continuation(data[at + k])) return 0;
  }
  return length;
}

}  // namespace

std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept {
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t at = 0;
  while (at < size) {
    // Most payloads are ASCII: skip eight bytes at a time while no high bit is set.
    while (size - at >= 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, data + at, sizeof word);
      if ((word & 0x8080808080808080ULL) != 0) break;
      at += 8;
    }
    if (at >= size) break;
    const std::size_t length = sequence_length(data, size, at);
    if (length == 0) return at;
    at += length;
  }
  return std::nullopt;
}

std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes) noexcept {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  // Step back over at most three continuation bytes so the cut lands on a sequence start.
  for (int steps = 0; steps < 3 && cut > 0 && is_continuation(static_cast<unsigned char>(text[cut]));
       ++steps) {
    --cut;
  }
  return text.substr(0, cut);
}

std::string sanitize_utf8(std::string_view text) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t length = sequence_length(data, text.size(), at);
    if (length == 0) {
      out.append(kReplacement);
      ++at;
    } else {
      out.append(text.substr(at, length));
      at += length;
    }
  }
  return out;
}

}  // namespace kafka_llm::format
