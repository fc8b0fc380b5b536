// The shared rate limiter's Lua script on a real Redis, checked against the same hand-computed
// table as the C++ token-bucket arithmetic (tests/cpp/unit/policy_token_bucket_cases.hpp), so
// the two implementations of one formula cannot drift apart.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "../unit/policy_token_bucket_cases.hpp"
#include "kafka_llm/policy/shared_rate_limit_script.hpp"
#include "kafka_llm/redis/redis_client.hpp"
#include "stack_env.hpp"

namespace kafka_llm {
namespace {

using redis::RedisReply;

class SharedRateLimitScript : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = std::make_unique<redis::RedisClient>(io_, redis::parse_redis_url(testing::redis_url()));
    client_->start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!client_->connected() && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(5));
      io_.restart();
    }
    ASSERT_TRUE(client_->connected()) << client_->last_error();
  }

  RedisReply call(const std::vector<std::string>& args) {
    std::optional<RedisReply> reply;
    std::vector<std::string_view> views(args.begin(), args.end());
    client_->command(views, [&](RedisReply&& r) { reply = std::move(r); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!reply && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(1));
      io_.restart();
    }
    EXPECT_TRUE(reply.has_value()) << "no reply to " << args.front();
    return reply.value_or(RedisReply::error("timeout", RedisReply::ErrorSource::kTransport));
  }

  boost::asio::io_context io_;
  std::unique_ptr<redis::RedisClient> client_;
};

TEST_F(SharedRateLimitScript, AgreesWithTheCppArithmeticOnEveryCase) {
  const std::string prefix = testing::unique_name("kafka-llm-test:rl");
  const auto cases = policy::test_cases::token_bucket_cases();
  ASSERT_GT(cases.size(), 10u);
  int index = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> keys;
    std::vector<policy::SharedBucketOp> ops;
    for (std::size_t b = 0; b < c.buckets.size(); ++b) {
      const auto& bucket = c.buckets[b];
      keys.push_back(prefix + ":{" + std::to_string(index) + "}:" + std::to_string(b));
      ops.push_back({bucket.config, bucket.tokens});
      if (bucket.before) {
        auto set = call({"HSET", keys.back(), "u", std::to_string(bucket.before->units), "t",
                         std::to_string(bucket.before->last_ms)});
        ASSERT_TRUE(set.ok()) << set.str;
      }
    }
    const std::chrono::system_clock::time_point now{std::chrono::milliseconds(c.now_ms)};
    std::vector<std::string> eval = {"EVAL", std::string(policy::kSharedRateLimitScript),
                                     std::to_string(keys.size())};
    eval.insert(eval.end(), keys.begin(), keys.end());
    for (auto& a : policy::shared_rate_limit_argv(now, c.mode, ops)) eval.push_back(std::move(a));
    const auto result = call(eval);
    ASSERT_EQ(result.type, RedisReply::Type::kInteger) << result.str;
    EXPECT_EQ(result.integer, c.wait_ms);
    for (std::size_t b = 0; b < keys.size(); ++b) {
      const auto state = call({"HMGET", keys[b], "u", "t"});
      ASSERT_EQ(state.elements.size(), 2u);
      EXPECT_EQ(std::stoll(state.elements[0].str), c.buckets[b].after.units) << "bucket " << b;
      EXPECT_EQ(std::stoll(state.elements[1].str), c.buckets[b].after.last_ms) << "bucket " << b;
      const auto ttl = call({"PTTL", keys[b]});
      EXPECT_GT(ttl.integer, 0) << "every touched key expires";
      call({"DEL", keys[b]});
    }
    ++index;
  }
}

}  // namespace
}  // namespace kafka_llm
