#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kafka_llm {

/// Ordered name/value pairs: HTTP headers or Kafka record headers. Names keep their case;
/// lookups that follow HTTP rules are case-insensitive (see find_header).
using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// First value of `name` in `headers`, compared case-insensitively; nullptr when absent.
/// The pointer stays valid while `headers` is not modified.
const std::string* find_header(const HeaderList& headers, std::string_view name) noexcept;

/// Why a request ended up on the dead-letter topic (docs/formats.md, "Dead-letter record": header
/// `x-error-class`).
enum class ErrorClass : std::uint8_t {
  kRetriesExhausted,
  kNonRetryable,
  kPoison,
  kSchemaViolation,
  kTimeout,
  kExpired,  ///< the request's own deadline passed (docs/guarantees.md, "Deadlines")
};

/// The wire name of an error class: "retries_exhausted", "non_retryable", "poison",
/// "schema_violation", "timeout" or "expired".
std::string_view to_string(ErrorClass error_class) noexcept;

/// Where a record came from: enough to name it in errors and DLQ headers.
struct RecordOrigin {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};

}  // namespace kafka_llm
