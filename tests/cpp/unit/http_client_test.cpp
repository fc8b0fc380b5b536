#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kafka_llm/http/client.hpp"

namespace {

namespace asio = boost::asio;
namespace http = kafka_llm::http;
using namespace std::chrono_literals;
using http::TransportError;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server on its own thread, with one behaviour per path:
//   /echo               200; echoes the body ("hello" when empty), method and some request headers
//   /status/<n>         status n
//   /continue           a 100 response with a header, then 200
//   /stream             chunked "part-0;", waits until open_gate() (up to 5 s), then "part-1;part-2;"
//   /hang               reads the request, never answers
//   /close              reads the request, closes the connection
//   /big/<n>            n bytes with Content-Length;  /big-chunked/<n>: n bytes, chunked
//   /slow-body          headers and 10 of 100 announced bytes, then nothing
//   /delay/<ms>         200 after ms milliseconds

struct ServerRequest {
  std::string method;
  std::string target;
  kafka_llm::HeaderList headers;
  std::string body;
};

ServerRequest parse_head(std::string_view head) {
  ServerRequest request;
  auto line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const auto first_space = request_line.find(' ');
  const auto second_space = request_line.find(' ', first_space + 1);
  request.method = std::string(request_line.substr(0, first_space));
  request.target = std::string(request_line.substr(first_space + 1, second_space - first_space - 1));
  while (line_end != std::string_view::npos && line_end + 2 < head.size()) {
    const auto start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, line_end - start);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    request.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return request;
}

std::string header_or(const ServerRequest& request, std::string_view name, const std::string& fallback) {
  const std::string* value = kafka_llm::find_header(request.headers, name);
  return value != nullptr ? *value : fallback;
}

std::string http_response(int status, const std::string& body, const std::string& extra_headers = {}) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + extra_headers + "\r\n" + body;
}

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

template <class Socket>
asio::awaitable<void> send(Socket& socket, std::string data) {
  co_await asio::async_write(socket, asio::buffer(data), asio::use_awaitable);
}

asio::awaitable<void> sleep_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

class TestServer {
 public:
  enum class Mode : std::uint8_t {
    kHttp,
    kGarbage,  // answers every connection at once with a plain HTTP response, without reading: not TLS
  };

