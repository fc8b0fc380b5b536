#include "server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <csignal>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "responses.hpp"
#include "router.hpp"
#include "shared_state.hpp"

namespace kafka_llm::mock_provider {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local_stream = asio::local::stream_protocol;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::uint64_t kBodyLimit = 32ULL * 1024 * 1024;
constexpr std::string_view kServerName = "kafka-llm-mock-provider";

// One I/O thread with its own io_context and router. A connection is accepted onto one worker
// and stays there, so the router (random source, config copy) is only used from its thread.
class Worker {
 public:
  Worker(SharedState& shared, std::seed_seq& seed) : router_(shared, seed) {}

  ~Worker() { stop(); }

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  Worker(Worker&&) = delete;
  Worker& operator=(Worker&&) = delete;

  void start() {
    thread_ = std::thread([this] { context_.run(); });
  }

  // Safe to call twice. Pending operations are destroyed with the io_context, after the join.
  void stop() {
    work_.reset();
    context_.stop();
    if (thread_.joinable()) thread_.join();
  }

  asio::io_context& context() noexcept { return context_; }
  Router& router() noexcept { return router_; }

 private:
  Router router_;
  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  std::thread thread_;
};

std::string_view sv(beast::string_view text) noexcept {
  return {text.data(), text.size()};
}

Method method_of(http::verb verb) noexcept {
  switch (verb) {
    case http::verb::get:
      return Method::kGet;
    case http::verb::head:
      return Method::kHead;
    case http::verb::post:
      return Method::kPost;
    default:
      return Method::kOther;
  }
}

void append_number(std::string& out, std::uint64_t number) {
  std::array<char, 24> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number);
  out.append(buffer.data(), end);
}

std::string error_json(unsigned status, std::string_view code, std::string message) {
  return error_body(ApiError{status, "invalid_request_error", std::string(code), std::move(message), {}},
                    ErrorFlavor::kOpenAI);
}

