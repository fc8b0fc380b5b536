#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/policy/retry_policy.hpp"

namespace kafka_llm::features {
class JsonSchema;
class PromptTemplate;
class Redactor;
}  // namespace kafka_llm::features

namespace kafka_llm::pipeline {

using Millis = std::chrono::milliseconds;

/// `humanReview`: a deterministic share of successful outputs also goes to a review topic.
struct HumanReviewConfig {
  std::string topic;
  double sample_rate = 0;  ///< 0..1, see features::sampled_for_review
};

/// `ordering`: whether records of one Kafka key are worked on one at a time, in offset order.
enum class Ordering : std::uint8_t { kNone, kKey };

/// One request stream: a consumer group reading a request topic (`messaging.streams[]`, see
/// docs/configuration.md), with its optional streaming-architecture features. The compiled features are
/// immutable and shared by copies of the configuration.
struct StreamConfig {
  std::string group;
  std::string requests_topic;
  std::string responses_topic;
  std::string dlq_topic;
  std::size_t max_handlers = 5000;
  /// `exactlyOnce`: outputs and consumed offsets committed together in transactions
  /// (docs/guarantees.md, "Exactly-once").
  bool exactly_once = false;
  /// `cancelURL`: the control topic whose records (keyed by request id) cancel requests; empty when
  /// the stream has none (docs/guarantees.md, "Cancellation").
  std::string cancel_topic;
  /// `cancelRetention`: how long a cancellation is remembered, and how far back a starting worker reads.
  Millis cancel_retention{3'600'000};
  /// `deadline`: a request carrying none of its own must be answered this long after its record's
  /// timestamp (docs/guarantees.md, "Deadlines"); nullopt: only the retry policy's limits apply.
  std::optional<Millis> deadline;
  /// `ordering: key`: one record of a key at a time, in offset order; its outputs are keyed by the
  /// record's key (docs/guarantees.md, "Per-key ordering").
  Ordering ordering = Ordering::kNone;

  std::shared_ptr<const features::PromptTemplate> prompt;  ///< `prompt`; null when none
  std::shared_ptr<const features::Redactor> redactor;      ///< `redact`; null when none
  /// `outputSchema`, or the JSON file `outputSchemaFile` names; null when none.
  std::shared_ptr<const features::JsonSchema> output_schema;
  std::optional<HumanReviewConfig> human_review;  ///< `humanReview`
  std::optional<Millis> dedupe_window;            ///< `dedupe.window`
  /// The features in normalized form (durations in ms, outputSchemaFile absolute), for views.
  nlohmann::json features = nlohmann::json::object();
};

enum class ProviderKind : std::uint8_t { kOpenAI, kAnthropic, kEmbedded };

struct ProviderConfig {
  std::string name;
  ProviderKind kind = ProviderKind::kOpenAI;
  std::string base_url;     ///< e.g. https://api.openai.com/v1 (no trailing slash)
  std::string unix_socket;  ///< sidecar: HTTP over this Unix socket
  std::string api_key;      ///< the secret itself (resolved from apiKeyEnv); never logged
  kafka_llm::HeaderList extra_headers;
  std::vector<std::string> models;  ///< model names or globs (`gpt-4*`) routed here
  double rpm = 0;                   ///< requests per minute; 0 = unlimited
  double tpm = 0;                   ///< tokens per minute; 0 = unlimited
  bool shared_limits = false;       ///< buckets live in Redis, shared by all workers
  Millis connect_timeout{10'000};
  Millis first_byte_timeout{60'000};
  std::size_t max_concurrency = 0;  ///< embedded providers: worker threads (0 = 1)
};

struct CircuitConfig {
  int failure_threshold = 20;  ///< consecutive retryable failures that open the circuit
  double failure_ratio = 0.5;  ///< ... or this share of the outcomes in `window` (0: never) ...
  int minimum_outcomes = 20;   ///< ... once the window holds at least this many outcomes
  Millis window{10'000};
  Millis cooldown{2'000};
  Millis max_cooldown{60'000};
};

struct RedisConfig {
  std::string url = "redis://127.0.0.1:6379/0";
  std::string key_prefix = "kafka-llm";
  Millis result_ttl{300'000};
  Millis command_timeout{2'000};
};

/// `tracing`: OpenTelemetry spans of the worker (docs/operations.md, "Tracing").
struct TracingConfig {
  /// `otlpEndpoint` (else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT +
  /// `/v1/traces`): the OTLP/HTTP traces URL; empty: no spans.
  std::string otlp_endpoint;
  std::string service_name = "kafka-llm-worker";
  double sample_ratio = 1.0;  ///< share of new root traces recorded (a parent's sampled flag rules)
  Millis export_interval{1'000};
  std::size_t max_queue = 2'048;

  bool enabled() const noexcept { return !otlp_endpoint.empty(); }
};

/// Where a configuration document comes from: the file named in errors (empty: none), whose
/// directory `outputSchemaFile` is relative to (else the working directory), and the environment
/// whose variables override the document (passed in, never read by the parser itself).
struct ConfigSource {
  std::string file;
  std::map<std::string, std::string, std::less<>> env;
};

struct PipelineConfig {
  kafka::Properties kafka;  ///< librdkafka properties, passed through (bootstrap.servers, sasl.*, ssl.* …)
  std::vector<StreamConfig> streams;
  RedisConfig redis;
  std::vector<ProviderConfig> providers;
  std::string default_provider;  ///< used when neither the record nor a model route names one
  policy::RetryConfig retry;     ///< request_timeout is the per-request deadline over all attempts
  CircuitConfig circuit;
  std::size_t max_request_bytes = 1 << 20;
  std::string model_version;  ///< header `model_version` on outputs; default: the provider's model name
  Millis commit_interval{200};
  Millis drain_timeout{10'000};
  /// `exactlyOnce`: the default of every stream's `exactlyOnce`.
  bool exactly_once = false;
  /// `transactionalId`: the exactly-once producer's transactional.id prefix; empty: one made per process.
  std::string transactional_id;
  /// `lagInterval`: how often the consumer lag is asked of the brokers.
  Millis lag_interval{5'000};
  TracingConfig tracing;

  /// Parses and checks the configuration document as the user wrote it (YAML loaded into JSON:
  /// `messaging.streams[].requestsURL`, `baseURL`, durations like `30s`), applies the environment
  /// overrides of `source.env` and the defaults of the key table (config_keys.hpp), and compiles
  /// the stream features. Throws ConfigError naming the user's key path, the reason and
  /// `source.file`; an unknown key names the closest known one. No secret appears in an error.
  static PipelineConfig parse(const nlohmann::json& document, const ConfigSource& source = {});

  /// The configuration in normalized form (internal names, durations in ms, secrets included):
  /// what the Python `Config` view is built from.
  nlohmann::json view() const;

  /// Every secret in the configuration (API keys, SASL/SSL passwords, the Redis password),
  /// so that errors and logs can be scrubbed of them.
  std::vector<std::string> secrets() const;
  const ProviderConfig* find_provider(std::string_view name) const noexcept;
  /// The provider a model routes to: the first whose `models` match, else the default provider.
  const ProviderConfig* route_model(std::string_view model) const noexcept;
  /// The `provider` and `model` labels of a request's metrics, bounded by this configuration
  /// whatever the request named: a configured provider's name, else "other" ("" stays ""); the
  /// model as that provider's `models` hold it (the literal name, else the first glob matching
  /// it), else "other" (a provider without `models`, an unknown provider; "" stays "").
  std::pair<std::string, std::string> metric_labels(std::string_view provider, std::string_view model) const;
};

}  // namespace kafka_llm::pipeline