  explicit TestServer(Mode mode = Mode::kHttp) : mode_(mode) {
    auto& acceptor = tcp_.emplace(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(acceptor), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  explicit TestServer(const std::string& unix_path) {
    auto& acceptor = local_.emplace(io_, asio::local::stream_protocol::endpoint(unix_path));
    asio::co_spawn(io_, accept_loop(acceptor), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  TestServer(TestServer&&) = delete;
  TestServer& operator=(TestServer&&) = delete;

  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(port_) + target;
  }
  int connections() const { return connections_.load(); }
  void open_gate() { gate_ = true; }
  // Whether /stream found the gate open before it sent its second part.
  bool gate_was_open() const { return gate_was_open_.load(); }

 private:
  template <class Acceptor>
  asio::awaitable<void> accept_loop(Acceptor& acceptor) {
    for (;;) {
      auto socket = co_await acceptor.async_accept(asio::use_awaitable);
      ++connections_;
      if (mode_ == Mode::kGarbage) {
        asio::co_spawn(io_, garbage_session(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(io_, session(std::move(socket)), asio::detached);
      }
    }
  }

  template <class Socket>
  asio::awaitable<void> session(Socket socket) {
    try {
      std::string buffer;
      for (;;) {
        const std::size_t head_size = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                                      "\r\n\r\n", asio::use_awaitable);
        ServerRequest request = parse_head(std::string_view(buffer).substr(0, head_size));
        buffer.erase(0, head_size);
        const std::size_t length = std::stoul(header_or(request, "Content-Length", "0"));
        if (buffer.size() < length) {
          co_await asio::async_read(socket, asio::dynamic_buffer(buffer),
                                    asio::transfer_exactly(length - buffer.size()), asio::use_awaitable);
        }
        request.body = buffer.substr(0, length);
        buffer.erase(0, length);
        if (!co_await respond(socket, request)) co_return;
      }
    } catch (const std::exception&) {
      // The client went away.
    }
  }

  template <class Socket>
  asio::awaitable<void> garbage_session(Socket socket) {
    try {
      std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      co_await send(socket, std::move(reply));
      co_await sleep_for(100ms);
    } catch (const std::exception&) {
      // The client went away.
    }
  }

  // False: close the connection. (Every co_await argument is a plain local: GCC 12 mishandles temporaries
  // of conditional expressions inside co_await.)
  template <class Socket>
  asio::awaitable<bool> respond(Socket& socket, const ServerRequest& request) {
    const std::string& target = request.target;
    std::string reply;
    if (target == "/echo") {
      const std::string body = request.body.empty() ? std::string("hello") : request.body;
      const std::string headers = "X-Method: " + request.method +
                                  "\r\nX-Echo-Test: " + header_or(request, "X-Test", "<none>") +
                                  "\r\nX-Content-Type: " + header_or(request, "Content-Type", "<none>") +
                                  "\r\nX-Expect: " + header_or(request, "Expect", "<none>") + "\r\n";
      reply = http_response(200, body, headers);
    } else if (target.starts_with("/status/")) {
      const int status = std::stoi(target.substr(8));
      reply = http_response(status, "status " + std::to_string(status));
    } else if (target == "/continue") {
      reply = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n";
      co_await send(socket, std::move(reply));
      reply = http_response(200, "done", "X-Final: yes\r\n");
    } else if (target == "/stream") {
      reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("part-0;");
      co_await send(socket, std::move(reply));
      const auto deadline = Clock::now() + 5s;
      while (!gate_ && Clock::now() < deadline) co_await sleep_for(5ms);
      gate_was_open_ = gate_.load();
      reply = chunk("part-1;");
      co_await send(socket, std::move(reply));
      co_await sleep_for(20ms);
      reply = chunk("part-2;") + "0\r\n\r\n";
    } else if (target == "/hang") {
      co_await sleep_for(1h);
      co_return false;
    } else if (target == "/close") {
      co_return false;
    } else if (target.starts_with("/big/")) {
      reply = http_response(200, std::string(std::stoul(target.substr(5)), 'x'));
    } else if (target.starts_with("/big-chunked/")) {
      std::size_t left = std::stoul(target.substr(13));
      reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      co_await send(socket, std::move(reply));
      while (left > 0) {
        const std::size_t piece = std::min<std::size_t>(left, 1024);
        reply = chunk(std::string(piece, 'x'));
        co_await send(socket, std::move(reply));
        left -= piece;
      }
      reply = "0\r\n\r\n";
    } else if (target == "/slow-body") {
      reply = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
      co_await send(socket, std::move(reply));
      co_await sleep_for(1h);
      co_return false;
    } else if (target.starts_with("/delay/")) {
      co_await sleep_for(std::chrono::milliseconds(std::stoi(target.substr(7))));
      reply = http_response(200, "late");
    } else {
      reply = http_response(404, "no such path");
    }
    co_await send(socket, std::move(reply));
    co_return true;
  }

  Mode mode_ = Mode::kHttp;
  asio::io_context io_;
  std::optional<asio::ip::tcp::acceptor> tcp_;
  std::optional<asio::local::stream_protocol::acceptor> local_;
  unsigned short port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<bool> gate_{false};
  std::atomic<bool> gate_was_open_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------------------
// Client-side helpers

http::Request make_request(std::string url, std::string method = "GET", std::string body = {}) {
  http::Request request;
  request.method = std::move(method);
  request.url = std::move(url);
  request.body = std::move(body);
  request.timeouts.connect = 5s;
  request.timeouts.first_byte = 10s;
  request.timeouts.total = 20s;
  return request;
}

// Runs `io` until `done()` holds or `limit` passes; returns done().
bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds limit = 20s) {
  const auto deadline = Clock::now() + limit;
  while (!done() && Clock::now() < deadline) {
    io.restart();
    io.run_for(10ms);
  }
  return done();
}

// Runs `io` for `duration` regardless of outstanding work.
void run_for(asio::io_context& io, std::chrono::milliseconds duration) {
  const auto deadline = Clock::now() + duration;
  while (Clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
}

struct Outcome {
  int calls = 0;
  http::Response response;
};

// on_done that records into `outcome` (which must outlive the request).
http::Client::DoneHandler record(Outcome& outcome) {
  return [&outcome](http::Response&& response) {
    ++outcome.calls;
    outcome.response = std::move(response);
  };
}

// One request from start to finish on a fresh io_context and client.
Outcome fetch(http::Request request, http::ClientOptions options = {}) {
  asio::io_context io;
  http::Client client(io, std::move(options));
  Outcome outcome;
  client.start(std::move(request), {}, record(outcome));
  EXPECT_TRUE(run_until(io, [&] { return outcome.calls > 0; }));
  return outcome;
}

// A port on 127.0.0.1 where nothing listens.
unsigned short closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

std::string temp_socket_path() {
  std::string dir_template = (std::filesystem::temp_directory_path() / "kafka-llm-http-XXXXXX").string();
  const char* dir = ::mkdtemp(dir_template.data());
  EXPECT_NE(dir, nullptr);
  return std::string(dir) + "/server.sock";
}

// ---------------------------------------------------------------------------------------------------------
// Round trips

TEST(HttpClient, GetPostAndPutRoundTrip) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});

  Outcome get;
  Outcome post;
  Outcome put;
  auto get_request = make_request(server.url("/echo"));
  get_request.headers = {{"X-Test", "abc"}};
  client.start(std::move(get_request), {}, record(get));
  auto post_request = make_request(server.url("/echo"), "POST", R"({"model":"m"})");
  post_request.headers = {{"Content-Type", "application/json"}, {"X-Test", "def"}};
  client.start(std::move(post_request), {}, record(post));
  client.start(make_request(server.url("/echo"), "PUT", "put-body"), {}, record(put));
  EXPECT_EQ(client.in_flight(), 3U);

  // With nothing in flight the client leaves no work behind: io_context::run() returns by itself.
  const auto started = Clock::now();
  io.run_for(20s);
  EXPECT_LT(Clock::now() - started, 10s);
  EXPECT_EQ(client.in_flight(), 0U);

  ASSERT_EQ(get.calls, 1);
  EXPECT_EQ(get.response.error, TransportError::kNone) << get.response.error_message;
  EXPECT_EQ(get.response.status, 200);
  EXPECT_EQ(get.response.body, "hello");
  EXPECT_EQ(get.response.http_version, 1);
  ASSERT_NE(kafka_llm::find_header(get.response.headers, "x-method"), nullptr);
  EXPECT_EQ(*kafka_llm::find_header(get.response.headers, "X-Method"), "GET");
  EXPECT_EQ(*kafka_llm::find_header(get.response.headers, "X-Echo-Test"), "abc");
  EXPECT_EQ(*kafka_llm::find_header(get.response.headers, "X-Content-Type"), "<none>");
  EXPECT_GT(get.response.time_to_first_byte.count(), 0);
  EXPECT_GE(get.response.total_time, get.response.time_to_first_byte);

  ASSERT_EQ(post.calls, 1);
  EXPECT_EQ(post.response.error, TransportError::kNone) << post.response.error_message;
  EXPECT_EQ(post.response.status, 200);
  EXPECT_EQ(post.response.body, R"({"model":"m"})");
  EXPECT_EQ(*kafka_llm::find_header(post.response.headers, "X-Method"), "POST");
  EXPECT_EQ(*kafka_llm::find_header(post.response.headers, "X-Echo-Test"), "def");
  EXPECT_EQ(*kafka_llm::find_header(post.response.headers, "X-Content-Type"), "application/json");
  EXPECT_EQ(*kafka_llm::find_header(post.response.headers, "X-Expect"), "<none>");

  ASSERT_EQ(put.calls, 1);
  EXPECT_EQ(put.response.status, 200);
  EXPECT_EQ(put.response.body, "put-body");
  EXPECT_EQ(*kafka_llm::find_header(put.response.headers, "X-Method"), "PUT");
  // Without a Content-Type from the caller, none is sent (not curl's form type).
  EXPECT_EQ(*kafka_llm::find_header(put.response.headers, "X-Content-Type"), "<none>");
}

TEST(HttpClient, HttpErrorStatusIsAResponseNotATransportError) {
  TestServer server;
  const Outcome outcome = fetch(make_request(server.url("/status/503")));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kNone);
  EXPECT_EQ(outcome.response.status, 503);
  EXPECT_EQ(outcome.response.body, "status 503");
}

TEST(HttpClient, KeepsOnlyTheHeadersOfTheFinalResponse) {
  TestServer server;
  const Outcome outcome = fetch(make_request(server.url("/continue")));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.status, 200);
  EXPECT_EQ(outcome.response.body, "done");
  EXPECT_NE(kafka_llm::find_header(outcome.response.headers, "X-Final"), nullptr);
  EXPECT_EQ(kafka_llm::find_header(outcome.response.headers, "X-Interim"), nullptr);
}

