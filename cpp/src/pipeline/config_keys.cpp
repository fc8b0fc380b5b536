#include "kafka_llm/pipeline/config_keys.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <stdexcept>

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::pipeline {

namespace {

// The one place every key, its type, default and meaning are written down.
constexpr std::array kKeys{
    ConfigKey{"messaging", "mapping", "", "KubeAI's messaging section, accepted as its Helm values are."},
    ConfigKey{"messaging.errorMaxBackoff", "duration", "30s",
              "Cap of a delay a provider asks for (Retry-After, retry-after-ms, x-ratelimit-reset-*)."},
    ConfigKey{"messaging.streams", "list", "(one stream: llm.requests, group kafka-llm)",
              "The request streams; each is a consumer group reading one request topic."},
    ConfigKey{"messaging.streams[].requestsURL", "kafka URL", "(required)",
              "`kafka://<consumer group>?topic=<request topic>`."},
    ConfigKey{"messaging.streams[].responsesURL", "kafka URL", "(required)", "`kafka://<response topic>`."},
    ConfigKey{"messaging.streams[].exactlyOnce", "boolean", "(`exactlyOnce`)",
              "Outputs and consumed offsets committed together in Kafka transactions; readers must use "
              "isolation.level=read_committed."},
    ConfigKey{"messaging.streams[].cancelURL", "kafka URL", "(none)",
              "`kafka://<control topic>`: records keyed by a request id cancel that request (skipped when "
              "queued, aborted when in flight). Every worker of the stream reads all of it."},
    ConfigKey{"messaging.streams[].cancelRetention", "duration", "1h",
              "How long a cancellation is remembered for requests not consumed yet; a worker starting "
              "reads the control topic back this far."},
    ConfigKey{"messaging.streams[].dlqURL", "kafka URL", "(`<request topic>.dlq`)",
              "`kafka://<dead-letter topic>`."},
    ConfigKey{"messaging.streams[].maxHandlers", "integer", "5000",
              "In-flight window of the stream: requests being worked on at once (at least 1)."},
    ConfigKey{"messaging.streams[].deadline", "duration", "(none)",
              "Default deadline of the stream's requests, from the record's timestamp; a request's own "
              "`deadline_ms`, `timeout_ms` or `x-deadline-ms` header replaces it."},
    ConfigKey{"messaging.streams[].ordering", "none | key", "none",
              "`key`: records with the same Kafka key are worked on one at a time, in offset order, and "
              "their outputs are keyed by it; records without a key are not ordered."},
    ConfigKey{"messaging.streams[].prompt", "mapping", "",
              "Prompt template applied before the provider call."},
    ConfigKey{"messaging.streams[].prompt.version", "string", "(required)",
              "Version of the template, carried on every output with the prompt hash."},
    ConfigKey{"messaging.streams[].prompt.system", "string", "",
              "System message prepended to chat requests."},
    ConfigKey{"messaging.streams[].prompt.template", "string", "",
              "Template of the user content; `{{input}}` is the request's prompt."},
    ConfigKey{"messaging.streams[].outputSchema", "JSON schema", "",
              "Outputs must validate against it; violations go to the dead-letter topic."},
    ConfigKey{"messaging.streams[].outputSchemaFile", "path", "",
              "The same, read from a JSON file (relative to the configuration file's directory)."},
    ConfigKey{"messaging.streams[].redact", "mapping", "", "PII redaction applied before the provider call."},
    ConfigKey{"messaging.streams[].redact.emails", "boolean", "false", "Redact e-mail addresses."},
    ConfigKey{"messaging.streams[].redact.phones", "boolean", "false", "Redact phone numbers."},
    ConfigKey{"messaging.streams[].redact.cards", "boolean", "false", "Redact payment card numbers."},
    ConfigKey{"messaging.streams[].redact.patterns", "list", "", "Extra rules: {name, regex, replacement}."},
    ConfigKey{"messaging.streams[].redact.patterns[].name", "string", "(required)",
              "Name of the rule (unique), counted in the redaction metrics."},
    ConfigKey{"messaging.streams[].redact.patterns[].regex", "string", "(required)",
              "RE2 regular expression to replace."},
    ConfigKey{"messaging.streams[].redact.patterns[].replacement", "string", "",
              "Replacement text (empty: [REDACTED])."},
    ConfigKey{"messaging.streams[].redact.fields", "list of strings", "",
              "JSON field names whose values are redacted wherever they appear."},
    ConfigKey{"messaging.streams[].humanReview", "mapping", "",
              "Sends a deterministic sample of successful outputs to a review topic."},
    ConfigKey{"messaging.streams[].humanReview.topic", "string", "(required)", "The review topic."},
    ConfigKey{"messaging.streams[].humanReview.sampleRate", "number", "(required)",
              "Share of outputs sampled, from 0 to 1."},
    ConfigKey{"messaging.streams[].dedupe", "mapping", "",
              "Serves a repeated prompt from the first one's result within a window."},
    ConfigKey{"messaging.streams[].dedupe.window", "duration", "(required)", "How long a result is reused."},
    ConfigKey{"kafka", "mapping", "",
              "librdkafka properties, passed through (sasl.*, ssl.*, ...); bootstrap.servers is required. "
              "A secret property (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`, ...) can "
              "be read from a file instead, e.g. a mounted Kubernetes secret: `sasl.password.file: "
              "/var/run/secrets/kafka/password` (its content, one trailing newline dropped; relative to "
              "the configuration file's directory)."},
    ConfigKey{"redis", "mapping", "", "Where results are stored."},
    ConfigKey{"redis.url", "URL", "redis://127.0.0.1:6379/0",
              "`redis://[[user]:password@]host[:port][/db]` or `unix:///path[?db=N]`; user and password "
              "percent-encoded (`%40` for `@`), as the service's redis-py reads them too."},
    ConfigKey{"redis.passwordFile", "path", "",
              "File holding the Redis password (one trailing newline dropped, any characters), added "
              "percent-encoded to a redis:// URL that has none; relative to the configuration file's "
              "directory."},
    ConfigKey{"redis.resultTTL", "duration", "5m", "Lifetime of a result record (at least 1ms)."},
    ConfigKey{"redis.keyPrefix", "string", "kafka-llm", "Result keys are `<keyPrefix>:result:<request_id>`."},
    ConfigKey{
        "providers", "list",
        "(local when KAFKA_LLM_PROVIDER_URL is set, openai and groq when OPENAI_API_KEY / GROQ_API_KEY are)",
        "The LLM providers; at least one."},
    ConfigKey{"providers[].name", "string", "(required)", "Unique name, used by requests and routes."},
    ConfigKey{"providers[].kind", "openai | anthropic | python",
              "(anthropic for a provider named anthropic, else openai)",
              "API spoken: OpenAI-compatible HTTP, Anthropic Messages, or an embedded Python callable."},
    ConfigKey{"providers[].baseURL", "URL",
              "(built in for openai and groq; else required except for kind python)",
              "http:// or https:// base of the API, e.g. https://api.openai.com/v1."},
    ConfigKey{"providers[].apiKeyEnv", "string", "(OPENAI_API_KEY for openai, GROQ_API_KEY for groq)",
              "Environment variable holding the API key; when given it must be set."},
    ConfigKey{"providers[].apiKey", "string", "",
              "The API key itself (a secret; prefer apiKeyEnv or apiKeyFile)."},
    ConfigKey{"providers[].apiKeyFile", "path", "",
              "File holding the API key, e.g. a mounted Kubernetes secret (one trailing newline dropped; "
              "relative to the configuration file's directory). At most one of apiKey, apiKeyEnv and "
              "apiKeyFile."},
    ConfigKey{"providers[].unixSocket", "path", "", "Sidecar: send the HTTP requests over this Unix socket."},
    ConfigKey{"providers[].models", "list of strings", "",
              "Model names or globs (`gpt-4*`) routed to this provider."},
    ConfigKey{"providers[].headers", "mapping of strings", "", "Extra HTTP headers on every call."},
    ConfigKey{"providers[].rpm", "number", "0", "Requests per minute (0: unlimited)."},
    ConfigKey{"providers[].tpm", "number", "0", "Tokens per minute (0: unlimited)."},
    ConfigKey{"providers[].shared", "boolean", "false",
              "Keep the rpm/tpm buckets in Redis, shared by all workers."},
    ConfigKey{"providers[].connectTimeout", "duration", "10s", "TCP/TLS connect timeout (at least 1ms)."},
    ConfigKey{"providers[].firstByteTimeout", "duration", "60s",
              "Time allowed until the first response byte (at least 1ms)."},
    ConfigKey{"providers[].maxConcurrency", "integer", "0", "Embedded providers: worker threads (0: 1)."},
    ConfigKey{"retry", "mapping", "", "Retries of retryable failures (full-jitter exponential backoff)."},
    ConfigKey{"retry.maxAttempts", "integer", "6", "Attempts in total, the first included (at least 1)."},
    ConfigKey{"retry.initialBackoff", "duration", "500ms", "Backoff ceiling of the first retry."},
    ConfigKey{"retry.maxBackoff", "duration", "30s", "Cap of the backoff ceiling."},
    ConfigKey{"retry.requestTimeout", "duration", "120s",
              "Deadline of a request over all its attempts (at least 1ms)."},
    ConfigKey{"retry.maxMalformedRetries", "integer", "1", "Retries allowed for malformed 2xx bodies."},
    ConfigKey{"circuit", "mapping", "", "Per-provider circuit breaker."},
    ConfigKey{"circuit.failureThreshold", "integer", "20",
              "Consecutive retryable failures that open the circuit (at least 1)."},
    ConfigKey{"circuit.failureRatio", "number", "0.5",
              "... or this share of failures in the window, from 0 to 1 (0: off)."},
    ConfigKey{"circuit.minimumOutcomes", "integer", "20",
              "Outcomes the window must hold before the ratio counts (at least 1)."},
    ConfigKey{"circuit.window", "duration", "10s", "Window of the failure ratio (at least 10ms)."},
    ConfigKey{"circuit.cooldown", "duration", "2s", "First open period (at least 1ms)."},
    ConfigKey{"circuit.maxCooldown", "duration", "60s", "Cap of the doubling open period (at least 1ms)."},
    ConfigKey{"defaultProvider", "string", "(the first provider)",
              "Provider of requests that name none and match no route."},
    ConfigKey{"modelVersion", "string", "", "Header model_version on outputs (empty: the model's name)."},
    ConfigKey{"maxRequestBytes", "integer", "1048576",
              "Larger request records are dead-lettered (at least 1)."},
    ConfigKey{"commitInterval", "duration", "200ms",
              "How often finished offsets are committed (at least 1ms)."},
    ConfigKey{"drainTimeout", "duration", "10s", "How long stop() waits for in-flight requests."},
    ConfigKey{"exactlyOnce", "boolean", "false",
              "Exactly-once output for every stream that does not say otherwise (a transactional producer "
              "per worker)."},
    ConfigKey{
        "transactionalId", "string", "",
        "Stable transactional.id prefix of this worker (e.g. its pod name; empty: one made per process): a "
        "restarted worker then "
        "fences its predecessor's open transaction at once instead of after transaction.timeout.ms."},
    ConfigKey{"lagInterval", "duration", "5s",
              "How often the consumer lag of the assigned partitions is asked of the brokers (at least "
              "100ms)."},
    ConfigKey{
        "tracing", "mapping", "",
        "OpenTelemetry spans of the worker (consume, provider calls, publish), exported over OTLP/HTTP."},
    ConfigKey{
        "tracing.otlpEndpoint", "URL",
        "(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else none)",
        "OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; without one no span is made "
        "and trace headers pass through unchanged."},
    ConfigKey{"tracing.serviceName", "string", "kafka-llm-worker", "Resource attribute service.name."},
    ConfigKey{"tracing.sampleRatio", "number", "1",
              "Share of new root traces recorded (requests without a traceparent), from 0 to 1; a "
              "request with a traceparent follows its sampled flag."},
    ConfigKey{"tracing.exportInterval", "duration", "1s",
              "How often queued spans are sent (at least 10ms); a full batch of 512 goes at once."},
    ConfigKey{"tracing.maxQueueSize", "integer", "2048",
              "Spans waiting for export (at least 1); more are dropped and counted in "
              "kafka_llm_spans_dropped_total."},
};

constexpr std::array kEnvOverrides{
    ConfigEnvOverride{
        "KAFKA_LLM_BOOTSTRAP_SERVERS", "kafka.bootstrap.servers",
        "Replaces the brokers (wins over KAFKA_BOOTSTRAP_SERVERS); `kafka-llm dev up` prints it."},
    ConfigEnvOverride{"KAFKA_BOOTSTRAP_SERVERS", "kafka.bootstrap.servers",
                      "Replaces the brokers (when KAFKA_LLM_BOOTSTRAP_SERVERS is unset)."},
    ConfigEnvOverride{"REQUEST_TOPIC", "messaging.streams[0].requestsURL",
                      "Request topic of the first stream."},
    ConfigEnvOverride{"RESPONSE_TOPIC", "messaging.streams[0].responsesURL",
                      "Response topic of the first stream."},
    ConfigEnvOverride{"DLQ_TOPIC", "messaging.streams[0].dlqURL", "Dead-letter topic of the first stream."},
    ConfigEnvOverride{"KAFKA_GROUP_ID", "messaging.streams[0].requestsURL",
                      "Consumer group of the first stream."},
    ConfigEnvOverride{"KAFKA_LLM_REDIS_URL", "redis.url",
                      "Replaces the Redis URL (wins over REDIS_URL, REDIS_HOST and REDIS_PORT); "
                      "`kafka-llm dev up` prints it."},
    ConfigEnvOverride{"REDIS_URL", "redis.url",
                      "Replaces the Redis URL (when KAFKA_LLM_REDIS_URL is unset)."},
    ConfigEnvOverride{"REDIS_HOST", "redis.url",
                      "With REDIS_PORT, `redis://<host>:<port>/0` (when neither Redis URL variable is set)."},
    ConfigEnvOverride{"REDIS_PORT", "redis.url", "See REDIS_HOST (default 6379)."},
    ConfigEnvOverride{"KAFKA_LLM_PROVIDER_URL", "providers",
                      "When no provider is configured, adds an OpenAI-compatible provider named `local` "
                      "with this base URL and no key, first (so the default provider); `kafka-llm dev "
                      "up` prints the mock provider's."},
    ConfigEnvOverride{"OPENAI_API_KEY", "providers[].apiKeyEnv",
                      "Key of the built-in openai provider; adds it when no provider is configured."},
    ConfigEnvOverride{"GROQ_API_KEY", "providers[].apiKeyEnv",
                      "Key of the built-in groq provider; adds it when no provider is configured."},
    ConfigEnvOverride{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "tracing.otlpEndpoint",
                      "The traces URL, when tracing.otlpEndpoint is absent."},
    ConfigEnvOverride{"OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.otlpEndpoint",
                      "Base URL (`/v1/traces` is appended), when neither of the above is set."},
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

constexpr double kUnitMs[] = {1e-6, 1e-3, 1e-3, 1.0, 1000.0, 60'000.0, 3'600'000.0};
constexpr std::string_view kUnits[] = {"ns", "us", "µs", "ms", "s", "m", "h"};

// The length of the unit at the start of `text` and its size in ms, longest match first ("ms" before "m").
std::optional<std::pair<std::size_t, double>> unit_at(std::string_view text) {
  std::optional<std::pair<std::size_t, double>> best;
  for (std::size_t i = 0; i < std::size(kUnits); ++i) {
    if (text.starts_with(kUnits[i]) && (!best || kUnits[i].size() > best->first)) {
      best = std::pair{kUnits[i].size(), kUnitMs[i]};
    }
  }
  return best;
}

// Sums `<number><unit>` terms; nullopt when `text` is not made of them only.
std::optional<double> duration_text_ms(std::string_view text) {
  double total = 0;
  while (!text.empty()) {
    std::size_t digits = 0;
    bool dot = false;
    while (digits < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[digits])) != 0 || (text[digits] == '.' && !dot))) {
      dot = dot || text[digits] == '.';
      ++digits;
    }
    if (digits == 0 || text.substr(0, digits) == ".") return std::nullopt;
    const auto unit = unit_at(text.substr(digits));
    if (!unit) return std::nullopt;
    total += std::stod(std::string(text.substr(0, digits))) * unit->second;
    text.remove_prefix(digits + unit->first);
  }
  return total;
}

}  // namespace

