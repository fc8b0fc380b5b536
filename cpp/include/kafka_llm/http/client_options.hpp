#pragma once

#include <cstddef>
#include <string>

namespace kafka_llm::http {

/// "kafka-llm/<package version>".
std::string default_user_agent();

/// Settings of one Client, fixed at construction.
struct ClientOptions {
  long max_connections_per_host = 0;  ///< 0: unlimited; excess requests wait inside the client
  long max_total_connections = 0;     ///< 0: unlimited
  bool http2 = true;  ///< offer HTTP/2 over TLS (ALPN) and multiplex requests on one connection
  std::string user_agent = default_user_agent();
  /// Limit on response header plus body bytes of one request (also bytes streamed to on_data);
  /// exceeding it fails the request with TransportError::kOther.
  std::size_t max_response_bytes = std::size_t{64} << 20;
  /// Idle request slots (each with a libcurl easy handle and its buffers) kept for reuse; more are freed.
  std::size_t max_idle_handles = 1024;
  /// libcurl's debug output to stderr. It includes request headers, i.e. API keys: development only.
  bool verbose = false;
};

}  // namespace kafka_llm::http
