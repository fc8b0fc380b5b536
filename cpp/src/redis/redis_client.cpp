#include "kafka_llm/redis/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <charconv>
#include <deque>
#include <utility>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/redis/handles.hpp"

namespace kafka_llm::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

RedisReply RedisReply::error(std::string message, ErrorSource source) {
  RedisReply reply;
  reply.type = Type::kError;
  reply.transport_error = source == ErrorSource::kTransport;
  reply.str = std::move(message);
  return reply;
}

namespace {

int parse_int(std::string_view text, const std::string& key, const char* what) {
  int value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    throw ConfigError(key, std::string(what) + " must be a number, got \"" + std::string(text) + "\"");
  }
  return value;
}

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

void append_decimal(std::string& out, std::size_t value) {
  std::array<char, 24> digits{};
  const auto result = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  out.append(digits.data(), static_cast<std::size_t>(result.ptr - digits.data()));
}

// RESP, as hiredis would format it, without its printf-style formatting.
void append_count(std::string& out, std::size_t count) {
  out.push_back('*');
  append_decimal(out, count);
  out.append("\r\n");
}

void append_bulk(std::string& out, std::string_view arg) {
  out.push_back('$');
  append_decimal(out, arg.size());
  out.append("\r\n");
  out.append(arg);
  out.append("\r\n");
}

std::size_t formatted_size(const std::vector<std::string_view>& args) {
  std::size_t size = 16;
  for (auto a : args) size += a.size() + 16;
  return size;
}

// A command whose reply is awaited: the caller's callback and, for EVALSHA, what it takes to send
// the command again as EVAL.
struct Pending {
  RedisCallback callback;
  const RedisScript* script = nullptr;  // set while an EVALSHA may still need its EVAL
  std::string command;                  // the EVALSHA as sent
  std::size_t args_at = 0;              // where the script's arguments start in `command`
  std::size_t count = 0;                // RESP array length of the command
};

bool is_noscript(const redisReply* reply) {
  return reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("NOSCRIPT");
}

}  // namespace

RedisScript::RedisScript(std::string source) : source_(std::move(source)) {
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  sha1_.reserve(digest.size() * 2);
  for (unsigned char byte : digest) {
    sha1_.push_back(kHex[byte >> 4U]);
    sha1_.push_back(kHex[byte & 15U]);
  }
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = hex_digit(text[i + 1]);
      const int low = hex_digit(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>((high << 4) | low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}
}  // namespace

std::string percent_encode_userinfo(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4U]);
      out.push_back(kHex[byte & 15U]);
    }
  }
  return out;
}

RedisOptions parse_redis_url(std::string_view url, const std::string& key) {
  RedisOptions options;
  auto take_query_db = [&](std::string_view& rest) {
    if (auto q = rest.find("?db="); q != std::string_view::npos) {
      options.db = parse_int(rest.substr(q + 4), key, "db");
      rest = rest.substr(0, q);
    }
  };
  if (url.starts_with("unix://")) {
    std::string_view rest = url.substr(7);
    take_query_db(rest);
    if (rest.empty()) throw ConfigError(key, "unix:// URL needs a socket path");
    options.unix_socket = std::string(rest);
    return options;
  }
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("rediss://")) {
    throw ConfigError(key, "TLS (rediss://) is not supported by this build's hiredis; use a TLS proxy");
  } else {
    throw ConfigError(key, "must start with redis:// or unix://");
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      options.username = percent_decode(userinfo.substr(0, colon));
      options.password = percent_decode(userinfo.substr(colon + 1));
    } else {
      options.password = percent_decode(userinfo);
    }
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) options.db = parse_int(db, key, "database number");
  }
  if (auto colon = rest.rfind(':');
      colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    options.port = parse_int(rest.substr(colon + 1), key, "port");
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) options.host = std::string(rest);
  if (options.port <= 0 || options.port > 65535) throw ConfigError(key, "port out of range");
  return options;
}

struct RedisClient::Connection : std::enable_shared_from_this<Connection> {
  Connection(RedisClient* client, asio::io_context& io) : owner(client), socket(io), connect_timer(io) {}

