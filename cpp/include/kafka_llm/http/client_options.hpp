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
  /// Split over the shards, each keeping at least min(max_idle_handles, 2 × requests_per_shard).
  std::size_t max_idle_handles = 1024;
  /// Requests are spread over up to this many libcurl multi handles (shards), each with its own
  /// connection cache: libcurl finds a reusable connection by walking the cached connections to the
  /// host, which at thousands of concurrent HTTP/1.1 requests cost more than the rest of a request.
  /// A request goes to the first shard with fewer than `requests_per_shard` in flight, else to the
  /// least loaded one. One shard when a connection limit above is set (limits hold per multi handle).
  std::size_t shards = 64;
  std::size_t requests_per_shard = 64;
  /// libcurl's receive buffer of each request slot (CURLOPT_BUFFERSIZE, 1 KiB to 512 KiB; libcurl's
  /// default is 16 KiB). It is allocated per slot, so it is a large part of the memory of an in-flight
  /// request; a larger response only takes more reads.
  long receive_buffer_bytes = 1024;
  /// libcurl's debug output to stderr. It includes request headers, i.e. API keys: development only.
  bool verbose = false;
};

}  // namespace kafka_llm::http