TEST(HttpClient, ThousandConcurrentRequestsCompleteExactlyOnce) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  constexpr int kRequests = 1000;
  std::map<http::Client::RequestId, int> calls;
  std::map<http::Client::RequestId, std::string> expected_body;
  int done = 0;
  int ok = 0;
  for (int i = 0; i < kRequests; ++i) {
    std::string body = "request-" + std::to_string(i);
    auto id_holder = std::make_shared<http::Client::RequestId>(0);
    const auto id = client.start(make_request(server.url("/echo"), "POST", body), {},
                                 [&, id_holder](http::Response&& response) {
                                   ++done;
                                   ++calls[*id_holder];
                                   if (response.error == TransportError::kNone && response.status == 200 &&
                                       response.body == expected_body[*id_holder]) {
                                     ++ok;
                                   }
                                 });
    *id_holder = id;
    expected_body[id] = std::move(body);
  }
  EXPECT_EQ(expected_body.size(), static_cast<std::size_t>(kRequests)) << "request ids must be unique";
  EXPECT_EQ(client.in_flight(), static_cast<std::size_t>(kRequests));
  ASSERT_TRUE(run_until(
      io, [&] { return done == kRequests; }, 60s))
      << done << " of " << kRequests;
  run_for(io, 50ms);  // nothing more may arrive
  EXPECT_EQ(done, kRequests);
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(calls.size(), static_cast<std::size_t>(kRequests));
  for (const auto& [id, count] : calls) EXPECT_EQ(count, 1) << "request " << id;
  EXPECT_EQ(client.in_flight(), 0U);
}

