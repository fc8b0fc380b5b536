#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/format/endpoint.hpp"
#include "kafka_llm/format/json_parse.hpp"

namespace kafka_llm::format {

/// Where a request's id came from (precedence: field, then record key, then origin).
enum class RequestIdSource : std::uint8_t {
  kField,   ///< the envelope's non-empty `request_id` string
  kKey,     ///< the record key (non-empty, valid UTF-8)
  kOrigin,  ///< `<topic>-<partition>-<offset>`
};

/// A well-formed request record (docs/formats.md, "Request envelope"). Owns all its data; nothing points into
/// the record.
struct RequestEnvelope {
  nlohmann::json metadata;  ///< echoed back unchanged; null when absent
  Endpoint endpoint = Endpoint::kCompletions;
  std::string_view path;                ///< normalized path of `endpoint` (static storage)
  nlohmann::json body;                  ///< the OpenAI-style request, an object
  std::string model;                    ///< `body.model`, non-empty
  std::optional<std::string> provider;  ///< `provider`; nullopt when absent, null or ""
  std::string request_id;
  RequestIdSource request_id_source = RequestIdSource::kOrigin;
  bool stream = false;  ///< `body.stream == true`
  /// `deadline_ms`: answer by then (epoch ms), else not at all.
  std::optional<std::int64_t> deadline_ms;
  /// `timeout_ms`: answer within this long of the record's timestamp.
  std::optional<std::int64_t> timeout_ms;
  /// Bytes of prompt text: message contents (string content and `text` parts) for chat, `prompt`
  /// for completions, `input` for embeddings (strings; token-id arrays count 4 bytes per token).
  /// Feeds the rate-limit token estimate.
  std::size_t prompt_bytes = 0;
  std::string prompt_hash;  ///< prompt_hash(body), see prompt_hash.hpp
};

/// Whether a client can be told about a rejected record.
enum class ErrorReply : std::uint8_t {
  /// The record carried a request_id (field or key) or metadata (KubeAI clients correlate by
  /// metadata): publish an error response as well as the dead letter.
  kSend,
  /// Nothing a client could correlate: dead letter only.
  kDeadLetterOnly,
};

/// A record that can never be processed (a value, not an exception). Goes to the DLQ with
/// `error_class` and, when `reply` says so, gets an error response with `http_status`.
struct PoisonRecord {
  ErrorClass error_class = ErrorClass::kPoison;
  int http_status = 400;   ///< 413 for oversized records, 400 otherwise
  std::string message;     ///< names the problem, e.g. "body.model is required"; ≤ about 400 bytes
  std::string request_id;  ///< best effort: field (if the JSON parsed), key, else origin
  RequestIdSource request_id_source = RequestIdSource::kOrigin;
  nlohmann::json metadata;              ///< the record's metadata if the JSON parsed, else null
  std::optional<std::string> model;     ///< `body.model` when it is a string
  std::optional<std::string> provider;  ///< `provider` when it is a non-empty string
  ErrorReply reply = ErrorReply::kDeadLetterOnly;
};

/// The fate of one request record.
using ParseRequestResult = std::variant<RequestEnvelope, PoisonRecord>;

/// Default limit on a request record's value.
inline constexpr std::size_t kDefaultMaxRequestBytes = std::size_t{1} << 20U;

struct RequestParseOptions {
  std::size_t max_request_bytes = kDefaultMaxRequestBytes;
  std::size_t max_json_depth = kDefaultMaxJsonDepth;
};

/// Parses and validates one request record: value bytes, optional key, and where it came from.
/// The checks, in order: size (413), non-empty, UTF-8, nesting depth (linear pre-pass, so a depth
/// bomb cannot exhaust the stack), JSON syntax (one nlohmann parse), top-level object,
/// `request_id`/`path`/`provider` types, `deadline_ms`/`timeout_ms` (non-negative numbers), `path`
/// normalization and support, `body` object, `body.model`, `body.stream`, and the endpoint's prompt field
/// (`messages` array of objects for chat, `prompt` for completions, `input` for embeddings; each a string or
/// an array). JSON null counts as absent everywhere. Unknown fields are ignored. Never throws on any input
/// bytes (only std::bad_alloc can escape); nothing returned refers to `value` or `key`.
ParseRequestResult parse_request(std::string_view value, std::optional<std::string_view> key,
                                 const RecordOrigin& origin, const RequestParseOptions& options = {});

/// parse_request without key or origin (a default RecordOrigin): the fuzzing entry point.
ParseRequestResult parse_request(std::string_view value, const RequestParseOptions& options = {});

/// "<topic>-<partition>-<offset>", the request_id of last resort.
std::string origin_request_id(const RecordOrigin& origin);

}  // namespace kafka_llm::format
