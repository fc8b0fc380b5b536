#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "options.hpp"

namespace kafka_llm::mock_provider {

/// The mock provider's HTTP server: one acceptor per listener (TCP, optional Unix socket) on the
/// calling thread, connections spread round-robin over `options.threads` I/O threads, each with
/// its own io_context. Move-only in spirit: not copyable, not movable.
class Server {
 public:
  /// Binds and listens on every configured endpoint; no thread is started yet. Throws
  /// std::system_error when an address cannot be resolved or bound (the message names it).
  explicit Server(const Options& options);

  /// Stops and joins the I/O threads if run() did not, and removes the Unix socket file.
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound TCP port (the real one when `--port 0` was given).
  std::uint16_t port() const;

  /// The bound TCP address, numeric (`--host localhost` gives "127.0.0.1").
  const std::string& host() const noexcept;

  /// Serves until SIGINT or SIGTERM arrives, then stops accepting, stops every I/O thread and
  /// returns. Connections still open are dropped.
  void run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kafka_llm::mock_provider
