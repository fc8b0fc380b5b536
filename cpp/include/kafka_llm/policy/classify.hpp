#pragma once

#include <cstdint>
#include <string_view>

#include "kafka_llm/common/types.hpp"

namespace kafka_llm::policy {

/// How one provider attempt failed below HTTP, as reported by the transport (libcurl) layer.
enum class TransportError : std::uint8_t {
  kNone,               ///< A complete HTTP response was received.
  kConnect,            ///< TCP/UDS connect refused or unreachable.
  kTls,                ///< TLS handshake or certificate failure.
  kDns,                ///< Name resolution failed.
  kTimeoutConnect,     ///< No connection within the connect timeout.
  kTimeoutFirstByte,   ///< Connected, but no response byte within the first-byte timeout.
  kTimeoutTotal,       ///< The attempt's total time budget ran out.
  kReset,              ///< Connection reset, send or receive error mid-exchange.
  kMalformedResponse,  ///< A response arrived but its body is not the JSON the provider promises.
  kOther,              ///< Anything else (bad URL, out of memory, ...): not worth retrying.
};

/// The metric label of a transport error: "none", "connect", "tls", "dns", "timeout_connect",
/// "timeout_first_byte", "timeout_total", "reset", "malformed_response" or "transport_other".
std::string_view to_string(TransportError error) noexcept;

/// What to do with the request after one attempt.
enum class Disposition : std::uint8_t { kSuccess, kRetry, kFail };

/// "success", "retry" or "fail".
std::string_view to_string(Disposition disposition) noexcept;

/// Coarse cause of a failed attempt; the circuit breaker and the metrics key on it.
enum class FailureKind : std::uint8_t {
  kNone,               ///< The attempt succeeded.
  kNetwork,            ///< connect, TLS, DNS, reset.
  kTimeout,            ///< Any timeout, including HTTP 408.
  kRateLimited,        ///< HTTP 429.
  kServerError,        ///< HTTP 5xx (including 529 "overloaded") and 425.
  kClientError,        ///< Other HTTP 4xx: the request itself is at fault.
  kMalformedResponse,  ///< 2xx with a body that does not parse.
  kUnexpectedStatus,   ///< 1xx, 3xx or a status outside 100..599.
  kOther,              ///< TransportError::kOther.
};

/// "none", "network", "timeout", "rate_limited", "server_error", "client_error",
/// "malformed_response", "unexpected_status" or "other".
std::string_view to_string(FailureKind kind) noexcept;

/// The classified outcome of one provider attempt.
struct Classification {
  Disposition disposition = Disposition::kFail;
  FailureKind kind = FailureKind::kOther;
  /// A low-cardinality metric label: "ok", "http_<status>" (100..599), "http_invalid", or the
  /// transport error label (see to_string(TransportError)). Points to static storage.
  std::string_view reason;
  /// The HTTP status the attempt returned, 0 when none was received.
  int http_status = 0;
};

/// Classifies one provider attempt (docs/guarantees.md, "Retries, backoff and rate limits"). Pure and total:
/// never throws.
///
/// - A transport error other than kMalformedResponse decides alone: connect, TLS, DNS, reset and
///   every timeout retry; kOther fails.
/// - 2xx succeeds, unless the transport flagged the body as malformed: that retries (the retry
///   policy bounds how often, see RetryConfig::max_malformed_retries). kMalformedResponse on a
///   non-2xx status is ignored: error bodies are not parsed, the status decides.
/// - 408, 425, 429, 500, 502, 503, 504 and 529 retry; every other status fails (other 4xx and 5xx,
///   1xx, 3xx, and statuses outside 100..599).
/// - A provider's `x-should-retry: true|false` response header (honoured by the OpenAI and
///   Anthropic SDKs) overrides the status-based choice for non-2xx responses; the reason label
///   stays the status.
Classification classify(TransportError transport, int http_status, const HeaderList& headers) noexcept;

}  // namespace kafka_llm::policy