TEST(HttpClient, SocketChurnKeepsEveryOutcomeWithItsRequest) {
  // Half the requests make the server drop the connection, so curl keeps closing sockets and the kernel
  // keeps handing out the same fd numbers again: waits left over from a closed socket must not reach the
  // new one.
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  constexpr int kRequests = 600;
  int done = 0;
  int as_expected = 0;
  std::string first_unexpected;
  for (int i = 0; i < kRequests; ++i) {
    const bool drop = i % 2 == 0;
    client.start(make_request(server.url(drop ? "/close" : "/echo"), "POST", "r" + std::to_string(i)), {},
                 [&, drop, i](http::Response&& response) {
                   ++done;
                   const bool expected = drop ? response.error == TransportError::kRecv
                                              : response.error == TransportError::kNone &&
                                                    response.status == 200 &&
                                                    response.body == "r" + std::to_string(i);
                   if (expected) {
                     ++as_expected;
                   } else if (first_unexpected.empty()) {
                     first_unexpected = "request " + std::to_string(i) + ": " +
                                        std::string(http::to_string(response.error)) + " " +
                                        std::to_string(response.status) + " " + response.error_message;
                   }
                 });
  }
  ASSERT_TRUE(run_until(
      io, [&] { return done == kRequests; }, 60s))
      << done << " of " << kRequests;
  run_for(io, 50ms);
  EXPECT_EQ(done, kRequests);
  EXPECT_EQ(as_expected, kRequests) << first_unexpected;
  EXPECT_GT(server.connections(), kRequests / 2);
}

TEST(HttpClient, ReusesConnectionsForSequentialRequests) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  constexpr int kRequests = 100;
  int done = 0;
  int ok = 0;
  std::function<void()> next = [&] {
    client.start(make_request(server.url("/echo")), {}, [&](http::Response&& response) {
      ++done;
      if (response.status == 200) ++ok;
      if (done < kRequests) next();
    });
  };
  next();
  ASSERT_TRUE(run_until(io, [&] { return done == kRequests; }));
  EXPECT_EQ(ok, kRequests);
  EXPECT_LE(server.connections(), 2);
}

TEST(HttpClient, ShardsSpreadConcurrentRequestsAndCancelFindsTheirShard) {
  // 4 requests per shard, 8 shards: 40 held requests fill every shard (the last 8 go to the least
  // loaded ones); each shard opens its own connections.
  TestServer server;
  asio::io_context io;
  http::ClientOptions options;
  options.shards = 8;
  options.requests_per_shard = 4;
  http::Client client(io, options);
  constexpr int kRequests = 40;
  std::vector<http::Client::RequestId> ids;
  std::vector<Outcome> outcomes(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    ids.push_back(client.start(make_request(server.url("/delay/5000")), {}, record(outcomes[i])));
  }
  EXPECT_EQ(client.in_flight(), static_cast<std::size_t>(kRequests));
  ASSERT_TRUE(run_until(io, [&] { return server.connections() == kRequests; }))
      << server.connections() << " connections";
  // Cancelling every other request reaches the shard that runs it, wherever that is.
  for (int i = 0; i < kRequests; i += 2) client.cancel(ids[i]);
  ASSERT_TRUE(run_until(io, [&] { return client.in_flight() == kRequests / 2; })) << client.in_flight();
  for (int i = 1; i < kRequests; i += 2) client.cancel(ids[i]);
  ASSERT_TRUE(run_until(io, [&] { return client.in_flight() == 0; }));
  run_for(io, 50ms);
  for (const Outcome& outcome : outcomes) {
    EXPECT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.response.error, TransportError::kCancelled);
  }
  // Then light traffic stays on the first shard and reuses one of its connections.
  const int before = server.connections();
  int done = 0;
  std::function<void()> next = [&] {
    client.start(make_request(server.url("/echo")), {}, [&](http::Response&& response) {
      EXPECT_EQ(response.status, 200);
      if (++done < 20) next();
    });
  };
  next();
  ASSERT_TRUE(run_until(io, [&] { return done == 20; }));
  EXPECT_LE(server.connections() - before, 1);
}

