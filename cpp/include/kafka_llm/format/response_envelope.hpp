#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/format/token_usage.hpp"

namespace kafka_llm::format {

/// One record on the response topic (docs/formats.md, "Response envelope"), keyed by request_id.
struct ResponseEnvelope {
  nlohmann::json metadata;  ///< the request's metadata, unchanged (null when it had none)
  int status_code = 200;
  nlohmann::json body;  ///< provider JSON unchanged, or error_body(…) when status_code >= 400
  std::string request_id;
  std::optional<std::string> provider;  ///< null on the wire when unknown (e.g. poison records)
  std::optional<std::string> model;
  int attempts = 0;  ///< provider calls made (0 when none was)
  double latency_ms = 0.0;
  std::optional<std::string> prompt_version = std::nullopt;  ///< the stream's prompt template version
  /// The body as compact JSON text (the provider's bytes through compact_json when they were not
  /// compact already): when non-empty it is written as is instead of `body`, never re-serialized.
  std::string body_text{};
};

/// Compact JSON of `response`, members in this order: metadata, status_code, body (body_text
/// when set), request_id, provider, model, attempts, latency_ms; then `prompt_version` only when
/// set. Invalid UTF-8 in strings becomes U+FFFD (never throws except std::bad_alloc).
std::string serialize_response(const ResponseEnvelope& response);

/// The OpenAI-style `type` and `code` of an error with HTTP status `status_code`:
/// 400 invalid_request_error/invalid_request, 401 authentication_error/unauthorized,
/// 403 permission_error/forbidden, 404 not_found_error/not_found, 408 timeout_error/request_timeout,
/// 409 conflict_error/conflict, 413 invalid_request_error/request_too_large,
/// 422 invalid_request_error/unprocessable_entity, 429 rate_limit_error/rate_limit_exceeded,
/// 500 api_error/internal_error, 502 api_error/bad_gateway, 503 api_error/service_unavailable,
/// 504 timeout_error/gateway_timeout, 529 overloaded_error/overloaded; any other 4xx
/// invalid_request_error/http_<status>, anything else api_error/http_<status>.
struct ErrorKind {
  std::string_view type;
  std::string code;

  bool operator==(const ErrorKind&) const = default;
};
ErrorKind error_kind_for_status(int status_code);

/// `{"message": message, "type": …, "code": …}` with type and code from error_kind_for_status.
nlohmann::json error_object(int status_code, std::string_view message);

/// `{"error": error_object(status_code, message)}`: the body of an error response.
nlohmann::json error_body(int status_code, std::string_view message);

/// The Kafka headers of every output record, in this order: `request_message_id` (the request
/// id, KubeAI compatibility), `model_version`, `prompt_hash`.
HeaderList response_headers(std::string_view request_id, std::string_view model_version,
                            std::string_view prompt_hash);

/// A token stream chunk frame (docs/formats.md, "Token stream frames"):
/// `{"request_id":…,"seq":n,"chunk":<chunk>}`.
std::string serialize_chunk_frame(std::string_view request_id, std::uint64_t seq,
                                  const nlohmann::json& chunk);

/// The same frame with the provider's chunk spliced in as text, byte for byte, without
/// re-serializing it. Precondition: `chunk_json` is one complete JSON value (e.g. SSE data that
/// parsed successfully); otherwise the frame is not valid JSON.
std::string serialize_chunk_frame_raw(std::string_view request_id, std::uint64_t seq,
                                      std::string_view chunk_json);

/// The last record of a token stream (docs/formats.md, "Token stream frames").
struct StreamFinalFrame {
  std::string request_id;
  std::uint64_t seq = 0;  ///< one past the last chunk's seq
  int status_code = 200;
  std::optional<std::string> finish_reason;  ///< null on the wire when unknown
  std::optional<TokenUsage> usage;           ///< null on the wire when unknown
  std::optional<std::string> error_message;  ///< set when the stream failed
};

/// `{"request_id","seq","done":true,"status_code","finish_reason","usage"}`, plus
/// `"error": error_object(status_code, *error_message)` when error_message is set.
std::string serialize_final_frame(const StreamFinalFrame& frame);

}  // namespace kafka_llm::format