  RedisClient* owner;
  asio::posix::stream_descriptor socket;
  asio::steady_timer connect_timer;
  bool want_read = false;
  bool want_write = false;
  bool read_armed = false;
  bool write_armed = false;
  bool ready = false;
  bool connected = false;
  // Replies awaited. A command counts against the command timeout only once it was written to the
  // socket: commands waiting in hiredis' buffer for a busy loop to write them are not the server's
  // delay.
  struct Written {
    std::size_t commands = 0;
    Clock::time_point at;
  };
  std::size_t outstanding = 0;  // commands queued and not yet answered
  std::size_t unwritten = 0;    // of those, queued since hiredis' buffer was last written out
  std::deque<Written> written;  // the others, by when their batch was written, oldest first
  Clock::time_point last_reply{};
  // Last, so that it goes first: freeing a live context still runs the hooks above.
  AsyncContextPtr ctx;

  void note_sent() {
    ++outstanding;
    ++unwritten;
  }
  void note_written() {
    if (unwritten == 0) return;
    written.push_back({unwritten, Clock::now()});
    unwritten = 0;
  }
  void note_reply() {
    last_reply = Clock::now();
    if (outstanding > 0) --outstanding;
    if (!written.empty()) {
      if (--written.front().commands == 0) written.pop_front();
    } else if (unwritten > 0) {
      --unwritten;
    }
  }
  // Written commands unanswered for `timeout`, with no reply in that time and none unread in the
  // socket: the server is silent.
  bool stalled(Clock::time_point now, std::chrono::milliseconds timeout) const {
    if (written.empty()) return false;
    return now - std::max(written.front().at, last_reply) > timeout && !readable();
  }
  // Unread reply bytes: a busy event loop, not a silent server.
  bool readable() const {
    if (ctx == nullptr) return false;
    pollfd fd{ctx->c.fd, POLLIN, 0};
    return ::poll(&fd, 1, 0) > 0 && (fd.revents & POLLIN) != 0;
  }

  void arm_read() {
    if (read_armed || !want_read || ctx == nullptr) return;
    read_armed = true;
    socket.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](auto ec) {
      self->read_armed = false;
      if (ec || self->ctx == nullptr || !self->want_read) return;
      redisAsyncHandleRead(self->ctx.get());
      self->arm_read();
    });
  }

  void arm_write() {
    if (write_armed || !want_write || ctx == nullptr) return;
    write_armed = true;
    socket.async_wait(asio::posix::stream_descriptor::wait_write, [self = shared_from_this()](auto ec) {
      self->write_armed = false;
      if (ec || self->ctx == nullptr || !self->want_write) return;
      redisAsyncHandleWrite(self->ctx.get());
      if (!self->want_write) self->note_written();  // hiredis' buffer is empty
      self->arm_write();
    });
  }

  // hiredis event-loop hooks; `data` is the Connection.
  static void add_read(void* data) {
    auto* c = static_cast<Connection*>(data);
    c->want_read = true;
    c->arm_read();
  }
  static void del_read(void* data) { static_cast<Connection*>(data)->want_read = false; }
  static void add_write(void* data) {
    auto* c = static_cast<Connection*>(data);
    c->want_write = true;
    c->arm_write();
  }
  static void del_write(void* data) { static_cast<Connection*>(data)->want_write = false; }
  static void cleanup(void* data) {
    auto* c = static_cast<Connection*>(data);
    (void)c->ctx.release();  // hiredis is freeing it
    c->want_read = c->want_write = false;
    boost::system::error_code ignored;
    c->socket.cancel(ignored);
    (void)c->socket.release();  // hiredis closes the fd itself
    c->connect_timer.cancel();
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<Connection*>(ac->data);
    c->connect_timer.cancel();
    if (status != REDIS_OK) {
      // hiredis frees the context after this callback.
      c->owner->on_disconnected(std::string("cannot connect to Redis: ") + ac->errstr);
      return;
    }
    c->connected = true;
    c->owner->on_connected(c->shared_from_this());
  }

  static void on_disconnect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<Connection*>(ac->data);
    c->ready = false;
    c->connected = false;
    c->owner->on_disconnected(status == REDIS_OK ? std::string("Redis connection closed")
                                                 : std::string("Redis connection lost: ") + ac->errstr);
  }

  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
    auto* c = static_cast<Connection*>(ac->data);
    c->note_reply();
    if (reply != nullptr && pending->script != nullptr && is_noscript(static_cast<redisReply*>(reply))) {
      // Redis does not know the script (restarted, or SCRIPT FLUSH): the same arguments as EVAL.
      std::string eval;
      eval.reserve(pending->script->source().size() + pending->command.size() - pending->args_at + 32);
      append_count(eval, pending->count);
      append_bulk(eval, "EVAL");
      append_bulk(eval, pending->script->source());
      eval.append(pending->command, pending->args_at);
      pending->script = nullptr;
      pending->command = std::string();
      if (c->ctx != nullptr && redisAsyncFormattedCommand(ac, &Connection::on_reply, pending.get(),
                                                          eval.data(), eval.size()) == REDIS_OK) {
        (void)pending.release();
        c->note_sent();
        return;
      }
    }
    RedisReply out = reply != nullptr ? convert(static_cast<redisReply*>(reply))
                                      : RedisReply::error(c->owner->last_error_.empty()
                                                              ? std::string("Redis connection lost")
                                                              : c->owner->last_error_,
                                                          RedisReply::ErrorSource::kTransport);
    if (pending->callback) pending->callback(std::move(out));
  }

  /// Queues a command (EVALSHA of `script` when set, with `args` after the SHA). Takes `callback`
  /// only when it returns true.
  bool send(const std::vector<std::string_view>& args, RedisCallback& callback,
            const RedisScript* script = nullptr) {
    auto pending = std::make_unique<Pending>();
    std::string command;
    pending->count = args.size() + (script != nullptr ? 2 : 0);
    command.reserve(formatted_size(args) + (script != nullptr ? 64 : 0));
    append_count(command, pending->count);
    if (script != nullptr) {
      append_bulk(command, "EVALSHA");
      append_bulk(command, script->sha1());
      pending->args_at = command.size();
    }
    for (auto a : args) append_bulk(command, a);
    if (redisAsyncFormattedCommand(ctx.get(), &Connection::on_reply, pending.get(), command.data(),
                                   command.size()) != REDIS_OK) {
      return false;
    }
    pending->callback = std::move(callback);
    if (script != nullptr) {
      pending->script = script;
      pending->command = std::move(command);
    }
    (void)pending.release();  // freed in on_reply
    note_sent();
    return true;
  }
};

