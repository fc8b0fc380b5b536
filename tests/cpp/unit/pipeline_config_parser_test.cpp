#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/pipeline/config_keys.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"
#include "kafka_llm/redis/redis_client.hpp"

namespace kafka_llm::pipeline {
namespace {

using nlohmann::json;
using Env = std::map<std::string, std::string, std::less<>>;

// A valid document; each case merges its own keys over it (json::merge_patch: null deletes).
json base_document() {
  return json::parse(R"({
    "messaging": {"streams": [{"requestsURL": "kafka://g?topic=req", "responsesURL": "kafka://resp"}]},
    "kafka": {"bootstrap.servers": "127.0.0.1:9092"},
    "providers": [{"name": "mock", "baseURL": "http://127.0.0.1:1/v1"}]
  })");
}

json with(const char* patch) {
  json document = base_document();
  document.merge_patch(json::parse(patch));
  return document;
}

std::string error_of(const json& document, const Env& env = {}, const std::string& file = "") {
  try {
    (void)PipelineConfig::parse(document, ConfigSource{file, env});
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

struct BadCase {
  const char* patch;
  const char* message;
};

class PipelineConfigBadDocument : public ::testing::TestWithParam<BadCase> {};

TEST_P(PipelineConfigBadDocument, FailsWithTheExactMessage) {
  EXPECT_EQ(error_of(with(GetParam().patch)), std::string("invalid configuration: ") + GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PipelineConfigBadDocument,
    ::testing::Values(
        BadCase{R"({"retry": {"maxAtempts": 3}})",
                "retry.maxAtempts: unknown key; did you mean maxAttempts?"},
        BadCase{R"({"exactly_once": true})", "exactly_once: unknown key; did you mean exactlyOnce?"},
        BadCase{R"({"workers": 3})",
                "workers: unknown key (known: messaging, kafka, redis, providers, retry, circuit, "
                "defaultProvider, modelVersion, maxRequestBytes, commitInterval, drainTimeout, exactlyOnce, "
                "transactionalId, "
                "lagInterval, tracing)"},
        BadCase{R"({"providers": [{"name": "mock", "baseUrl": "http://x"}]})",
                "providers[0].baseUrl: unknown key; did you mean baseURL?"},
        BadCase{
            R"({"messaging": {"streams": [{"requestsURL": "kafka://req", "responsesURL": "kafka://r"}]}})",
            "messaging.streams[0].requestsURL: must look like kafka://<consumer group>?topic=<topic>"},
        BadCase{
            R"({"messaging": {"streams": [{"requestsURL": "http://g?topic=t", "responsesURL": "kafka://r"}]}})",
            "messaging.streams[0].requestsURL: must be a kafka:// URL, got \"http://g?topic=t\""},
        BadCase{R"({"messaging": {"streams": [{"requestsURL": "kafka://g?topic=t"}]}})",
                "messaging.streams[0].responsesURL: is required"},
        BadCase{R"({"messaging": {"errorMaxBackoff": "soon"}})",
                "messaging.errorMaxBackoff: must be a duration like 30s or 500ms, got \"soon\""},
        BadCase{R"({"retry": {"initialBackoff": -1}})", "retry.initialBackoff: must not be negative"},
        BadCase{R"({"retry": {"maxAttempts": 0}})", "retry.maxAttempts: must be at least 1"},
        BadCase{R"({"retry": {"maxAttempts": 2.5}})", "retry.maxAttempts: must be a whole number, got 2.5"},
        BadCase{R"({"retry": {"maxAttempts": "six"}})", "retry.maxAttempts: must be a number, got \"six\""},
        BadCase{R"({"providers": [{"name": "mock", "baseURL": "ftp://x"}]})",
                "providers[0].baseURL: must start with http:// or https://"},
        BadCase{R"({"providers": [{"name": "mock", "baseURL": "http://x", "kind": "grpc"}]})",
                "providers[0].kind: must be openai, anthropic or python, got \"grpc\""},
        BadCase{R"({"providers": [{"name": "mock", "baseURL": "http://x", "shared": "yes"}]})",
                "providers[0].shared: must be true or false"},
        BadCase{R"({"providers": [{"name": "mock", "baseURL": "http://x", "apiKey": 12345678}]})",
                "providers[0].apiKey: must be a string, got a number"},
        BadCase{R"({"providers": [{"name": "mock"}]})", "providers[0].baseURL: is required"},
        BadCase{
            R"({"providers": [{"name": "m", "baseURL": "http://x"}, {"name": "m", "baseURL": "http://y"}]})",
            "providers[1].name: duplicate provider name \"m\""},
        BadCase{R"({"defaultProvider": "nope"})", "defaultProvider: names no configured provider: \"nope\""},
        BadCase{R"({"kafka": {"bootstrap.servers": null}})",
                "kafka.bootstrap.servers: is required (or set KAFKA_LLM_BOOTSTRAP_SERVERS or "
                "KAFKA_BOOTSTRAP_SERVERS)"},
        BadCase{R"({"redis": {"url": "http://localhost"}})",
                "redis.url: must start with redis:// or unix://"},
        BadCase{R"({"redis": {"resultTTL": "0s"}})", "redis.resultTTL: must be longer than 0"},
        BadCase{R"({"circuit": {"window": "5ms"}})", "circuit.window: must be at least 10ms"},
        BadCase{R"({"circuit": {"failureRatio": 1.5}})",
                "circuit.failureRatio: must be between 0 and 1 (0 turns the ratio off)"},
        BadCase{R"({"messaging": {"streams": {"requestsURL": "kafka://g?topic=t"}}})",
                "messaging.streams: must be a list"},
        BadCase{R"({"redis": "redis://x"})", "redis: must be a mapping"}));

TEST(PipelineConfigParser, DefaultsComeFromTheKeyTable) {
  const auto config = PipelineConfig::parse(base_document());
  const auto& stream = config.streams.at(0);
  EXPECT_EQ(stream.group, "g");
  EXPECT_EQ(stream.requests_topic, "req");
  EXPECT_EQ(stream.responses_topic, "resp");
  EXPECT_EQ(stream.dlq_topic, "req.dlq");
  EXPECT_EQ(stream.max_handlers, 5000U);
  EXPECT_EQ(config.redis.url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(config.redis.key_prefix, "kafka-llm");
  EXPECT_EQ(config.redis.result_ttl, Millis(300'000));
  EXPECT_EQ(config.retry.max_attempts, 6);
  EXPECT_EQ(config.retry.initial_backoff, Millis(500));
  EXPECT_EQ(config.retry.max_backoff, Millis(30'000));
  EXPECT_EQ(config.retry.request_timeout, Millis(120'000));
  EXPECT_EQ(config.retry.error_max_backoff, Millis(30'000));
  EXPECT_EQ(config.retry.max_malformed_retries, 1);
  EXPECT_EQ(config.max_request_bytes, 1U << 20);
  EXPECT_EQ(config.commit_interval, Millis(200));
  EXPECT_EQ(config.drain_timeout, Millis(10'000));
  EXPECT_EQ(config.default_provider, "mock");
  const auto& provider = config.providers.at(0);
  EXPECT_EQ(provider.kind, ProviderKind::kOpenAI);
  EXPECT_EQ(provider.connect_timeout, Millis(10'000));
  EXPECT_EQ(provider.first_byte_timeout, Millis(60'000));
}

TEST(PipelineConfigParser, UserKeysAndUnitsAsWritten) {
  const auto config = PipelineConfig::parse(with(R"({
    "messaging": {"errorMaxBackoff": "1h30m",
                  "streams": [{"requestsURL": "kafka://grp?topic=in", "responsesURL": "kafka://out",
                               "dlqURL": "kafka:///dead", "maxHandlers": 7}]},
    "kafka": {"bootstrap.servers": "b:9092", "linger.ms": 5, "enable.idempotence": true},
    "redis": {"url": "redis://r:6380/2", "resultTTL": 90, "keyPrefix": "p"},
    "providers": [{"name": "anthropic", "baseURL": "https://a.example/v1/", "rpm": 60, "models": ["claude*"],
                   "firstByteTimeout": ".5s"}],
    "retry": {"maxAttempts": 2, "initialBackoff": "250ms", "requestTimeout": "3m"}
  })"));
  EXPECT_EQ(config.streams.at(0).group, "grp");
  EXPECT_EQ(config.streams.at(0).dlq_topic, "dead");
  EXPECT_EQ(config.streams.at(0).max_handlers, 7U);
  EXPECT_EQ(config.retry.error_max_backoff, Millis(5'400'000));
  EXPECT_EQ(config.redis.result_ttl, Millis(90'000));
  const auto& provider = config.providers.at(0);
  EXPECT_EQ(provider.kind, ProviderKind::kAnthropic);
  EXPECT_EQ(provider.base_url, "https://a.example/v1");
  EXPECT_EQ(provider.first_byte_timeout, Millis(500));
  EXPECT_EQ(config.route_model("claude-3")->name, "anthropic");
  EXPECT_EQ(config.retry.request_timeout, Millis(180'000));
  const auto view = config.view();
  EXPECT_EQ(view["kafka"]["linger.ms"], "5");
  EXPECT_EQ(view["kafka"]["enable.idempotence"], "true");
  EXPECT_EQ(view["retry"]["initial_backoff_ms"], 250);
}

TEST(PipelineConfigParser, EnvironmentOverridesAndBuiltInProviders) {
  json document = base_document();
  document.erase("providers");
  document.erase("kafka");
  const Env env{{"KAFKA_BOOTSTRAP_SERVERS", "k:1"},
                {"REQUEST_TOPIC", "r2"},
                {"KAFKA_GROUP_ID", "g2"},
                {"RESPONSE_TOPIC", "s2"},
                {"DLQ_TOPIC", "d2"},
                {"REDIS_HOST", "h"},
                {"REDIS_PORT", "7000"},
                {"GROQ_API_KEY", "gsk-secret"}};
  const auto config = PipelineConfig::parse(document, ConfigSource{"", env});
  EXPECT_EQ(config.kafka.at(0), (std::pair<std::string, std::string>{"bootstrap.servers", "k:1"}));
  const auto& s = config.streams.at(0);
  EXPECT_EQ(s.group + " " + s.requests_topic + " " + s.responses_topic + " " + s.dlq_topic, "g2 r2 s2 d2");
  EXPECT_EQ(config.redis.url, "redis://h:7000/0");
  ASSERT_EQ(config.providers.size(), 1U);
  EXPECT_EQ(config.providers[0].name, "groq");
  EXPECT_EQ(config.providers[0].base_url, "https://api.groq.com/openai/v1");
  EXPECT_EQ(config.providers[0].api_key, "gsk-secret");

  const auto defaults = PipelineConfig::parse(json::object(), ConfigSource{"", env});
  EXPECT_EQ(defaults.streams.at(0).max_handlers, 5000U);
  EXPECT_EQ(
      PipelineConfig::parse(
          json::object(), ConfigSource{"", {{"KAFKA_BOOTSTRAP_SERVERS", "k:1"}, {"OPENAI_API_KEY", "sk-x"}}})
          .streams.at(0)
          .requests_topic,
      "llm.requests");
}

// What `kafka-llm dev up` prints is enough for a worker: brokers, Redis and the mock provider.
TEST(PipelineConfigParser, TheLocalStackEnvironmentAloneConfiguresAWorker) {
  const Env env{{"KAFKA_LLM_BOOTSTRAP_SERVERS", "127.0.0.1:9"},
                {"KAFKA_LLM_REDIS_URL", "redis://:pw@127.0.0.1:8/0"},
                {"KAFKA_LLM_PROVIDER_URL", "http://127.0.0.1:7/v1/"}};
  const auto config = PipelineConfig::parse(json::object(), ConfigSource{"", env});
  EXPECT_EQ(config.kafka.at(0), (std::pair<std::string, std::string>{"bootstrap.servers", "127.0.0.1:9"}));
  EXPECT_EQ(config.redis.url, "redis://:pw@127.0.0.1:8/0");
  ASSERT_EQ(config.providers.size(), 1U);
  EXPECT_EQ(config.providers[0].name, "local");
  EXPECT_EQ(config.providers[0].kind, ProviderKind::kOpenAI);
  EXPECT_EQ(config.providers[0].base_url, "http://127.0.0.1:7/v1");
  EXPECT_EQ(config.providers[0].api_key, "");
  EXPECT_EQ(config.default_provider, "local");
  EXPECT_EQ(config.streams.at(0).requests_topic, "llm.requests");
}

// The KAFKA_LLM_ names win over the original backend's; the provider URL adds `local` only when
// the file has no providers, first, before the built-ins whose keys are set.
TEST(PipelineConfigParser, LocalStackVariablesWinOverTheOriginalNames) {
  json document = base_document();
  document.erase("providers");
  document.erase("kafka");
  const Env env{{"KAFKA_LLM_BOOTSTRAP_SERVERS", "new:1"},
                {"KAFKA_BOOTSTRAP_SERVERS", "old:1"},
                {"KAFKA_LLM_REDIS_URL", "redis://new:1/0"},
                {"REDIS_URL", "redis://old:1/0"},
                {"REDIS_HOST", "old"},
                {"KAFKA_LLM_PROVIDER_URL", "http://new:1/v1"},
                {"OPENAI_API_KEY", "sk-old"}};
  const auto config = PipelineConfig::parse(document, ConfigSource{"", env});
  EXPECT_EQ(config.kafka.at(0).second, "new:1");
  EXPECT_EQ(config.redis.url, "redis://new:1/0");
  ASSERT_EQ(config.providers.size(), 2U);
  EXPECT_EQ(config.providers[0].name + " " + config.providers[1].name, "local openai");
  EXPECT_EQ(config.default_provider, "local");
  // With providers in the file, the provider URL adds nothing.
  const auto configured = PipelineConfig::parse(base_document(), ConfigSource{"", env});
  for (const auto& p : configured.providers) EXPECT_NE(p.name, "local");
  // Empty KAFKA_LLM_ variables are ignored: the original names apply.
  const Env empty{{"KAFKA_LLM_BOOTSTRAP_SERVERS", ""}, {"KAFKA_BOOTSTRAP_SERVERS", "old:1"},
                  {"KAFKA_LLM_REDIS_URL", ""},         {"REDIS_URL", "redis://old:1/0"},
                  {"KAFKA_LLM_PROVIDER_URL", ""},      {"OPENAI_API_KEY", "sk-old"}};
  const auto fallback = PipelineConfig::parse(document, ConfigSource{"", empty});
  EXPECT_EQ(fallback.kafka.at(0).second, "old:1");
  EXPECT_EQ(fallback.redis.url, "redis://old:1/0");
  ASSERT_EQ(fallback.providers.size(), 1U);
  EXPECT_EQ(fallback.providers[0].name, "openai");
  EXPECT_EQ(
      error_of(document, {{"KAFKA_LLM_PROVIDER_URL", "127.0.0.1:7"}, {"KAFKA_BOOTSTRAP_SERVERS", "k:1"}}),
      "invalid configuration: KAFKA_LLM_PROVIDER_URL: must start with http:// or https://");
  EXPECT_EQ(error_of(base_document(), {{"KAFKA_LLM_REDIS_URL", "http://h"}}),
            "invalid configuration: KAFKA_LLM_REDIS_URL: must start with redis:// or unix://");
}

TEST(PipelineConfigParser, MetricLabelsAreBoundedByTheConfiguredModels) {
  const auto config = PipelineConfig::parse(with(R"({"providers": [
    {"name": "mock", "baseURL": "http://127.0.0.1:1/v1"},
    {"name": "openai", "baseURL": "http://127.0.0.1:1/v1", "models": ["gpt-4o", "gpt-4o*", "o[13]-*"]}
  ]})"));
  using Labels = std::pair<std::string, std::string>;
  EXPECT_EQ(config.metric_labels("openai", "gpt-4o"), Labels("openai", "gpt-4o"));        // a literal
  EXPECT_EQ(config.metric_labels("openai", "gpt-4o-mini"), Labels("openai", "gpt-4o*"));  // its glob
  EXPECT_EQ(config.metric_labels("openai", "o3-high"), Labels("openai", "o[13]-*"));
  EXPECT_EQ(config.metric_labels("openai", "random-x1"), Labels("openai", "other"));  // named, not listed
  EXPECT_EQ(config.metric_labels("mock", "random-x2"), Labels("mock", "other"));      // no models list
  EXPECT_EQ(config.metric_labels("nope-7f3a", "gpt-4o"), Labels("other", "other"));   // unknown provider
  EXPECT_EQ(config.metric_labels("", ""), Labels("", ""));                            // poison: unknown
}

TEST(PipelineConfigParser, ErrorsNameTheFileAndTheEnvironmentButNoSecret) {
  EXPECT_EQ(error_of(with(R"({"retry": {"maxAtempts": 3}})"), {}, "worker.yaml"),
            "invalid configuration: worker.yaml: retry.maxAtempts: unknown key; did you mean maxAttempts?");
  EXPECT_EQ(error_of(base_document(), {{"REDIS_PORT", "x"}}),
            "invalid configuration: REDIS_PORT: must be a port number");
  EXPECT_EQ(error_of(base_document(), {{"REDIS_URL", "http://h"}}),
            "invalid configuration: REDIS_URL: must start with redis:// or unix://");
  EXPECT_EQ(
      error_of(with(R"({"providers": [{"name": "mock", "baseURL": "http://x", "apiKeyEnv": "MY_KEY"}]})")),
      "invalid configuration: providers[0].apiKeyEnv: environment variable MY_KEY is not set");
  // A secret pasted into a field that echoes its value is masked.
  const std::string message =
      error_of(with(R"({"providers": [{"name": "mock", "baseURL": "http://x", "apiKey": "sk-top-secret",
                                       "connectTimeout": "sk-top-secret"}]})"));
  EXPECT_EQ(message,
            "invalid configuration: providers[0].connectTimeout: must be a duration like 30s or 500ms, got "
            "\"***\"");
}

TEST(RedisUrl, UserAndPasswordArePercentDecodedLikeOtherClients) {
  const redis::RedisOptions options = redis::parse_redis_url("redis://app%2Duser:p%40ss%2Fw%25rd@h:6380/3");
  EXPECT_EQ(options.username, "app-user");
  EXPECT_EQ(options.password, "p@ss/w%rd");
  EXPECT_EQ(options.db, 3);
  // A % not followed by two hex digits stays as it is (as Python's unquote leaves it).
  EXPECT_EQ(redis::parse_redis_url("redis://:100%zz%4@h:1").password, "100%zz%4");
  // Encoding gives back any password, whatever it holds.
  const std::string hostile = "a:b@c/d?e#f%g h\n\x01\xff~._-";
  EXPECT_EQ(redis::parse_redis_url("redis://:" + redis::percent_encode_userinfo(hostile) + "@h:1").password,
            hostile);
  EXPECT_EQ(redis::percent_encode_userinfo("Az09-._~"), "Az09-._~");
}

// Secrets mounted as files (Kubernetes secrets): a temporary directory holding a worker.yaml's files.
class SecretFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kafka-llm-secrets-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return (dir_ / name).string();
  }
  PipelineConfig parse(const json& document) const {
    return PipelineConfig::parse(document, ConfigSource{(dir_ / "worker.yaml").string(), {}});
  }
  std::string error(const json& document) const {
    return error_of(document, {}, (dir_ / "worker.yaml").string());
  }
  std::filesystem::path dir_;
};

TEST_F(SecretFilesTest, KeysAndPasswordsAreReadFromFilesOneTrailingNewlineDropped) {
  const std::string key_path = write("api-key", "sk-from-file-123\n");
  write("sasl-password", "sasl-from-file\r\n");
  write("redis-password", "redis:from@file");
  json document = with(R"({"kafka": {"sasl.username": "u"}, "redis": {"url": "redis://r:6380/2",
                                                                      "passwordFile": "redis-password"}})");
  document["providers"][0]["apiKeyFile"] = key_path;          // absolute
  document["kafka"]["sasl.password.file"] = "sasl-password";  // relative to worker.yaml
  const PipelineConfig config = parse(document);
  EXPECT_EQ(config.providers.at(0).api_key, "sk-from-file-123");
  const auto sasl = std::find_if(config.kafka.begin(), config.kafka.end(),
                                 [](const auto& p) { return p.first == "sasl.password"; });
  ASSERT_NE(sasl, config.kafka.end());
  EXPECT_EQ(sasl->second, "sasl-from-file");
  EXPECT_EQ(std::count_if(config.kafka.begin(), config.kafka.end(),
                          [](const auto& p) { return p.first.ends_with(".file"); }),
            0);
  // Percent-encoded in the URL, and decoded back to the file's content.
  EXPECT_EQ(config.redis.url, "redis://:redis%3Afrom%40file@r:6380/2");
  EXPECT_EQ(redis::parse_redis_url(config.redis.url).password, "redis:from@file");
  const auto secrets = config.secrets();
  for (const char* s : {"sk-from-file-123", "sasl-from-file", "redis:from@file", "redis%3Afrom%40file"}) {
    EXPECT_NE(std::find(secrets.begin(), secrets.end(), s), secrets.end()) << s;
  }
  write("two-lines", "line\n\n");
  document["providers"][0]["apiKeyFile"] = "two-lines";
  EXPECT_EQ(parse(document).providers.at(0).api_key, "line\n");  // only one newline is dropped
}

TEST_F(SecretFilesTest, ErrorsNameTheKeyAndThePathButNeverTheContent) {
  write("key", "sk-never-shown-42");
  write("empty", "\n");
  const std::string prefix = "invalid configuration: " + (dir_ / "worker.yaml").string() + ": ";
  auto provider = [](const char* extra) {
    json d = base_document();
    d["providers"][0].merge_patch(json::parse(extra));
    return d;
  };
  EXPECT_EQ(error(provider(R"({"apiKeyFile": "missing"})")),
            prefix + "providers[0].apiKeyFile: no such file: " + (dir_ / "missing").string());
  EXPECT_EQ(error(provider(R"({"apiKeyFile": "empty"})")),
            prefix + "providers[0].apiKeyFile: the file " + (dir_ / "empty").string() + " is empty");
  EXPECT_EQ(error(provider(R"({"apiKeyFile": "."})")),
            prefix + "providers[0].apiKeyFile: no such file: " + (dir_ / ".").string());
  EXPECT_EQ(error(provider(R"({"apiKeyFile": "key", "apiKey": "sk-x"})")),
            prefix + "providers[0].apiKeyFile: give one of apiKey, apiKeyEnv and apiKeyFile, not several");
  EXPECT_EQ(error(provider(R"({"apiKeyFile": "key", "apiKeyEnv": "K"})")),
            prefix + "providers[0].apiKeyFile: give one of apiKey, apiKeyEnv and apiKeyFile, not several");
  EXPECT_EQ(error(provider(R"({"apiKey": "sk-x", "apiKeyEnv": "K"})")),
            prefix + "providers[0].apiKeyEnv: give one of apiKey, apiKeyEnv and apiKeyFile, not several");
  EXPECT_EQ(error(with(R"({"kafka": {"sasl.password.file": "missing"}})")),
            prefix + "kafka.sasl.password.file: no such file: " + (dir_ / "missing").string());
  EXPECT_EQ(error(with(R"({"kafka": {"sasl.password.file": "key", "sasl.password": "p"}})")),
            prefix +
                "kafka.sasl.password.file: give either kafka.sasl.password or kafka.sasl.password.file, "
                "not both");
  EXPECT_EQ(error(with(R"({"kafka": {"client.id.file": "key"}})")),
            prefix +
                "kafka.client.id.file: only secret properties (*password*, *secret*, *key*, *token*) are "
                "read from a file");
  EXPECT_EQ(error(with(R"({"redis": {"passwordFile": "empty"}})")),
            prefix + "redis.passwordFile: the file " + (dir_ / "empty").string() + " is empty");
  EXPECT_EQ(
      error(with(R"({"redis": {"url": "redis://:pw@h:1/0", "passwordFile": "key"}})")),
      prefix + "redis.passwordFile: give the password either in redis.url or in passwordFile, not both");
  EXPECT_EQ(error(with(R"({"redis": {"url": "unix:///tmp/r.sock", "passwordFile": "key"}})")),
            prefix + "redis.passwordFile: needs a redis:// URL (redis.url is not one)");
  // A value read from a file and pasted into a field that echoes its value is masked.
  json echo = with(R"({"kafka": {"ssl.key.password.file": "key"}})");
  echo["providers"][0]["connectTimeout"] = "sk-never-shown-42";
  EXPECT_EQ(error(echo),
            prefix + "providers[0].connectTimeout: must be a duration like 30s or 500ms, got \"***\"");
  // librdkafka's own complaint about a value read from a file does not repeat it.
  const std::string rejected = error(with(R"({"kafka": {"sasl.oauthbearer.client.secret.file": "key",
                                                       "sasl.mechanism": "sk-never-shown-42"}})"));
  EXPECT_NE(rejected, "");
  EXPECT_EQ(rejected.find("sk-never-shown-42"), std::string::npos) << rejected;
}

TEST(PipelineConfigParser, ExactlyOnceIsNotAcceptedSilently) {
  EXPECT_NE(error_of(with(R"({"exactly_once": false})")), "");
}

TEST(ConfigKeys, DurationsAreGoStyleOrSeconds) {
  EXPECT_EQ(parse_duration("30s", "k"), Millis(30'000));
  EXPECT_EQ(parse_duration("500ms", "k"), Millis(500));
  EXPECT_EQ(parse_duration("1h30m", "k"), Millis(5'400'000));
  EXPECT_EQ(parse_duration(" 2m ", "k"), Millis(120'000));
  EXPECT_EQ(parse_duration("1500us", "k"), Millis(2));
  EXPECT_EQ(parse_duration("0", "k"), Millis(0));
  EXPECT_EQ(parse_duration(1.5, "k"), Millis(1500));
  for (const json& bad :
       {json("30"), json("s"), json("5 s"), json("1.2.3s"), json(true), json(""), json("10d")}) {
    EXPECT_THROW((void)parse_duration(bad, "k"), ConfigError) << bad.dump();
  }
}

TEST(ConfigKeys, EveryLiteralDefaultParsesAndEveryKeyHasAParent) {
  for (const auto& key : config_keys()) {
    const std::string path(key.path);
    if (const auto value = config_default(path); value && key.type == "duration") {
      EXPECT_NO_THROW((void)parse_duration(*value, path)) << path;
    }
    const auto dot = path.rfind('.');
    if (dot != std::string::npos) {
      std::string parent = path.substr(0, dot);
      if (parent.ends_with("[]")) parent.resize(parent.size() - 2);
      EXPECT_NE(find_config_key(parent), nullptr) << path;
    }
    EXPECT_FALSE(key.description.empty()) << path;
  }
  EXPECT_EQ(closest_key("maxAtempts", {"maxAttempts", "maxBackoff"}), "maxAttempts");
  EXPECT_EQ(closest_key("frobnicate", {"maxAttempts", "maxBackoff"}), "");
}

}  // namespace
}  // namespace kafka_llm::pipeline
