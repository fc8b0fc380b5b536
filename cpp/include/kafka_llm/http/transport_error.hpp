#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string_view>

namespace kafka_llm::http {

/// Why a request got no complete HTTP response. HTTP statuses (4xx, 5xx) are not transport errors:
/// they arrive with `TransportError::kNone` and `Response::status` set.
enum class TransportError : std::uint8_t {
  kNone,
  kConnect,           ///< TCP/Unix connect failed (refused, unreachable, no such socket path)
  kDns,               ///< host name did not resolve
  kTls,               ///< TLS handshake or certificate verification failed
  kTimeoutConnect,    ///< the connect timeout (or the total timeout before connecting) expired
  kTimeoutFirstByte,  ///< no response byte within Timeouts::first_byte
  kTimeoutTotal,      ///< connected, but the whole exchange exceeded Timeouts::total
  kRecv,              ///< connection reset, closed without (complete) response, HTTP/2 stream reset
  kSend,              ///< sending the request failed
  kCancelled,         ///< Client::cancel
  kOther,             ///< anything else, including a response over ClientOptions::max_response_bytes
};

/// Stable lower-case name: "none", "connect", "dns", "tls", "timeout_connect", "timeout_first_byte",
/// "timeout_total", "recv", "send", "cancelled", "other".
std::string_view to_string(TransportError error) noexcept;

/// Maps a libcurl result to a TransportError. `connected` tells whether the connection (including TLS)
/// was established, which separates kTimeoutConnect from kTimeoutTotal for CURLE_OPERATION_TIMEDOUT.
TransportError classify_curl_error(CURLcode code, bool connected) noexcept;

}  // namespace kafka_llm::http