RedisClient::RedisClient(asio::io_context& io, RedisOptions options)
    : io_(io),
      options_(std::move(options)),
      reconnect_timer_(io),
      watchdog_(io),
      reconnect_delay_(options_.reconnect_min) {}

RedisClient::~RedisClient() {
  stopping_ = true;
  *alive_ = false;
  reconnect_timer_.cancel();
  watchdog_.cancel();
  if (connection_ && connection_->ctx != nullptr) {
    last_error_ = "Redis client closed";
    connection_->ctx.reset();  // fails pending commands through their callbacks
  }
  connection_.reset();
}

void RedisClient::start() {
  if (started_) return;
  started_ = true;
  connect();
  check_timeouts();
}

bool RedisClient::connected() const noexcept {
  return connection_ && connection_->ready;
}

std::size_t RedisClient::pending() const noexcept {
  return connection_ ? connection_->outstanding : 0;
}

void RedisClient::connect() {
  if (stopping_) return;
  AsyncContextPtr context(options_.unix_socket.empty()
                              ? redisAsyncConnect(options_.host.c_str(), options_.port)
                              : redisAsyncConnectUnix(options_.unix_socket.c_str()));
  if (!context) {
    on_disconnected("cannot allocate a Redis context");
    return;
  }
  if (context->err != 0) {
    std::string reason = std::string("cannot connect to Redis: ") + context->errstr;
    context.reset();
    on_disconnected(reason);
    return;
  }
  auto connection = std::make_shared<Connection>(this, io_);
  redisAsyncContext* ac = context.get();
  connection->ctx = std::move(context);
  ac->data = connection.get();
  ac->ev.data = connection.get();
  ac->ev.addRead = &Connection::add_read;
  ac->ev.delRead = &Connection::del_read;
  ac->ev.addWrite = &Connection::add_write;
  ac->ev.delWrite = &Connection::del_write;
  ac->ev.cleanup = &Connection::cleanup;
  connection->socket.assign(ac->c.fd);
  connection_ = connection;
  redisAsyncSetDisconnectCallback(ac, &Connection::on_disconnect);
  redisAsyncSetConnectCallback(ac, &Connection::on_connect);  // arms the first write event
  connection->connect_timer.expires_after(options_.connect_timeout);
  connection->connect_timer.async_wait([this, connection, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || connection->connected || connection->ctx == nullptr) return;
    connection->ctx.reset();
    on_disconnected("connecting to Redis timed out");
  });
}

