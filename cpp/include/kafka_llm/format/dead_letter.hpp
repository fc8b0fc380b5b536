#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kafka_llm/common/types.hpp"

namespace kafka_llm::format {

/// The headers a dead-letter record gets (docs/formats.md, "Dead-letter record"), in the order they are
/// appended.
inline constexpr std::array<std::string_view, 12> kDeadLetterHeaderNames = {
    "x-error-class",      "x-error",       "x-http-status",  "x-attempts",         "x-request-id",
    "x-provider",         "x-model",       "x-source-topic", "x-source-partition", "x-source-offset",
    "x-first-attempt-ms", "x-failed-at-ms"};

/// Headers the pipeline may add after those twelve: the output tags of the failed request
/// (`x-model-version`, `x-prompt-hash`, `x-prompt-version` when a prompt template applied) and, for a
/// schema violation, the rejected model output. Like the twelve, they are replaced on a re-driven
/// record that fails again, and a re-drive strips them to restore the original headers.
inline constexpr std::array<std::string_view, 5> kDeadLetterTagHeaderNames = {
    "x-model-version", "x-prompt-hash", "x-prompt-version", "x-model-output", "x-model-output-truncated"};

/// Default bound on `x-error`, in bytes.
inline constexpr std::size_t kMaxErrorHeaderBytes = 1024;

/// What went wrong with a record, for its dead-letter headers.
struct DeadLetterFacts {
  ErrorClass error_class = ErrorClass::kPoison;
  std::string error;               ///< raw message; redacted and bounded on the way out
  std::optional<int> http_status;  ///< last HTTP status (or the error response's); "" when none
  int attempts = 0;                ///< provider calls made
  std::string request_id;
  std::string provider;                          ///< "" when unknown
  std::string model;                             ///< "" when unknown
  RecordOrigin origin;                           ///< the failed record's topic, partition and offset
  std::optional<std::int64_t> first_attempt_ms;  ///< epoch ms of the first provider call; "" when none
  std::int64_t failed_at_ms = 0;                 ///< epoch ms
};

/// The dead-letter record's headers: `original` first (in order, minus any header named in
/// kDeadLetterHeaderNames or kDeadLetterTagHeaderNames, compared case-insensitively: a re-driven record that
/// fails again gets fresh values instead of duplicates), then the twelve kDeadLetterHeaderNames in order.
/// `x-error` is bounded_error_text(facts.error, secrets, max_error_bytes). Absent optionals are "".
HeaderList dead_letter_headers(const HeaderList& original, const DeadLetterFacts& facts,
                               const std::vector<std::string>& secrets,
                               std::size_t max_error_bytes = kMaxErrorHeaderBytes);

/// `text` with every occurrence of each non-empty entry of `secrets` replaced by `***` (longer
/// secrets first, so one that contains another is masked whole), then the token after
/// `Bearer ` (any case, one or more spaces; token characters [A-Za-z0-9-._~+/=]) and any word
/// starting with `sk-`, `sk_` or `gsk_` followed by at least 8 characters of [A-Za-z0-9_-]
/// (OpenAI, Anthropic, Groq key shapes) replaced by `***`.
std::string redact_secrets(std::string_view text, const std::vector<std::string>& secrets);

/// Header-safe error text: invalid UTF-8 replaced by U+FFFD, redact_secrets applied (before
/// cutting, so a secret is never half-kept), then cut on a UTF-8 boundary to at most `max_bytes`
/// bytes, ending in "..." when cut.
std::string bounded_error_text(std::string_view text, const std::vector<std::string>& secrets,
                               std::size_t max_bytes = kMaxErrorHeaderBytes);

}  // namespace kafka_llm::format