TEST(HttpClient, ConnectionLimitsKeepOneShard) {
  TestServer server;
  asio::io_context io;
  http::ClientOptions options;
  options.max_connections_per_host = 2;
  options.requests_per_shard = 1;
  http::Client client(io, options);
  std::vector<Outcome> outcomes(6);
  for (auto& outcome : outcomes) client.start(make_request(server.url("/delay/100")), {}, record(outcome));
  ASSERT_TRUE(run_until(io, [&] { return client.in_flight() == 0; }));
  for (const Outcome& outcome : outcomes) EXPECT_EQ(outcome.response.status, 200);
  EXPECT_LE(server.connections(), 2);
}

TEST(HttpClient, UnixDomainSocket) {
  const std::string path = temp_socket_path();
  {
    TestServer server(path);
    auto request = make_request("http://localhost/echo", "POST", "over a unix socket");
    request.unix_socket_path = path;
    const Outcome outcome = fetch(std::move(request));
    ASSERT_EQ(outcome.calls, 1);
    EXPECT_EQ(outcome.response.error, TransportError::kNone) << outcome.response.error_message;
    EXPECT_EQ(outcome.response.status, 200);
    EXPECT_EQ(outcome.response.body, "over a unix socket");
  }
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(HttpClient, ResolvesHostNamesThroughTheSystemResolver) {
  // The machine's own name, when /etc/hosts maps it to loopback, goes through curl's resolver (a thread
  // and a socket pair watched like any other socket) without leaving the machine.
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  asio::io_context resolver_io;
  asio::ip::tcp::resolver resolver(resolver_io);
  boost::system::error_code ec;
  const auto results = resolver.resolve(asio::ip::tcp::v4(), name, "80", ec);
  if (ec || results.empty() || results.begin()->endpoint().address() != asio::ip::make_address("127.0.0.1")) {
    GTEST_SKIP() << "host name '" << name << "' does not resolve to 127.0.0.1 here";
  }
  TestServer server;
  const std::string url = server.url("/echo");
  const Outcome outcome = fetch(make_request("http://" + std::string(name) + url.substr(url.find(':', 7))));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kNone) << outcome.response.error_message;
  EXPECT_EQ(outcome.response.status, 200);
}

TEST(HttpClient, RecycledHandlesSendEachRequestsOwnHeaders) {
  TestServer server;
  asio::io_context io;
  http::ClientOptions options;
  options.max_idle_handles = 1;
  http::Client client(io, options);
  // Sequential requests reuse one easy handle and its header list while the headers stay the same.
  const std::vector<std::optional<std::string>> values = {"one", "one", "two", std::nullopt, "three"};
  std::vector<std::string> seen;
  std::function<void()> next = [&] {
    auto request = make_request(server.url("/echo"));
    if (const auto& value = values[seen.size()]) request.headers = {{"X-Test", *value}};
    client.start(std::move(request), {}, [&](http::Response&& response) {
      const std::string* echoed = kafka_llm::find_header(response.headers, "X-Echo-Test");
      seen.push_back(echoed != nullptr ? *echoed : "<missing>");
      if (seen.size() < values.size()) next();
    });
  };
  next();
  ASSERT_TRUE(run_until(io, [&] { return seen.size() == values.size(); }));
  EXPECT_EQ(seen, (std::vector<std::string>{"one", "one", "two", "<none>", "three"}));

  // Bursts beyond max_idle_handles free the extra handles and later reuse their slots.
  int done = 0;
  int ok = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) {
      client.start(make_request(server.url("/echo")), {}, [&](http::Response&& response) {
        ++done;
        if (response.status == 200) ++ok;
      });
    }
    ASSERT_TRUE(run_until(io, [&] { return done == 50 * (round + 1); }));
  }
  EXPECT_EQ(ok, 150);
}

// ---------------------------------------------------------------------------------------------------------
// Streaming

TEST(HttpClientStreaming, DeliversBodyPiecesBeforeTheServerFinishes) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  std::vector<std::string> pieces;
  Outcome outcome;
  client.start(
      make_request(server.url("/stream")),
      [&](std::string_view data) {
        pieces.emplace_back(data);
        // The server holds back the rest of the stream until the client has seen the first part.
        if (data.find("part-0") != std::string_view::npos) server.open_gate();
      },
      record(outcome));
  ASSERT_TRUE(run_until(io, [&] { return outcome.calls > 0; }));
  EXPECT_EQ(outcome.response.error, TransportError::kNone) << outcome.response.error_message;
  EXPECT_EQ(outcome.response.status, 200);
  EXPECT_TRUE(server.gate_was_open()) << "the first part did not reach on_data while the server waited";
  EXPECT_GE(pieces.size(), 2U);
  std::string joined;
  for (const auto& piece : pieces) joined += piece;
  EXPECT_EQ(joined, "part-0;part-1;part-2;");
  EXPECT_TRUE(outcome.response.body.empty());
}

