#include "kafka_llm/redis/redis_client.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <thread>

#include "kafka_llm/common/errors.hpp"
#include "stack_env.hpp"

extern char** environ;

namespace kafka_llm {
namespace {

using redis::RedisClient;
using redis::RedisReply;

/// Runs the io_context until `done` holds or the timeout passes.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
    io.restart();
  }
  return done();
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// A redis-server child process of this test, stopped by PID.
class OwnRedis {
 public:
  OwnRedis(int port, std::string password) : port_(port), password_(std::move(password)) { start(); }
  ~OwnRedis() { stop(); }
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;
  OwnRedis(OwnRedis&&) = delete;
  OwnRedis& operator=(OwnRedis&&) = delete;

  void start() {
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port_), "--bind",  "127.0.0.1",     "--save", "",
        "--appendonly", "no",     "--loglevel",          "warning", "--requirepass", password_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid_, "redis-server", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(rc, 0);
  }
  /// Sends `signal` to the server (SIGSTOP/SIGCONT: a server that stops answering).
  void signal(int signal) const {
    if (pid_ > 0) ::kill(pid_, signal);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  int port_;
  std::string password_;
  pid_t pid_ = -1;
};

TEST(RedisClient, ParsesUrls) {
  auto o = redis::parse_redis_url("redis://:s3cret@10.0.0.1:6380/2");
  EXPECT_EQ(o.host, "10.0.0.1");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.password, "s3cret");
  EXPECT_EQ(o.db, 2);
  o = redis::parse_redis_url("redis://user:pw@localhost");
  EXPECT_EQ(o.username, "user");
  EXPECT_EQ(o.port, 6379);
  o = redis::parse_redis_url("unix:///tmp/r.sock?db=3");
  EXPECT_EQ(o.unix_socket, "/tmp/r.sock");
  EXPECT_EQ(o.db, 3);
  try {
    redis::parse_redis_url("redis://:topsecret@host:notaport/0");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "redis.url");
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos);
  }
  EXPECT_THROW(redis::parse_redis_url("http://x"), ConfigError);
}

TEST(RedisClient, SetGetWithTtlAndPipelinedCommandsOnTheStack) {
  boost::asio::io_context io;
  RedisClient client(io, redis::parse_redis_url(testing::redis_url()));
  client.start();
  ASSERT_TRUE(run_until(
      io, [&] { return client.connected(); }, std::chrono::seconds(5)))
      << client.last_error();

  const std::string key = testing::unique_name("kafka-llm-test");
  std::vector<RedisReply> replies;
  client.command({"SET", key, "{\"status\":\"done\"}", "PX", "60000"},
                 [&](RedisReply&& r) { replies.push_back(r); });
  client.command({"GET", key}, [&](RedisReply&& r) { replies.push_back(r); });
  client.command({"PTTL", key}, [&](RedisReply&& r) { replies.push_back(r); });
  client.command({"GET", key + "-missing"}, [&](RedisReply&& r) { replies.push_back(r); });
  client.command({"NOSUCHCOMMAND"}, [&](RedisReply&& r) { replies.push_back(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return replies.size() == 5; }, std::chrono::seconds(5)));
  EXPECT_EQ(replies[0].type, RedisReply::Type::kStatus);
  EXPECT_EQ(replies[0].str, "OK");
  EXPECT_EQ(replies[1].str, "{\"status\":\"done\"}");
  EXPECT_EQ(replies[2].type, RedisReply::Type::kInteger);
  EXPECT_GT(replies[2].integer, 50000);
  EXPECT_LE(replies[2].integer, 60000);
  EXPECT_EQ(replies[3].type, RedisReply::Type::kNil);
  EXPECT_EQ(replies[4].type, RedisReply::Type::kError);
  EXPECT_FALSE(replies[4].transport_error);

  // Many commands in flight at once on one connection, answered in order.
  constexpr int kCommands = 20000;
  int answered = 0;
  int in_order = 0;
  for (int i = 0; i < kCommands; ++i) {
    client.command({"INCR", key + "-counter"}, [&, i](RedisReply&& r) {
      ++answered;
      if (r.integer == i + 1) ++in_order;
    });
  }
  ASSERT_TRUE(run_until(
      io, [&] { return answered == kCommands; }, std::chrono::seconds(20)));
  EXPECT_EQ(in_order, kCommands);
  client.command({"DEL", key, key + "-counter"}, [](RedisReply&&) {});
  run_until(
      io, [&] { return client.pending() == 0; }, std::chrono::seconds(2));
}

