#pragma once

#include <chrono>
#include <string>

#include "kafka_llm/common/types.hpp"

namespace kafka_llm::http {

/// Per-request time limits. Zero (or negative) disables a limit; a disabled connect timeout falls back
/// to libcurl's default of 300 s.
struct Timeouts {
  std::chrono::milliseconds connect{10'000};     ///< TCP (and TLS) connection establishment
  std::chrono::milliseconds first_byte{60'000};  ///< from Client::start until the first response byte
  std::chrono::milliseconds total{120'000};      ///< from Client::start until the response is complete
};

/// One HTTP request. Only `http://` and `https://` URLs are accepted; redirects are not followed.
struct Request {
  std::string method = "POST";  ///< any token; GET without body, HEAD and POST use curl's native modes
  std::string url;              ///< http:// or https://
  /// Sent as given, in order. The client adds Host, Content-Length, User-Agent and Accept; it suppresses
  /// libcurl's `Expect: 100-continue` and its default form Content-Type unless they are set here.
  HeaderList headers;
  std::string body;              ///< sent for every method except GET-with-empty-body and HEAD
  std::string unix_socket_path;  ///< non-empty: HTTP over this Unix domain socket (sidecar); host is nominal
  Timeouts timeouts;
};

}  // namespace kafka_llm::http