// ---------------------------------------------------------------------------------------------------------
// Timeouts

TEST(HttpClientTimeouts, FirstByteTimeoutWhenTheServerNeverAnswers) {
  TestServer server;
  auto request = make_request(server.url("/hang"));
  request.timeouts.first_byte = 200ms;
  const auto started = Clock::now();
  const Outcome outcome = fetch(std::move(request));
  const auto elapsed = Clock::now() - started;
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kTimeoutFirstByte) << outcome.response.error_message;
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(outcome.response.time_to_first_byte.count(), 0);
}

TEST(HttpClientTimeouts, TotalTimeoutWhenTheBodyStalls) {
  TestServer server;
  auto request = make_request(server.url("/slow-body"));
  request.timeouts.total = 300ms;
  const auto started = Clock::now();
  const Outcome outcome = fetch(std::move(request));
  const auto elapsed = Clock::now() - started;
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kTimeoutTotal) << outcome.response.error_message;
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_GT(outcome.response.time_to_first_byte.count(), 0);
  EXPECT_EQ(outcome.response.status, 200);  // what arrived before the failure
}

TEST(HttpClientTimeouts, ConnectTimeoutWhenTheListenQueueIsFull) {
  // A listener with backlog 0 that never accepts: once its queue holds a connection, Linux drops further
  // SYNs, so a connect hangs until its timeout.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {
    const int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    // Non-blocking: EINPROGRESS, or a drop once the queue is full; either way the queue fills up.
    (void)::connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof address);
    fillers.push_back(filler);
  }
  std::this_thread::sleep_for(50ms);

  auto request = make_request("http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/");
  request.timeouts.connect = 300ms;
  const Outcome outcome = fetch(std::move(request));
  for (const int filler : fillers) ::close(filler);
  ::close(listener);
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kTimeoutConnect) << outcome.response.error_message;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

TEST(HttpClientErrors, ConnectionRefused) {
  const Outcome outcome = fetch(make_request("http://127.0.0.1:" + std::to_string(closed_port()) + "/"));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kConnect) << outcome.response.error_message;
  EXPECT_FALSE(outcome.response.error_message.empty());
  EXPECT_EQ(outcome.response.status, 0);
}

TEST(HttpClientErrors, MissingUnixSocketIsAConnectError) {
  auto request = make_request("http://localhost/echo");
  request.unix_socket_path = "/nonexistent/kafka-llm-test.sock";
  const Outcome outcome = fetch(std::move(request));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kConnect) << outcome.response.error_message;
}

TEST(HttpClientErrors, ServerClosingWithoutResponseIsARecvError) {
  TestServer server;
  const Outcome outcome = fetch(make_request(server.url("/close")));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kRecv) << outcome.response.error_message;
}

TEST(HttpClientErrors, TlsHandshakeWithAPlainHttpServerIsATlsError) {
  TestServer server(TestServer::Mode::kGarbage);
  std::string url = server.url("/");
  url.replace(0, 4, "https");
  const Outcome outcome = fetch(make_request(url));
  ASSERT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.response.error, TransportError::kTls) << outcome.response.error_message;
}

TEST(HttpClientErrors, MaxResponseBytes) {
  TestServer server;
  http::ClientOptions options;
  options.max_response_bytes = 1000;
  const Outcome small = fetch(make_request(server.url("/big/500")), options);
  EXPECT_EQ(small.response.error, TransportError::kNone) << small.response.error_message;
  EXPECT_EQ(small.response.body.size(), 500U);

  const Outcome announced = fetch(make_request(server.url("/big/5000")), options);
  ASSERT_EQ(announced.calls, 1);
  EXPECT_EQ(announced.response.error, TransportError::kOther);
  EXPECT_NE(announced.response.error_message.find("max_response_bytes"), std::string::npos)
      << announced.response.error_message;

  const Outcome chunked = fetch(make_request(server.url("/big-chunked/5000")), options);
  ASSERT_EQ(chunked.calls, 1);
  EXPECT_EQ(chunked.response.error, TransportError::kOther);
  EXPECT_NE(chunked.response.error_message.find("max_response_bytes"), std::string::npos)
      << chunked.response.error_message;
  EXPECT_LE(chunked.response.body.size(), 1000U);
}

