#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/format/format_error.hpp"
#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format {

/// Lifecycle of a request's result in Redis. Done and cancelled are final: never replaced.
enum class ResultStatus : std::uint8_t { kPending, kDone, kError, kCancelled };

/// "pending", "done", "error" or "cancelled".
std::string_view to_string(ResultStatus status) noexcept;

/// Default prefix of result keys.
inline constexpr std::string_view kDefaultResultKeyPrefix = "kafka-llm";

/// The Redis result record of one request (docs/formats.md, "Redis result record").
struct ResultRecord {
  ResultStatus status = ResultStatus::kPending;
  std::string request_id;
  std::optional<std::string> provider;
  std::optional<std::string> model;
  std::optional<std::string> output;  ///< generated text: choices[0] message content / text
  nlohmann::json body;                ///< full provider JSON; null while pending
  /// The body as compact JSON text (the provider's bytes through compact_json when they were not
  /// compact already): when non-empty it is written as is instead of `body`, never re-serialized.
  std::string body_text{};
  std::optional<std::string> error;  ///< error message when status is error or cancelled
  std::optional<int> status_code;
  std::optional<TokenUsage> usage;
  int attempts = 0;
  std::optional<double> latency_ms;
  std::int64_t created_ms = 0;                ///< epoch ms
  std::int64_t updated_ms = 0;                ///< epoch ms
  std::optional<std::string> prompt_version;  ///< the stream's prompt template version, when it has one
  /// The prompt hash of what was sent (the outputs' `prompt_hash` header). A done record counts as
  /// the request's answer only for the same prompt: replayed with another template version, it runs again.
  std::optional<std::string> prompt_hash;

  bool operator==(const ResultRecord&) const = default;
};

/// `<prefix>:result:<request_id>`.
std::string result_key(std::string_view prefix, std::string_view request_id);

/// Compact JSON of `record`, every field present (null when unset), in this order: status,
/// request_id, provider, model, output, body, error, status_code, usage, attempts, latency_ms,
/// created_ms, updated_ms; then `prompt_version` and `prompt_hash` only when set. Never throws except
/// std::bad_alloc.
std::string serialize_result(const ResultRecord& record);

/// Reads a stored result record. Missing or null fields keep their defaults (records written by
/// older versions), unknown fields are ignored. `error` may also be an object with a string
/// `message` (its message is taken). Fails with a FormatError for text that is not JSON, not an
/// object, lacks a valid `status`, or has a field of the wrong type (the message names the field).
FormatResult<ResultRecord> parse_result(std::string_view text);

}  // namespace kafka_llm::format