// Serves one connection: reads requests one after the other (keep-alive; pipelined requests are
// answered in order), asks the worker's router what to answer and carries the answer out. The
// status line and headers are written by hand into one reused buffer, which spares Beast's
// per-field allocations on every response. Lives in the frame of the coroutine that runs it.
template <class Socket>
class Session {
 public:
  Session(Socket socket, Worker& worker)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), worker_(worker) {}

  asio::awaitable<void> run() {
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      auto [header_error, header_bytes] =
          co_await http::async_read_header(socket_, buffer_, parser, kNoThrow);
      if (header_error) {
        co_await reject_unreadable(header_error);
        co_return;
      }
      // libcurl waits a second for "100 Continue" before sending a large body; answer at once.
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(kContinue), kNoThrow);
        if (ec) co_return;
      }
      if (!parser.is_done()) {
        auto [body_error, body_bytes] = co_await http::async_read(socket_, buffer_, parser, kNoThrow);
        if (body_error) {
          co_await reject_unreadable(body_error);
          co_return;
        }
      }

      const auto& message = parser.get();
      const IncomingRequest request{
          method_of(message.method()),
          sv(message.method_string()),
          sv(message.target()),
          message.body(),
          sv(message["x-request-id"]),
          MockHeaders{sv(message["x-mock-latency-ms"]), sv(message["x-mock-fault"]),
                      sv(message["x-mock-fault-times"]), sv(message["x-mock-token-interval-ms"])},
      };
      Action action = worker_.router().route(request);
      if (!co_await wait(action.delay)) co_return;

      keep_alive_ = message.keep_alive();
      version_ = message.version();
      request_id_ = request.request_id;
      if (action.count_status && (action.kind == ActionKind::kRespond || action.kind == ActionKind::kStream ||
                                  action.kind == ActionKind::kTruncate)) {
        worker_.router().shared().stats.record_status(action.status);
      }

      bool keep_going = false;
      switch (action.kind) {
        case ActionKind::kRespond: {
          write_head(action, action.body.size());
          const bool with_body = request.method != Method::kHead;
          const std::array<asio::const_buffer, 2> buffers{
              asio::buffer(head_), asio::buffer(action.body.data(), with_body ? action.body.size() : 0)};
          auto [ec, n] = co_await asio::async_write(socket_, buffers, kNoThrow);
          keep_going = !ec && keep_alive_;
          break;
        }
        case ActionKind::kStream:
          keep_going = co_await stream(action, false);
          break;
        case ActionKind::kTruncate:
          if (action.events.empty()) {
            co_await send_truncated(action);
          } else {
            co_await stream(action, true);
          }
          break;
        case ActionKind::kHang:
          co_await hang();
          break;
        case ActionKind::kReset:
          reset_connection();
          co_return;
      }
      if (!keep_going) break;
    }
    close_gracefully();
  }

 private:
  using Timer =
      asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
                                 typename Socket::executor_type>;
  static constexpr std::size_t kChunked = static_cast<std::size_t>(-1);

  // Status line and headers into head_; `content_length` kChunked selects chunked encoding.
  void write_head(const Action& action, std::size_t content_length) {
    head_.clear();
    head_.append(version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    append_number(head_, action.status);
    head_.push_back(' ');
    head_.append(sv(http::obsolete_reason(static_cast<http::status>(action.status))));
    head_.append("\r\nServer: ").append(kServerName).append("\r\nContent-Type: ").append(action.content_type);
    if (content_length == kChunked) {
      head_.append("\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache");
    } else {
      head_.append("\r\nContent-Length: ");
      append_number(head_, content_length);
    }
    if (!keep_alive_) {
      head_.append("\r\nConnection: close");
    } else if (version_ == 10) {
      head_.append("\r\nConnection: keep-alive");
    }
    if (!request_id_.empty()) head_.append("\r\nx-request-id: ").append(request_id_);
    if (!action.retry_after.empty()) head_.append("\r\nRetry-After: ").append(action.retry_after);
    if (!action.retry_after_ms.empty()) head_.append("\r\nretry-after-ms: ").append(action.retry_after_ms);
    head_.append("\r\n\r\n");
  }

  asio::awaitable<void> reject_unreadable(const beast::error_code& error) {
    Action action;
    if (error == http::error::body_limit) {
      action.status = 413;
      action.body = error_json(413, "request_too_large", "request body too large");
    } else if (error.category() == http::make_error_code(http::error::bad_target).category() &&
               error != http::error::end_of_stream && error != http::error::partial_message) {
      action.status = 400;
      action.body = error_json(400, "bad_request", "malformed HTTP request");
    } else {
      close_gracefully();
      co_return;
    }
    keep_alive_ = false;
    request_id_ = {};
    write_head(action, action.body.size());
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(action.body)};
    co_await asio::async_write(socket_, buffers, kNoThrow);
    close_gracefully();
  }

  asio::awaitable<bool> wait(std::chrono::microseconds delay) {
    if (delay.count() <= 0) co_return true;
    timer_.expires_after(delay);
    auto [ec] = co_await timer_.async_wait(kNoThrow);
    co_return !ec;
  }

  void close_gracefully() {
    beast::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
    socket_.close(ignored);
  }

  void reset_connection() {
    beast::error_code ignored;
    if constexpr (std::is_same_v<typename Socket::protocol_type, tcp>) {
      socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    }
    socket_.close(ignored);
  }

  // Holds the connection without answering until the client closes it (or the server stops).
  asio::awaitable<void> hang() {
    std::array<char, 512> discard{};
    for (;;) {
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(discard), kNoThrow);
      if (ec) break;
    }
  }

  // Declares the full Content-Length, sends half of the body, and the caller closes.
  asio::awaitable<void> send_truncated(const Action& action) {
    write_head(action, action.body.size());
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_),
                                                    asio::buffer(action.body.data(), action.body.size() / 2)};
    co_await asio::async_write(socket_, buffers, kNoThrow);
  }

  // Server-Sent Events over chunked encoding, one chunk per event, each written when it is due.
  // A truncated stream stops half way through and never sends the last chunk. Returns whether
  // the connection can be kept.
  asio::awaitable<bool> stream(const Action& action, bool truncate) {
    write_head(action, kChunked);
    if (auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(head_), kNoThrow); ec)
      co_return false;
    const std::size_t count =
        truncate ? std::max<std::size_t>(1, (action.events.size() - 1) / 2) : action.events.size();
    std::array<char, 24> size_line{};
    for (std::size_t i = 0; i < count; ++i) {
      if (i > 0 && !co_await wait(action.token_interval)) co_return false;
      const std::string& event = action.events[i];
      auto [end, ec] =
          std::to_chars(size_line.data(), size_line.data() + size_line.size() - 2, event.size(), 16);
      *end++ = '\r';
      *end++ = '\n';
      const std::array<asio::const_buffer, 3> buffers{
          asio::buffer(size_line.data(), static_cast<std::size_t>(end - size_line.data())),
          asio::buffer(event), asio::buffer("\r\n", 2)};
      if (auto [write_error, n] = co_await asio::async_write(socket_, buffers, kNoThrow); write_error)
        co_return false;
    }
    if (truncate) co_return false;
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer("0\r\n\r\n", 5), kNoThrow);
    co_return !ec && keep_alive_;
  }

  Socket socket_;
  Timer timer_;
  Worker& worker_;
  beast::flat_buffer buffer_;
  std::string head_;
  std::string_view request_id_;  // view into the current request; reset with it
  bool keep_alive_ = true;
  unsigned version_ = 11;
};

template <class Socket>
asio::awaitable<void> serve(Socket socket, Worker& worker) {
  Session<Socket> session(std::move(socket), worker);
  co_await session.run();
}

tcp::endpoint resolve_tcp(asio::io_context& context, const std::string& host, std::uint16_t port) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (!ec) return {address, port};
  tcp::resolver resolver(context);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    throw std::system_error(ec ? ec : asio::error::host_not_found, "--host: cannot resolve '" + host + "'");
  }
  return results.begin()->endpoint();
}

}  // namespace