TEST(HttpClientErrors, BadRequestsFailThroughOnDoneNotInsideStart) {
  asio::io_context io;
  http::Client client(io, {});
  bool start_returned = false;
  int calls = 0;
  const auto expect_other = [&](http::Response&& response) {
    EXPECT_TRUE(start_returned) << "on_done ran inside start()";
    EXPECT_EQ(response.error, TransportError::kOther) << response.error_message;
    ++calls;
  };
  client.start(make_request("file:///etc/passwd"), {}, expect_other);
  auto injected = make_request("http://127.0.0.1:1/");
  injected.headers = {{"X-Test", "a\r\nX-Injected: yes"}};
  client.start(std::move(injected), {}, expect_other);
  start_returned = true;
  ASSERT_TRUE(run_until(io, [&] { return calls == 2; }));
}

TEST(HttpClientErrors, ThrowingCallbacks) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  // An exception from on_data fails its own request.
  Outcome streamed;
  client.start(
      make_request(server.url("/big-chunked/5000")),
      [](std::string_view) { throw std::runtime_error("boom"); }, record(streamed));
  ASSERT_TRUE(run_until(io, [&] { return streamed.calls > 0; }));
  EXPECT_EQ(streamed.response.error, TransportError::kOther);
  EXPECT_NE(streamed.response.error_message.find("boom"), std::string::npos)
      << streamed.response.error_message;

  // An exception from on_done leaves io_context::run(); the client keeps working afterwards.
  client.start(make_request(server.url("/echo")), {},
               [](http::Response&&) { throw std::runtime_error("done"); });
  bool thrown = false;
  const auto deadline = Clock::now() + 10s;
  while (!thrown && Clock::now() < deadline) {
    try {
      io.restart();
      io.run_for(10ms);
    } catch (const std::runtime_error& e) {
      thrown = std::string(e.what()) == "done";
    }
  }
  EXPECT_TRUE(thrown);
  Outcome after;
  client.start(make_request(server.url("/echo")), {}, record(after));
  ASSERT_TRUE(run_until(io, [&] { return after.calls > 0; }));
  EXPECT_EQ(after.response.status, 200);
}

TEST(HttpClientErrors, ClassifiesCurlCodes) {
  EXPECT_EQ(http::classify_curl_error(CURLE_OK, false), TransportError::kNone);
  EXPECT_EQ(http::classify_curl_error(CURLE_COULDNT_CONNECT, false), TransportError::kConnect);
  EXPECT_EQ(http::classify_curl_error(CURLE_COULDNT_RESOLVE_HOST, false), TransportError::kDns);
  EXPECT_EQ(http::classify_curl_error(CURLE_OPERATION_TIMEDOUT, false), TransportError::kTimeoutConnect);
  EXPECT_EQ(http::classify_curl_error(CURLE_OPERATION_TIMEDOUT, true), TransportError::kTimeoutTotal);
  EXPECT_EQ(http::classify_curl_error(CURLE_SSL_CONNECT_ERROR, false), TransportError::kTls);
  EXPECT_EQ(http::classify_curl_error(CURLE_PEER_FAILED_VERIFICATION, false), TransportError::kTls);
  EXPECT_EQ(http::classify_curl_error(CURLE_RECV_ERROR, true), TransportError::kRecv);
  EXPECT_EQ(http::classify_curl_error(CURLE_GOT_NOTHING, true), TransportError::kRecv);
  EXPECT_EQ(http::classify_curl_error(CURLE_PARTIAL_FILE, true), TransportError::kRecv);
  EXPECT_EQ(http::classify_curl_error(CURLE_HTTP2_STREAM, true), TransportError::kRecv);
  EXPECT_EQ(http::classify_curl_error(CURLE_SEND_ERROR, true), TransportError::kSend);
  EXPECT_EQ(http::classify_curl_error(CURLE_UNSUPPORTED_PROTOCOL, false), TransportError::kOther);
  EXPECT_EQ(http::to_string(TransportError::kTimeoutFirstByte), "timeout_first_byte");
  EXPECT_EQ(http::to_string(TransportError::kCancelled), "cancelled");
}

// ---------------------------------------------------------------------------------------------------------
// Cancellation

