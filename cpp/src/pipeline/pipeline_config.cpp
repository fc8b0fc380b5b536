#include "kafka_llm/pipeline/pipeline_config.hpp"

#include <fnmatch.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/features/feature_error.hpp"
#include "kafka_llm/features/json_schema.hpp"
#include "kafka_llm/features/prompt_template.hpp"
#include "kafka_llm/features/redactor.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/redis/redis_client.hpp"

namespace kafka_llm::pipeline {

namespace {

using nlohmann::json;

/// Reads typed fields of one JSON object, naming `<path>.<field>` in every error.
class Reader {
 public:
  Reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) throw ConfigError(path_.empty() ? "config" : path_, "must be a mapping");
  }

  std::string key(std::string_view field) const {
    return path_.empty() ? std::string(field) : path_ + "." + std::string(field);
  }
  const json* find(std::string_view field) const {
    auto it = object_.find(field);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  std::string string(std::string_view field, std::string fallback, bool required = false) const {
    const json* v = find(field);
    if (v == nullptr) {
      if (required) throw ConfigError(key(field), "is required");
      return fallback;
    }
    if (!v->is_string()) throw ConfigError(key(field), "must be a string");
    if (required && v->get_ref<const std::string&>().empty())
      throw ConfigError(key(field), "must not be empty");
    return v->get<std::string>();
  }

  double number(std::string_view field, double fallback, double min = 0) const {
    const json* v = find(field);
    if (v == nullptr) return fallback;
    if (!v->is_number()) throw ConfigError(key(field), "must be a number");
    const double d = v->get<double>();
    if (d < min)
      throw ConfigError(key(field), "must be at least " + std::to_string(static_cast<long long>(min)));
    return d;
  }

  Millis millis(std::string_view field, Millis fallback, std::int64_t min = 0) const {
    const json* v = find(field);
    if (v == nullptr) return fallback;
    if (!v->is_number()) throw ConfigError(key(field), "must be a duration in milliseconds");
    const auto ms = static_cast<std::int64_t>(v->get<double>());
    if (ms < min) throw ConfigError(key(field), "must be at least " + std::to_string(min) + " ms");
    return Millis(ms);
  }

  bool boolean(std::string_view field, bool fallback) const {
    const json* v = find(field);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) throw ConfigError(key(field), "must be true or false");
    return v->get<bool>();
  }

 private:
  const json& object_;
  std::string path_;
};

std::string property_value(const json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  if (v.is_number()) return v.dump();
  throw ConfigError(key, "must be a string, number or boolean");
}

ProviderKind parse_kind(const std::string& kind, const std::string& key) {
  if (kind == "openai") return ProviderKind::kOpenAI;
  if (kind == "anthropic") return ProviderKind::kAnthropic;
  if (kind == "python" || kind == "embedded") return ProviderKind::kEmbedded;
  throw ConfigError(key, "unknown provider kind \"" + kind + "\" (accepted: openai, anthropic, python)");
}

// Builds a feature, turning its own error into a ConfigError that names the full key.
template <class Build>
auto build_feature(const std::string& section, Build&& build) {
  try {
    return build();
  } catch (const features::FeatureConfigError& e) {
    throw ConfigError(section + "." + e.field(), e.what());
  }
}

std::vector<std::string> string_list(const Reader& r, std::string_view field) {
  std::vector<std::string> out;
  const json* list = r.find(field);
  if (list == nullptr) return out;
  if (!list->is_array()) throw ConfigError(r.key(field), "must be a list of strings");
  for (std::size_t i = 0; i < list->size(); ++i) {
    if (!(*list)[i].is_string()) {
      throw ConfigError(r.key(field) + "[" + std::to_string(i) + "]", "must be a string");
    }
    out.push_back((*list)[i].get<std::string>());
  }
  return out;
}

