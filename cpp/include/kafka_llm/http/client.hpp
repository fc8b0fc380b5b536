#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "kafka_llm/http/client_options.hpp"
#include "kafka_llm/http/request.hpp"
#include "kafka_llm/http/response.hpp"
#include "kafka_llm/http/transport_error.hpp"

namespace kafka_llm::http {

namespace detail {
class ClientCore;
}

/// An asynchronous HTTP/1.1 and HTTP/2 client: libcurl multi handles driven by an Asio io_context
/// (curl's socket-action interface; sockets and timers are waited on by Asio, never by blocking calls).
/// Connections, TLS sessions and DNS results are cached and reused across requests, per multi handle
/// (ClientOptions::shards).
///
/// Threads: a Client belongs to the thread that runs `io.run()`. Construct it anywhere, but call start,
/// cancel, in_flight and the destructor only on that thread (or while no thread runs the io_context).
/// All callbacks run on that thread. The io_context must outlive the Client.
///
/// Lifetime: the Client keeps each request's callbacks (and whatever they capture) until on_done has run.
/// Destroying the Client cancels every outstanding request without calling its on_done (their callbacks
/// are destroyed instead); it may be destroyed from inside on_data or on_done. Non-copyable, non-movable.
class Client {
 public:
  using RequestId = std::uint64_t;
  /// Receives body bytes as they arrive; the view is valid only during the call.
  using DataHandler = std::function<void(std::string_view)>;
  /// Receives the outcome, exactly once per started request (unless the Client is destroyed first).
  using DoneHandler = std::function<void(Response&&)>;

  /// Throws std::runtime_error when libcurl cannot be initialised.
  Client(boost::asio::io_context& io, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) = delete;
  Client& operator=(Client&&) = delete;

  /// Starts a request and returns its id (never 0, except when called while the Client is being destroyed,
  /// e.g. from a callback's destructor: then nothing starts). Never blocks and never calls back from inside
  /// start: failures to start (e.g. an unsupported URL scheme) arrive through on_done like any other error.
  /// `on_data` (may be empty) receives the response body in pieces instead of Response::body; it may call
  /// start and cancel, and may destroy the Client. `on_done` is called exactly once, later, on the io thread;
  /// it may call start and cancel and may destroy the Client. Callbacks must not throw: an exception from
  /// on_data fails its request with kOther; one from on_done propagates out of io_context::run().
  /// Throws std::bad_alloc when memory or a libcurl handle cannot be allocated.
  RequestId start(Request request, DataHandler on_data, DoneHandler on_done);

  /// Stops a request; its on_done then gets TransportError::kCancelled (later, not inside cancel).
  /// A no-op for unknown ids and for requests whose outcome is already decided (their on_done reports it).
  void cancel(RequestId id);

  /// Requests started whose outcome is not yet decided.
  std::size_t in_flight() const;

 private:
  std::vector<std::shared_ptr<detail::ClientCore>> cores_;  // shards (ClientOptions::shards)
  std::size_t requests_per_shard_ = 1;
};

}  // namespace kafka_llm::http