class Server::Impl {
 public:
  explicit Impl(const Options& options) : shared_(options.config), unix_path_(options.unix_socket) {
    std::random_device device;
    const std::uint64_t base_seed = options.seed ? *options.seed : (std::uint64_t{device()} << 32) ^ device();
    workers_.reserve(options.threads);
    for (unsigned i = 0; i < options.threads; ++i) {
      std::seed_seq seed{static_cast<std::uint32_t>(base_seed), static_cast<std::uint32_t>(base_seed >> 32),
                         i};
      workers_.push_back(std::make_unique<Worker>(shared_, seed));
    }

    const tcp::endpoint endpoint = resolve_tcp(control_, options.host, options.port);
    host_ = endpoint.address().to_string();
    tcp_acceptor_.open(endpoint.protocol());
    tcp_acceptor_.set_option(asio::socket_base::reuse_address(true));
    beast::error_code ec;
    tcp_acceptor_.bind(endpoint, ec);
    if (ec) throw std::system_error(ec, "cannot bind " + host_ + ":" + std::to_string(options.port));
    tcp_acceptor_.listen(asio::socket_base::max_listen_connections);

    if (unix_path_) {
      remove_stale_socket(*unix_path_);
      unix_acceptor_.emplace(control_);
      unix_acceptor_->open();
      unix_acceptor_->bind(local_stream::endpoint(*unix_path_), ec);
      if (ec) throw std::system_error(ec, "--unix-socket: cannot bind '" + *unix_path_ + "'");
      unix_bound_ = true;
      unix_acceptor_->listen(asio::socket_base::max_listen_connections);
    }
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
  }

  ~Impl() {
    stop_workers();
    if (unix_bound_) ::unlink(unix_path_->c_str());
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  Impl(Impl&&) = delete;
  Impl& operator=(Impl&&) = delete;

  std::uint16_t port() const { return tcp_acceptor_.local_endpoint().port(); }
  const std::string& host() const noexcept { return host_; }

  void run() {
    for (auto& worker : workers_) worker->start();
    asio::co_spawn(control_, accept_loop(tcp_acceptor_), asio::detached);
    if (unix_acceptor_) asio::co_spawn(control_, accept_loop(*unix_acceptor_), asio::detached);
    signals_.async_wait([this](const beast::error_code& ec, int) {
      if (ec) return;
      beast::error_code ignored;
      tcp_acceptor_.close(ignored);
      if (unix_acceptor_) unix_acceptor_->close(ignored);
      control_.stop();
    });
    control_.run();
    stop_workers();
  }

 private:
  // A socket file left by a previous run would make bind fail; anything else at that path is
  // not ours to delete.
  static void remove_stale_socket(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) return;
    if (!S_ISSOCK(info.st_mode)) {
      throw std::system_error(std::make_error_code(std::errc::file_exists),
                              "--unix-socket: '" + path + "' exists and is not a socket");
    }
    ::unlink(path.c_str());
  }

  void stop_workers() {
    for (auto& worker : workers_) worker->stop();
  }

  Worker& next_worker() {
    Worker& worker = *workers_[next_worker_];
    next_worker_ = (next_worker_ + 1) % workers_.size();
    return worker;
  }

  template <class Acceptor>
  asio::awaitable<void> accept_loop(Acceptor& acceptor) {
    asio::steady_timer backoff(control_);
    for (;;) {
      Worker& worker = next_worker();
      auto [ec, socket] = co_await acceptor.async_accept(worker.context(), kNoThrow);
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // Typically EMFILE: give connections time to close instead of spinning.
        backoff.expires_after(std::chrono::milliseconds(10));
        co_await backoff.async_wait(kNoThrow);
        continue;
      }
      if constexpr (std::is_same_v<typename Acceptor::protocol_type, tcp>) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
      }
      asio::co_spawn(worker.context(), serve(std::move(socket), worker), asio::detached);
    }
  }

  // Destruction runs bottom up. The control context goes first: a pending accept holds a socket
  // of some worker's context, so it must be destroyed while the workers exist. The workers (and
  // the connections in their contexts) go before the shared state they point to.
  SharedState shared_;
  std::optional<std::string> unix_path_;
  bool unix_bound_ = false;
  std::string host_;
  std::vector<std::unique_ptr<Worker>> workers_;
  asio::io_context control_{1};
  tcp::acceptor tcp_acceptor_{control_};
  std::optional<local_stream::acceptor> unix_acceptor_;
  asio::signal_set signals_{control_};
  std::size_t next_worker_ = 0;
};

Server::Server(const Options& options) : impl_(std::make_unique<Impl>(options)) {}

Server::~Server() = default;

std::uint16_t Server::port() const {
  return impl_->port();
}

const std::string& Server::host() const noexcept {
  return impl_->host();
}

void Server::run() {
  impl_->run();
}

}  // namespace kafka_llm::mock_provider
