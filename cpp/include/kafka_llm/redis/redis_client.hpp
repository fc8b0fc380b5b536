#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kafka_llm::redis {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_socket;  ///< when set, connect over this socket instead of host:port
  std::string username;     ///< ACL user (Redis 6+); empty: AUTH with the password only
  std::string password;     ///< never logged or put into error messages
  int db = 0;
  std::chrono::milliseconds connect_timeout{2000};
  /// Redis answering nothing for this long while commands wait for replies drops the connection
  /// (their callbacks get an error). Replies that arrive but are read late by a busy event loop do
  /// not count: only a connection with no reply and no unread bytes for this long is dropped.
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
};

/// Parses `redis://[[user]:password@]host[:port][/db]` or `unix:///path[?db=N]`. Throws
/// ConfigError naming `key` (e.g. "redis.url") with the reason; the password is never echoed.
/// The user and password are percent-decoded (as redis-py and other clients do; a `%` not followed
/// by two hex digits stays as it is).
RedisOptions parse_redis_url(std::string_view url, const std::string& key = "redis.url");

/// `text` percent-encoded for the user or password part of a URL (everything but RFC 3986's
/// unreserved characters), so that `parse_redis_url` gives it back unchanged.
std::string percent_encode_userinfo(std::string_view text);

/// One reply. Transport failures (not connected, timeout, connection lost) are kError replies
/// with `transport_error` set; Redis errors (`-ERR …`) are kError replies without it.
struct RedisReply {
  enum class Type : std::uint8_t { kError, kNil, kString, kStatus, kInteger, kArray };
  Type type = Type::kNil;
  bool transport_error = false;
  std::string str;  ///< string, status or error text
  long long integer = 0;
  std::vector<RedisReply> elements;

  /// Who failed: Redis itself (an error reply) or the way to it (kTransport: not connected,
  /// timed out, connection lost).
  enum class ErrorSource : std::uint8_t { kRedis, kTransport };

  bool ok() const noexcept { return type != Type::kError; }
  static RedisReply error(std::string message, ErrorSource source);
};

using RedisCallback = std::function<void(RedisReply&&)>;

/// A Lua script for RedisClient::eval: its text and its SHA-1, by which EVALSHA names it.
class RedisScript {
 public:
  explicit RedisScript(std::string source);
  const std::string& source() const noexcept { return source_; }
  const std::string& sha1() const noexcept { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

/// An asynchronous Redis client on an Asio event loop (hiredis' async API with an Asio adapter).
/// Commands are pipelined on one connection; it reconnects by itself with backoff. All methods
/// and callbacks run on the io_context's thread. Non-copyable, non-movable. Destroying it fails
/// outstanding commands: their callbacks run (with a transport error) inside the destructor.
class RedisClient {
 public:
  RedisClient(boost::asio::io_context& io, RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;
  RedisClient(RedisClient&&) = delete;
  RedisClient& operator=(RedisClient&&) = delete;

  /// Starts connecting (and keeps reconnecting). Call once.
  void start();
  /// Sends a command. When not connected the callback is posted with a transport error.
  void command(const std::vector<std::string_view>& args, RedisCallback callback);
  /// Runs `script` with `args` (numkeys, keys…, argv…): EVALSHA, and EVAL with the same arguments
  /// when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH), so the script text crosses the
  /// wire only then. `script` must outlive the reply.
  void eval(const RedisScript& script, const std::vector<std::string_view>& args, RedisCallback callback);
  /// True once connected and authenticated.
  bool connected() const noexcept;
  /// Commands sent and not yet answered.
  std::size_t pending() const noexcept;
  /// The last connection error, without secrets (empty when connected).
  const std::string& last_error() const noexcept { return last_error_; }

  struct Connection;  // hiredis context + Asio descriptor; public for the C callbacks

 private:
  friend struct Connection;
  void connect();
  void schedule_reconnect();
  void on_connected(const std::shared_ptr<Connection>& connection);
  void on_disconnected(const std::string& reason);
  void check_timeouts();
  void send_or_fail(const std::vector<std::string_view>& args, RedisCallback&& callback,
                    const RedisScript* script);

  boost::asio::io_context& io_;
  RedisOptions options_;
  std::shared_ptr<Connection> connection_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer watchdog_;
  std::chrono::milliseconds reconnect_delay_;
  std::string last_error_ = "not connected yet";
  std::string drop_reason_;  ///< why the client itself is dropping the connection, if it is
  bool stopping_ = false;
  bool started_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace kafka_llm::redis