TEST(HttpClientCancel, CancelledRequestsCompleteOnceWithCancelled) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  Outcome in_flight;
  Outcome not_yet_running;
  bool in_cancel = false;
  const auto id = client.start(make_request(server.url("/delay/5000")), {}, record(in_flight));
  const auto early_id =
      client.start(make_request(server.url("/delay/5000")), {}, [&](http::Response&& response) {
        EXPECT_FALSE(in_cancel) << "on_done ran inside cancel()";
        ++not_yet_running.calls;
        not_yet_running.response = std::move(response);
      });
  in_cancel = true;
  client.cancel(early_id);
  in_cancel = false;

  asio::steady_timer timer(io, 100ms);
  timer.async_wait([&](const boost::system::error_code&) {
    EXPECT_EQ(client.in_flight(), 1U);
    client.cancel(id);
    client.cancel(id);  // twice: still one outcome
  });
  ASSERT_TRUE(run_until(io, [&] { return in_flight.calls > 0 && not_yet_running.calls > 0; }));
  client.cancel(id);  // after the outcome: a no-op
  run_for(io, 100ms);
  EXPECT_EQ(in_flight.calls, 1);
  EXPECT_EQ(in_flight.response.error, TransportError::kCancelled);
  EXPECT_EQ(not_yet_running.calls, 1);
  EXPECT_EQ(not_yet_running.response.error, TransportError::kCancelled);
  EXPECT_EQ(client.in_flight(), 0U);
  client.cancel(12345);  // unknown ids are ignored
}

TEST(HttpClientCancel, StartAndCancelFromInsideOnData) {
  TestServer server;
  asio::io_context io;
  http::Client client(io, {});
  Outcome streamed;
  Outcome started_inside;
  http::Client::RequestId stream_id = 0;
  int pieces = 0;
  stream_id = client.start(
      make_request(server.url("/stream")),
      [&](std::string_view) {
        if (++pieces == 1) {
          client.start(make_request(server.url("/echo")), {}, record(started_inside));
          client.cancel(stream_id);
        }
      },
      record(streamed));
  ASSERT_TRUE(run_until(io, [&] { return streamed.calls > 0 && started_inside.calls > 0; }));
  run_for(io, 50ms);
  EXPECT_EQ(streamed.calls, 1);
  EXPECT_EQ(streamed.response.error, TransportError::kCancelled) << streamed.response.error_message;
  EXPECT_EQ(pieces, 1);
  EXPECT_EQ(started_inside.calls, 1);
  EXPECT_EQ(started_inside.response.status, 200);
}

// ---------------------------------------------------------------------------------------------------------
// Lifetime

TEST(HttpClientLifetime, DestroyingTheClientWithRequestsInFlightCallsNoHandler) {
  TestServer server;
  asio::io_context io;
  auto client = std::make_unique<http::Client>(io, http::ClientOptions{});
  const auto sentinel = std::make_shared<int>(0);
  int calls = 0;
  for (int i = 0; i < 20; ++i) {
    client->start(
        make_request(server.url("/hang")), [sentinel](std::string_view) {},
        [sentinel, &calls](http::Response&&) { ++calls; });
    client->start(make_request(server.url("/delay/200")), {},
                  [sentinel, &calls](http::Response&&) { ++calls; });
  }
  run_for(io, 100ms);
  EXPECT_EQ(client->in_flight(), 40U);
  client.reset();
  EXPECT_EQ(sentinel.use_count(), 1) << "the callbacks of cancelled requests must be destroyed";
  run_for(io, 400ms);
  EXPECT_EQ(calls, 0);
}

TEST(HttpClientLifetime, DestroyingTheClientFromOnDone) {
  TestServer server;
  asio::io_context io;
  auto client = std::make_unique<http::Client>(io, http::ClientOptions{});
  int calls = 0;
  for (int i = 0; i < 10; ++i) {
    client->start(make_request(server.url("/hang")), {}, [&calls](http::Response&&) { ++calls; });
  }
  // Several quick ones finish in the same round; the first on_done destroys the client.
  for (int i = 0; i < 5; ++i) {
    client->start(make_request(server.url("/echo")), {}, [&](http::Response&&) {
      ++calls;
      client.reset();
    });
  }
  ASSERT_TRUE(run_until(io, [&] { return client == nullptr; }));
  run_for(io, 200ms);
  EXPECT_EQ(calls, 1);
}

TEST(HttpClientLifetime, DestroyingTheClientFromOnData) {
  TestServer server;
  asio::io_context io;
  auto client = std::make_unique<http::Client>(io, http::ClientOptions{});
  int calls = 0;
  for (int i = 0; i < 5; ++i) {
    client->start(make_request(server.url("/hang")), {}, [&calls](http::Response&&) { ++calls; });
  }
  client->start(
      make_request(server.url("/stream")), [&](std::string_view) { client.reset(); },
      [&calls](http::Response&&) { ++calls; });
  ASSERT_TRUE(run_until(io, [&] { return client == nullptr; }));
  server.open_gate();
  run_for(io, 200ms);
  EXPECT_EQ(calls, 0);
}

}  // namespace