std::span<const ConfigKey> config_keys() noexcept {
  return kKeys;
}

std::span<const ConfigEnvOverride> config_env_overrides() noexcept {
  return kEnvOverrides;
}

const ConfigKey* find_config_key(std::string_view path) noexcept {
  const auto it =
      std::find_if(kKeys.begin(), kKeys.end(), [&](const ConfigKey& k) { return k.path == path; });
  return it == kKeys.end() ? nullptr : &*it;
}

std::vector<std::string_view> config_children(std::string_view table_path) {
  std::vector<std::string_view> out;
  for (const auto& key : kKeys) {
    std::string_view rest = key.path;
    if (!table_path.empty()) {
      if (!rest.starts_with(table_path) || rest.size() <= table_path.size() + 1 ||
          rest[table_path.size()] != '.') {
        continue;
      }
      rest.remove_prefix(table_path.size() + 1);
    }
    if (rest.find_first_of(".[") == std::string_view::npos) out.push_back(rest);
  }
  return out;
}

std::optional<nlohmann::json> config_default(std::string_view path) {
  const ConfigKey* key = find_config_key(path);
  if (key == nullptr) throw std::logic_error("no configuration key " + std::string(path));
  const std::string_view text = key->default_value;
  if (text.starts_with("(")) return std::nullopt;
  if (key->type == "integer" || key->type == "number" || key->type == "boolean") {
    return nlohmann::json::parse(text);
  }
  return nlohmann::json(std::string(text));
}

