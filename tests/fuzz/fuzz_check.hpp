#pragma once

// Invariant checks for the libFuzzer targets: a violated invariant prints what failed and aborts, so
// libFuzzer records the input as a crash (like a sanitizer report) and `make fuzz-ci` fails.

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::fuzz {

[[noreturn]] inline void invariant_failed(const char* condition, std::string_view detail, const char* file,
                                          int line) {
  std::fprintf(stderr, "%s:%d: invariant violated: %s\n  %.*s\n", file, line, condition,
               static_cast<int>(detail.size()), detail.data());
  std::fflush(stderr);
  std::abort();
}

/// True when `text` is valid UTF-8 (error messages and ids end up in JSON and Kafka headers).
inline bool valid_utf8(std::string_view text) noexcept {
  return !format::find_invalid_utf8(text).has_value();
}

}  // namespace kafka_llm::fuzz

/// Aborts with `detail` (a std::string_view or a string) when `condition` is false.
#define FUZZ_CHECK(condition, detail)                                                                \
  do {                                                                                               \
    if (!(condition)) ::kafka_llm::fuzz::invariant_failed(#condition, (detail), __FILE__, __LINE__); \
  } while (false)