TEST(RedisClient, AuthenticatesAndReconnectsAfterTheServerComesBack) {
  const int port = free_port();
  const std::string password = "pw-" + testing::unique_name("x");
  OwnRedis server(port, password);
  boost::asio::io_context io;

  redis::RedisOptions wrong;
  wrong.port = port;
  wrong.password = "wrong-password";
  RedisClient bad(io, wrong);
  bad.start();
  redis::RedisOptions right = wrong;
  right.password = password;
  RedisClient client(io, right);
  client.start();
  ASSERT_TRUE(run_until(
      io, [&] { return client.connected(); }, std::chrono::seconds(10)))
      << client.last_error();
  ASSERT_TRUE(run_until(
      io, [&] { return bad.last_error().find("AUTH failed") != std::string::npos; }, std::chrono::seconds(5)))
      << bad.last_error();
  EXPECT_FALSE(bad.connected());
  EXPECT_EQ(bad.last_error().find("wrong-password"), std::string::npos);

  std::optional<RedisReply> reply;
  client.command({"PING"}, [&](RedisReply&& r) { reply = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return reply.has_value(); }, std::chrono::seconds(5)));
  EXPECT_EQ(reply->str, "PONG");

  server.stop();
  ASSERT_TRUE(run_until(
      io, [&] { return !client.connected(); }, std::chrono::seconds(5)));
  reply.reset();
  client.command({"PING"}, [&](RedisReply&& r) { reply = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return reply.has_value(); }, std::chrono::seconds(5)));
  EXPECT_FALSE(reply->ok());
  EXPECT_TRUE(reply->transport_error);

  server.start();
  ASSERT_TRUE(run_until(
      io, [&] { return client.connected(); }, std::chrono::seconds(15)))
      << client.last_error();
  reply.reset();
  client.command({"PING"}, [&](RedisReply&& r) { reply = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return reply.has_value(); }, std::chrono::seconds(5)));
  EXPECT_EQ(reply->str, "PONG");
}

/// `cmdstat_<command>:calls=N` of INFO commandstats (0 when the command never ran).
long long command_calls(boost::asio::io_context& io, RedisClient& client, const std::string& command) {
  std::optional<RedisReply> info;
  client.command({"INFO", "commandstats"}, [&](RedisReply&& r) { info = std::move(r); });
  if (!run_until(
          io, [&] { return info.has_value(); }, std::chrono::seconds(5))) {
    ADD_FAILURE() << "no INFO reply";
    return -1;
  }
  const std::string field = "cmdstat_" + command + ":calls=";
  const auto at = info->str.find(field);
  if (at == std::string::npos) return 0;
  return std::stoll(info->str.substr(at + field.size()));
}