std::string closest_key(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  std::size_t best_distance = 0;
  for (const auto candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (best.empty() || d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  // A typo is a few edits away; anything farther is another word, not worth suggesting.
  const std::size_t allowed = std::max<std::size_t>(2, word.size() / 3);
  return best_distance <= allowed ? std::string(best) : std::string();
}

std::chrono::milliseconds parse_duration(const nlohmann::json& value, const std::string& key) {
  const std::string expected = "must be a duration like 30s or 500ms";
  if (value.is_number()) {
    const double seconds = value.get<double>();
    if (seconds < 0) throw ConfigError(key, "must not be negative");
    return std::chrono::milliseconds(std::llround(seconds * 1000));
  }
  if (!value.is_string()) throw ConfigError(key, expected + ", got " + value.dump());
  std::string text = value.get<std::string>();
  const auto first = text.find_first_not_of(" \t");
  text = first == std::string::npos ? "" : text.substr(first, text.find_last_not_of(" \t") - first + 1);
  if (text == "0") return std::chrono::milliseconds(0);
  const auto total = text.empty() ? std::nullopt : duration_text_ms(text);
  if (!total) throw ConfigError(key, expected + ", got " + value.dump());
  return std::chrono::milliseconds(std::llround(*total));
}

}  // namespace kafka_llm::pipeline