// The streaming-architecture features of one stream (DESIGN 8). Their keys keep the YAML names.
void parse_stream_features(const Reader& s, StreamConfig& stream) {
  if (const json* prompt = s.find("prompt")) {
    const Reader p(*prompt, s.key("prompt"));
    auto version = p.string("version", "", true);
    auto system = p.string("system", "");
    auto text = p.string("template", "");
    stream.prompt = build_feature(s.key("prompt"), [&] {
      return std::make_shared<const features::PromptTemplate>(
          features::PromptTemplate::compile(std::move(version), std::move(system), text));
    });
  }
  const json* schema = s.find("outputSchema");
  const json* schema_file = s.find("outputSchemaFile");
  if (schema != nullptr && schema_file != nullptr) {
    throw ConfigError(s.key("outputSchemaFile"), "give either outputSchema or outputSchemaFile, not both");
  }
  if (schema != nullptr || schema_file != nullptr) {
    std::string key = s.key(schema != nullptr ? "outputSchema" : "outputSchemaFile");
    json document;
    if (schema != nullptr) {
      document = *schema;
    } else {
      const std::string path = s.string("outputSchemaFile", "", true);
      std::ifstream in(path, std::ios::binary);
      if (!in) throw ConfigError(key, "cannot read " + path + ": " + std::strerror(errno));
      std::ostringstream text;
      text << in.rdbuf();
      document = json::parse(text.str(), nullptr, false);
      if (document.is_discarded()) throw ConfigError(key, path + " is not valid JSON");
    }
    try {
      stream.output_schema =
          std::make_shared<const features::JsonSchema>(features::JsonSchema::compile(document));
    } catch (const std::invalid_argument& e) {
      // The schema's message is "<JSON pointer in the schema>: <reason>"; the root's pointer is "".
      std::string_view message = e.what();
      const std::size_t colon = message.find(": ");
      std::string where =
          colon == std::string_view::npos ? std::string() : std::string(message.substr(0, colon));
      std::string reason(colon == std::string_view::npos ? message : message.substr(colon + 2));
      throw ConfigError(
          std::move(key),
          "invalid JSON schema at " + (where.empty() ? std::string("the root") : where) + ": " + reason);
    }
  }
  if (const json* redact = s.find("redact")) {
    const Reader r(*redact, s.key("redact"));
    features::RedactionRules rules;
    rules.emails = r.boolean("emails", false);
    rules.phones = r.boolean("phones", false);
    rules.cards = r.boolean("cards", false);
    if (const json* patterns = r.find("patterns")) {
      if (!patterns->is_array())
        throw ConfigError(r.key("patterns"), "must be a list of {name, regex, replacement}");
      for (std::size_t i = 0; i < patterns->size(); ++i) {
        const Reader p((*patterns)[i], r.key("patterns") + "[" + std::to_string(i) + "]");
        rules.patterns.push_back(
            {p.string("name", "", true), p.string("regex", "", true), p.string("replacement", "")});
      }
    }
    rules.fields = string_list(r, "fields");
    if (rules.emails || rules.phones || rules.cards || !rules.patterns.empty() || !rules.fields.empty()) {
      stream.redactor = build_feature(
          s.key("redact"), [&] { return std::make_shared<const features::Redactor>(std::move(rules)); });
    }
  }
  if (const json* review = s.find("humanReview")) {
    const Reader h(*review, s.key("humanReview"));
    HumanReviewConfig config;
    config.topic = h.string("topic", "", true);
    if (h.find("sampleRate") == nullptr) throw ConfigError(h.key("sampleRate"), "is required");
    config.sample_rate = h.number("sampleRate", 0);
    if (config.sample_rate > 1) throw ConfigError(h.key("sampleRate"), "must be between 0 and 1");
    stream.human_review = std::move(config);
  }
  if (const json* dedupe = s.find("dedupe")) {
    const Reader d(*dedupe, s.key("dedupe"));
    if (d.find("window_ms") == nullptr) throw ConfigError(d.key("window"), "is required");
    stream.dedupe_window = d.millis("window_ms", Millis(0), 1);
  }
}

}  // namespace