TEST(RedisClient, EvalSendsTheScriptTextOnlyWhenRedisLacksIt) {
  const int port = free_port();
  OwnRedis server(port, "pw-eval");  // its own server: SCRIPT FLUSH must not disturb other tests
  boost::asio::io_context io;
  redis::RedisOptions options;
  options.port = port;
  options.password = "pw-eval";
  RedisClient client(io, options);
  client.start();
  ASSERT_TRUE(run_until(
      io, [&] { return client.connected(); }, std::chrono::seconds(10)))
      << client.last_error();

  const redis::RedisScript script("return {KEYS[1], ARGV[1], ARGV[2]}");
  EXPECT_EQ(script.sha1().size(), 40U);
  const auto run = [&](const std::string& arg) {
    std::optional<RedisReply> reply;
    client.eval(script, {"1", "k", arg, ""}, [&](RedisReply&& r) { reply = std::move(r); });
    EXPECT_TRUE(run_until(
        io, [&] { return reply.has_value(); }, std::chrono::seconds(5)));
    return reply.value_or(RedisReply::error("no reply", RedisReply::ErrorSource::kTransport));
  };
  for (const std::string arg : {"first", "second: spaces and \r\n"}) {
    const RedisReply reply = run(arg);
    ASSERT_EQ(reply.type, RedisReply::Type::kArray) << reply.str;
    ASSERT_EQ(reply.elements.size(), 3U);
    EXPECT_EQ(reply.elements[0].str, "k");
    EXPECT_EQ(reply.elements[1].str, arg);
    EXPECT_EQ(reply.elements[2].str, "");
  }
  // The first call loaded the script with EVAL after NOSCRIPT; the second ran by its SHA.
  EXPECT_EQ(command_calls(io, client, "eval"), 1);
  EXPECT_EQ(command_calls(io, client, "evalsha"), 2);

  std::optional<RedisReply> flushed;
  client.command({"SCRIPT", "FLUSH"}, [&](RedisReply&& r) { flushed = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return flushed.has_value(); }, std::chrono::seconds(5)));
  EXPECT_EQ(run("after a flush").elements.at(1).str, "after a flush");
  EXPECT_EQ(command_calls(io, client, "eval"), 2);

  // A script error is Redis' answer, not a transport failure.
  const redis::RedisScript broken("return redis.call('NOSUCHCOMMAND')");
  std::optional<RedisReply> error;
  client.eval(broken, {"0"}, [&](RedisReply&& r) { error = std::move(r); });
  ASSERT_TRUE(run_until(
      io, [&] { return error.has_value(); }, std::chrono::seconds(5)));
  EXPECT_EQ(error->type, RedisReply::Type::kError);
  EXPECT_FALSE(error->transport_error);
}

TEST(RedisClient, RepliesReadLateByABusyLoopDoNotDropTheConnection) {
  const int port = free_port();
  OwnRedis server(port, "pw-watchdog");
  boost::asio::io_context io;
  redis::RedisOptions options;
  options.port = port;
  options.password = "pw-watchdog";
  options.command_timeout = std::chrono::milliseconds(200);
  RedisClient client(io, options);
  client.start();
  ASSERT_TRUE(run_until(
      io, [&] { return client.connected(); }, std::chrono::seconds(10)))
      << client.last_error();

  // The loop is busy (not run) for longer than the command timeout, first before it wrote the
  // commands out, then while their replies wait unread.
  constexpr int kCommands = 2000;
  int ok = 0;
  int failed = 0;
  for (const bool written : {false, true}) {
    for (int i = 0; i < kCommands; ++i) {
      client.command({"PING"}, [&](RedisReply&& r) { ++(r.ok() ? ok : failed); });
    }
    if (written) io.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    io.restart();
  }
  ASSERT_TRUE(run_until(
      io, [&] { return ok + failed == 2 * kCommands; }, std::chrono::seconds(10)));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(ok, 2 * kCommands);
  EXPECT_TRUE(client.connected());

  // A server that answers nothing is still dropped after the timeout.
  server.signal(SIGSTOP);
  std::optional<RedisReply> reply;
  client.command({"PING"}, [&](RedisReply&& r) { reply = std::move(r); });
  const bool answered = run_until(
      io, [&] { return reply.has_value(); }, std::chrono::seconds(5));
  server.signal(SIGCONT);
  ASSERT_TRUE(answered);
  EXPECT_TRUE(reply->transport_error);
  EXPECT_NE(reply->str.find("timed out"), std::string::npos) << reply->str;
  ASSERT_TRUE(run_until(
      io, [&] { return client.connected(); }, std::chrono::seconds(10)))
      << client.last_error();
}

}  // namespace
}  // namespace kafka_llm