void RedisClient::on_connected(const std::shared_ptr<Connection>& connection) {
  reconnect_delay_ = options_.reconnect_min;
  std::vector<std::vector<std::string>> setup;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      setup.push_back({"AUTH", options_.password});
    } else {
      setup.push_back({"AUTH", options_.username, options_.password});
    }
  }
  if (options_.db != 0) setup.push_back({"SELECT", std::to_string(options_.db)});
  if (setup.empty()) {
    connection->ready = true;
    last_error_.clear();
    return;
  }
  auto remaining = std::make_shared<std::size_t>(setup.size());
  for (const auto& cmd : setup) {
    std::vector<std::string_view> args(cmd.begin(), cmd.end());
    const bool is_auth = cmd.front() == "AUTH";
    RedisCallback on_reply = [this, connection, remaining, is_auth, alive = alive_](RedisReply&& reply) {
      if (!*alive) return;
      if (!reply.ok()) {
        if (connection->ctx != nullptr && connection->connected) {
          last_error_ = is_auth ? "Redis AUTH failed: " + reply.str : "Redis SELECT failed: " + reply.str;
          drop_reason_ = last_error_;
          // Drop the connection outside hiredis' callback; it reconnects with backoff.
          asio::post(io_, [connection] { connection->ctx.reset(); });
        }
        return;
      }
      if (--*remaining == 0) {
        connection->ready = true;
        last_error_.clear();
      }
    };
    connection->send(args, on_reply);
  }
}

void RedisClient::on_disconnected(const std::string& reason) {
  // A connection dropped on purpose keeps the reason it was dropped for (e.g. a failed AUTH).
  last_error_ = drop_reason_.empty() ? reason : std::exchange(drop_reason_, {});
  if (stopping_) return;
  schedule_reconnect();
}

void RedisClient::schedule_reconnect() {
  reconnect_timer_.expires_after(reconnect_delay_);
  reconnect_delay_ = std::min(reconnect_delay_ * 2, options_.reconnect_max);
  reconnect_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    connect();
  });
}

void RedisClient::check_timeouts() {
  watchdog_.expires_after(std::chrono::milliseconds(100));
  watchdog_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive) return;
    // Only a connection that answers nothing is dropped: a slow loop reading replies late (replies
    // keep arriving, or wait unread in the socket) must not turn into failed commands and resends.
    if (connection_ && connection_->ctx != nullptr && connection_->connected &&
        connection_->stalled(Clock::now(), options_.command_timeout)) {
      last_error_ = "Redis command timed out";
      drop_reason_ = last_error_;
      connection_->ctx.reset();
    }
    check_timeouts();
  });
}

void RedisClient::command(const std::vector<std::string_view>& args, RedisCallback callback) {
  send_or_fail(args, std::move(callback), nullptr);
}

void RedisClient::eval(const RedisScript& script, const std::vector<std::string_view>& args,
                       RedisCallback callback) {
  send_or_fail(args, std::move(callback), &script);
}

void RedisClient::send_or_fail(const std::vector<std::string_view>& args, RedisCallback&& callback,
                               const RedisScript* script) {
  if (!connection_ || !connection_->ready || connection_->ctx == nullptr) {
    std::string reason = last_error_.empty() ? std::string("Redis not connected") : last_error_;
    asio::post(io_, [callback = std::move(callback), reason = std::move(reason)]() mutable {
      callback(RedisReply::error(std::move(reason), RedisReply::ErrorSource::kTransport));
    });
    return;
  }
  if (!connection_->send(args, callback, script)) {
    asio::post(io_, [callback = std::move(callback)]() mutable {
      callback(RedisReply::error("Redis command could not be queued", RedisReply::ErrorSource::kTransport));
    });
  }
}

}  // namespace kafka_llm::redis