PipelineConfig PipelineConfig::from_json(const json& root) {
  PipelineConfig config;
  Reader top(root, "");

  if (const json* kafka = top.find("kafka")) {
    if (!kafka->is_object()) throw ConfigError("kafka", "must be a mapping of librdkafka properties");
    for (const auto& [name, value] : kafka->items()) {
      kafka::set_property(config.kafka, name, property_value(value, "kafka." + name));
    }
  }
  auto has_bootstrap = std::any_of(config.kafka.begin(), config.kafka.end(), [](const auto& p) {
    return p.first == "bootstrap.servers" && !p.second.empty();
  });
  if (!has_bootstrap) throw ConfigError("kafka.bootstrap.servers", "is required");
  (void)kafka::make_conf(config.kafka);  // unknown or invalid librdkafka properties fail now, named

  const json* streams = top.find("streams");
  if (streams == nullptr || !streams->is_array() || streams->empty()) {
    throw ConfigError("messaging.streams", "at least one stream is required");
  }
  for (std::size_t i = 0; i < streams->size(); ++i) {
    Reader s((*streams)[i], "messaging.streams[" + std::to_string(i) + "]");
    StreamConfig stream;
    stream.group = s.string("group", "", true);
    stream.requests_topic = s.string("requests_topic", "", true);
    stream.responses_topic = s.string("responses_topic", "", true);
    stream.dlq_topic = s.string("dlq_topic", "", true);
    stream.max_handlers = static_cast<std::size_t>(s.number("max_handlers", 5000, 1));
    parse_stream_features(s, stream);
    config.streams.push_back(std::move(stream));
  }

  if (const json* redis = top.find("redis")) {
    Reader r(*redis, "redis");
    config.redis.url = r.string("url", config.redis.url);
    config.redis.key_prefix = r.string("key_prefix", config.redis.key_prefix);
    config.redis.result_ttl = r.millis("result_ttl_ms", config.redis.result_ttl, 1);
    config.redis.command_timeout = r.millis("command_timeout_ms", config.redis.command_timeout, 1);
  }
  (void)redis::parse_redis_url(config.redis.url, "redis.url");

  const json* providers = top.find("providers");
  if (providers == nullptr || !providers->is_array() || providers->empty()) {
    throw ConfigError("providers", "at least one provider is required");
  }
  for (std::size_t i = 0; i < providers->size(); ++i) {
    const std::string path = "providers[" + std::to_string(i) + "]";
    Reader p((*providers)[i], path);
    ProviderConfig provider;
    provider.name = p.string("name", "", true);
    if (config.find_provider(provider.name) != nullptr) {
      throw ConfigError(p.key("name"), "duplicate provider name \"" + provider.name + "\"");
    }
    provider.kind = parse_kind(p.string("kind", "openai"), p.key("kind"));
    provider.unix_socket = p.string("unix_socket", "");
    provider.base_url = p.string("base_url", "", provider.kind != ProviderKind::kEmbedded);
    while (!provider.base_url.empty() && provider.base_url.back() == '/') provider.base_url.pop_back();
    if (provider.kind != ProviderKind::kEmbedded && !provider.base_url.starts_with("http://") &&
        !provider.base_url.starts_with("https://")) {
      throw ConfigError(p.key("base_url"), "must start with http:// or https://");
    }
    provider.api_key = p.string("api_key", "");
    if (const json* headers = p.find("headers")) {
      if (!headers->is_object()) throw ConfigError(p.key("headers"), "must be a mapping");
      for (const auto& [name, value] : headers->items()) {
        if (!value.is_string()) throw ConfigError(p.key("headers") + "." + name, "must be a string");
        provider.extra_headers.emplace_back(name, value.get<std::string>());
      }
    }
    if (const json* models = p.find("models")) {
      if (!models->is_array()) throw ConfigError(p.key("models"), "must be a list of model names");
      for (const auto& m : *models) {
        if (!m.is_string()) throw ConfigError(p.key("models"), "must be a list of strings");
        provider.models.push_back(m.get<std::string>());
      }
    }
    provider.rpm = p.number("rpm", 0);
    provider.tpm = p.number("tpm", 0);
    provider.shared_limits = p.boolean("shared", false);
    provider.connect_timeout = p.millis("connect_timeout_ms", provider.connect_timeout, 1);
    provider.first_byte_timeout = p.millis("first_byte_timeout_ms", provider.first_byte_timeout, 1);
    provider.max_concurrency = static_cast<std::size_t>(p.number("max_concurrency", 0));
    config.providers.push_back(std::move(provider));
  }
  config.default_provider = top.string("default_provider", config.providers.front().name);
  if (config.find_provider(config.default_provider) == nullptr) {
    throw ConfigError("default_provider",
                      "names no configured provider: \"" + config.default_provider + "\"");
  }

  if (const json* retry = top.find("retry")) {
    Reader r(*retry, "retry");
    config.retry.max_attempts = static_cast<int>(r.number("max_attempts", config.retry.max_attempts, 1));
    config.retry.initial_backoff = r.millis("initial_backoff_ms", config.retry.initial_backoff);
    config.retry.max_backoff = r.millis("max_backoff_ms", config.retry.max_backoff);
    config.retry.error_max_backoff = r.millis("error_max_backoff_ms", config.retry.error_max_backoff);
    config.retry.request_timeout = r.millis("request_timeout_ms", config.retry.request_timeout, 1);
    config.retry.max_malformed_retries =
        static_cast<int>(r.number("max_malformed_retries", config.retry.max_malformed_retries));
  }
  try {
    (void)policy::RetryPolicy(config.retry);
  } catch (const std::invalid_argument& e) {
    throw ConfigError("retry", e.what());
  }
  if (const json* circuit = top.find("circuit")) {
    Reader c(*circuit, "circuit");
    config.circuit.failure_threshold =
        static_cast<int>(c.number("failure_threshold", config.circuit.failure_threshold, 1));
    config.circuit.failure_ratio = c.number("failure_ratio", config.circuit.failure_ratio);
    if (config.circuit.failure_ratio > 1) {
      throw ConfigError("circuit.failure_ratio", "must be between 0 and 1 (0 turns the ratio off)");
    }
    config.circuit.minimum_outcomes =
        static_cast<int>(c.number("minimum_outcomes", config.circuit.minimum_outcomes, 1));
    config.circuit.window = c.millis("window_ms", config.circuit.window, 10);
    config.circuit.cooldown = c.millis("cooldown_ms", config.circuit.cooldown, 1);
    config.circuit.max_cooldown = c.millis("max_cooldown_ms", config.circuit.max_cooldown, 1);
  }
  config.max_request_bytes = static_cast<std::size_t>(top.number("max_request_bytes", 1 << 20, 1));
  config.model_version = top.string("model_version", "");
  config.commit_interval = top.millis("commit_interval_ms", config.commit_interval, 1);
  config.drain_timeout = top.millis("drain_timeout_ms", config.drain_timeout);
  config.exactly_once = top.boolean("exactly_once", false);
  return config;
}

std::vector<std::string> PipelineConfig::secrets() const {
  std::vector<std::string> out;
  for (const auto& p : providers) {
    if (!p.api_key.empty()) out.push_back(p.api_key);
  }
  for (const auto& [name, value] : kafka) {
    if (kafka::is_secret_property(name) && !value.empty()) out.push_back(value);
  }
  auto redis_options = redis::parse_redis_url(redis.url);
  if (!redis_options.password.empty()) out.push_back(redis_options.password);
  return out;
}

const ProviderConfig* PipelineConfig::find_provider(std::string_view name) const noexcept {
  for (const auto& p : providers) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const ProviderConfig* PipelineConfig::route_model(std::string_view model) const noexcept {
  const std::string m(model);
  for (const auto& p : providers) {
    for (const auto& pattern : p.models) {
      if (fnmatch(pattern.c_str(), m.c_str(), 0) == 0) return &p;
    }
  }
  return find_provider(default_provider);
}

}  // namespace kafka_llm::pipeline
