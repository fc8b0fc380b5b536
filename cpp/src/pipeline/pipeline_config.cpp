#include "kafka_llm/pipeline/pipeline_config.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/features/feature_error.hpp"
#include "kafka_llm/features/json_schema.hpp"
#include "kafka_llm/features/prompt_template.hpp"
#include "kafka_llm/features/redactor.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/pipeline/config_keys.hpp"
#include "kafka_llm/redis/redis_client.hpp"

namespace kafka_llm::pipeline {

namespace {

using nlohmann::json;
using Environment = std::map<std::string, std::string, std::less<>>;

// Providers known by name: their base URL and the variable holding their key.
struct BuiltinProvider {
  std::string_view name;
  std::string_view base_url;
  std::string_view key_env;
};
constexpr std::array kBuiltinProviders{
    BuiltinProvider{"openai", "https://api.openai.com/v1", "OPENAI_API_KEY"},
    BuiltinProvider{"groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"},
};

// The provider KAFKA_LLM_PROVIDER_URL adds when the file configures none.
constexpr std::string_view kLocalProvider = "local";

const BuiltinProvider* builtin_provider(std::string_view name) {
  const auto* it = std::find_if(kBuiltinProviders.begin(), kBuiltinProviders.end(),
                                [&](const BuiltinProvider& b) { return b.name == name; });
  return it == kBuiltinProviders.end() ? nullptr : it;
}

std::string env_value(const Environment& env, std::string_view name) {
  const auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

std::string describe_type(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "a mapping";
  return "null";
}

std::string format_number(double d) {
  if (d == std::floor(d)) return std::to_string(static_cast<long long>(d));
  std::ostringstream out;
  out << d;
  return out.str();
}

/// One mapping of the document: typed reads that name `<path>.<field>` in every error, defaults
/// from the key table (`table` is the mapping's path there), and no key the table does not know.
class Section {
 public:
  Section(const json* object, std::string path, std::string table)
      : object_(object == nullptr || object->is_null() ? empty() : *object),
        path_(std::move(path)),
        table_(std::move(table)) {
    if (!object_.is_object()) throw ConfigError(path_.empty() ? "config" : path_, "must be a mapping");
    const auto known = config_children(table_);
    for (const auto& [name, value] : object_.items()) {
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      const std::string suggestion = closest_key(name, known);
      std::string list;
      for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw ConfigError(key(name), suggestion.empty() ? "unknown key (known: " + list + ")"
                                                      : "unknown key; did you mean " + suggestion + "?");
    }
  }

  std::string key(std::string_view field) const {
    return path_.empty() ? std::string(field) : path_ + "." + std::string(field);
  }
  const json* find(std::string_view field) const {
    auto it = object_.find(field);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  Section child(std::string_view field) const { return {find(field), key(field), table_key(field)}; }
  /// Item `index` of the list `list` (a list of mappings) at `field`.
  Section item(std::string_view field, const json& list, std::size_t index) const {
    return {&list[index], key(field) + "[" + std::to_string(index) + "]", table_key(field) + "[]"};
  }

  std::optional<std::string> optional_string(std::string_view field) const {
    const json* v = find(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) throw ConfigError(key(field), "must be a string, got " + describe_type(*v));
    return v->get<std::string>();
  }
  std::string string(std::string_view field) const {
    if (auto value = optional_string(field)) return *std::move(value);
    return value_or_default(field).get<std::string>();
  }
  std::string required_string(std::string_view field) const {
    auto value = optional_string(field);
    if (!value) throw ConfigError(key(field), "is required");
    if (value->empty()) throw ConfigError(key(field), "must not be empty");
    return *value;
  }
  double number(std::string_view field, double min = 0) const {
    const json v = value_or_default(field);
    if (!v.is_number()) throw ConfigError(key(field), "must be a number, got " + v.dump());
    const double d = v.get<double>();
    if (d < min) throw ConfigError(key(field), "must be at least " + format_number(min));
    return d;
  }
  std::int64_t integer(std::string_view field, std::int64_t min = 0) const {
    const double d = number(field, static_cast<double>(min));
    if (d != std::floor(d)) throw ConfigError(key(field), "must be a whole number, got " + format_number(d));
    return static_cast<std::int64_t>(d);
  }
  Millis duration(std::string_view field, Millis min = Millis(0)) const {
    const Millis ms = parse_duration(value_or_default(field), key(field));
    if (ms < min) {
      throw ConfigError(key(field), min == Millis(1)
                                        ? std::string("must be longer than 0")
                                        : "must be at least " + std::to_string(min.count()) + "ms");
    }
    return ms;
  }
  bool boolean(std::string_view field) const {
    const json v = value_or_default(field);
    if (!v.is_boolean()) throw ConfigError(key(field), "must be true or false");
    return v.get<bool>();
  }

 private:
  static const json& empty() {
    static const json object = json::object();
    return object;
  }
  std::string table_key(std::string_view field) const {
    return table_.empty() ? std::string(field) : table_ + "." + std::string(field);
  }
  // The value, else the table's literal default; a key with a derived default is read otherwise.
  json value_or_default(std::string_view field) const {
    if (const json* v = find(field)) return *v;
    auto fallback = config_default(table_key(field));
    if (!fallback)
      throw std::logic_error("configuration key " + table_key(field) + " has no literal default");
    return *fallback;
  }

  const json& object_;
  std::string path_;
  std::string table_;
};

// Builds a feature, turning its own error into a ConfigError that names the full key.
template <class Build>
auto build_feature(const std::string& section, Build&& build) {
  try {
    return build();
  } catch (const features::FeatureConfigError& e) {
    throw ConfigError(section + "." + e.field(), e.what());
  }
}

void parse_prompt(const Section& s, StreamConfig& stream) {
  if (s.find("prompt") == nullptr) return;
  const Section p = s.child("prompt");
  auto version = p.required_string("version");
  auto system = p.string("system");
  auto text = p.string("template");
  stream.features["prompt"] = {{"version", version}, {"system", system}, {"template", text}};
  stream.prompt = build_feature(s.key("prompt"), [&] {
    return std::make_shared<const features::PromptTemplate>(
        features::PromptTemplate::compile(std::move(version), std::move(system), text));
  });
}

json read_schema_file(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(key, "cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  json document = json::parse(text.str(), nullptr, false);
  if (document.is_discarded()) throw ConfigError(key, path + " is not valid JSON");
  return document;
}

void parse_output_schema(const Section& s, const std::filesystem::path& base_dir, StreamConfig& stream) {
  const json* schema = s.find("outputSchema");
  const json* schema_file = s.find("outputSchemaFile");
  if (schema == nullptr && schema_file == nullptr) return;
  if (schema != nullptr && schema_file != nullptr) {
    throw ConfigError(s.key("outputSchemaFile"), "give either outputSchema or outputSchemaFile, not both");
  }
  std::string key = s.key(schema != nullptr ? "outputSchema" : "outputSchemaFile");
  json document;
  if (schema != nullptr) {
    if (!schema->is_object() && !schema->is_boolean())
      throw ConfigError(key, "must be a JSON schema (a mapping)");
    document = *schema;
    stream.features["outputSchema"] = document;
  } else {
    const std::string path = (base_dir / s.required_string("outputSchemaFile")).string();
    stream.features["outputSchemaFile"] = path;
    document = read_schema_file(path, key);
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
    throw ConfigError(std::move(key), "invalid JSON schema at " +
                                          (where.empty() ? std::string("the root") : where) + ": " + reason);
  }
}

std::vector<std::string> string_list(const Section& r, std::string_view field, std::string_view what) {
  std::vector<std::string> out;
  const json* list = r.find(field);
  if (list == nullptr) return out;
  if (!list->is_array()) throw ConfigError(r.key(field), "must be a list of " + std::string(what));
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string key = r.key(field) + "[" + std::to_string(i) + "]";
    if (!(*list)[i].is_string()) throw ConfigError(key, "must be a string");
    if ((*list)[i].get_ref<const std::string&>().empty()) throw ConfigError(key, "must not be empty");
    out.push_back((*list)[i].get<std::string>());
  }
  return out;
}

void parse_redact(const Section& s, StreamConfig& stream) {
  if (s.find("redact") == nullptr) return;
  const Section r = s.child("redact");
  features::RedactionRules rules;
  rules.emails = r.boolean("emails");
  rules.phones = r.boolean("phones");
  rules.cards = r.boolean("cards");
  json patterns_view = json::array();
  if (const json* patterns = r.find("patterns")) {
    if (!patterns->is_array())
      throw ConfigError(r.key("patterns"), "must be a list of {name, regex, replacement}");
    for (std::size_t i = 0; i < patterns->size(); ++i) {
      const Section p = r.item("patterns", *patterns, i);
      features::RedactionPattern pattern{p.required_string("name"), p.required_string("regex"),
                                         p.string("replacement")};
      for (const auto& earlier : rules.patterns) {
        if (earlier.name == pattern.name) {
          throw ConfigError(p.key("name"), "duplicate pattern name \"" + pattern.name + "\"");
        }
      }
      patterns_view.push_back(
          {{"name", pattern.name}, {"regex", pattern.regex}, {"replacement", pattern.replacement}});
      rules.patterns.push_back(std::move(pattern));
    }
  }
  rules.fields = string_list(r, "fields", "JSON field names");
  stream.features["redact"] = {{"emails", rules.emails},
                               {"phones", rules.phones},
                               {"cards", rules.cards},
                               {"patterns", patterns_view},
                               {"fields", rules.fields}};
  if (rules.emails || rules.phones || rules.cards || !rules.patterns.empty() || !rules.fields.empty()) {
    stream.redactor = build_feature(
        s.key("redact"), [&] { return std::make_shared<const features::Redactor>(std::move(rules)); });
  }
}

void parse_review_and_dedupe(const Section& s, StreamConfig& stream) {
  if (s.find("humanReview") != nullptr) {
    const Section h = s.child("humanReview");
    HumanReviewConfig config;
    config.topic = h.required_string("topic");
    if (h.find("sampleRate") == nullptr) throw ConfigError(h.key("sampleRate"), "is required");
    config.sample_rate = h.number("sampleRate", 0);
    if (config.sample_rate > 1) throw ConfigError(h.key("sampleRate"), "must be between 0 and 1");
    stream.features["humanReview"] = {{"topic", config.topic}, {"sampleRate", config.sample_rate}};
    stream.human_review = std::move(config);
  }
  if (s.find("dedupe") != nullptr) {
    const Section d = s.child("dedupe");
    if (d.find("window") == nullptr) throw ConfigError(d.key("window"), "is required");
    stream.dedupe_window = d.duration("window", Millis(1));
    stream.features["dedupe"] = {{"window_ms", stream.dedupe_window->count()}};
  }
}

// KubeAI's URLs: `kafka://<group>?topic=<topic>` for requests, `kafka://<topic>` otherwise.
// Returns {group, topic}; the group is empty for the second form.
std::pair<std::string, std::string> kafka_url(const std::string& url, const std::string& key,
                                              bool want_group) {
  constexpr std::string_view scheme = "kafka://";
  if (!url.starts_with(scheme)) throw ConfigError(key, "must be a kafka:// URL, got \"" + url + "\"");
  const std::string rest = url.substr(scheme.size());
  const std::size_t host_end = rest.find_first_of("/?#");
  const std::string host = rest.substr(0, host_end);
  if (!want_group) {
    std::string topic = host;
    if (topic.empty() && host_end != std::string::npos && rest[host_end] == '/') {
      topic = rest.substr(host_end + 1, rest.find_first_of("?#", host_end) - host_end - 1);
      topic.erase(0, topic.find_first_not_of('/'));
    }
    if (topic.empty()) throw ConfigError(key, "must look like kafka://<topic>");
    return {"", topic};
  }
  std::string topic;
  const std::size_t query = rest.find('?');
  if (query != std::string::npos) {
    std::istringstream params(rest.substr(query + 1, rest.find('#', query) - query - 1));
    for (std::string param; topic.empty() && std::getline(params, param, '&');) {
      if (param.starts_with("topic=")) topic = param.substr(6);
    }
  }
  if (host.empty() || topic.empty())
    throw ConfigError(key, "must look like kafka://<consumer group>?topic=<topic>");
  return {host, topic};
}

StreamConfig parse_stream(const Section& s, const std::filesystem::path& base_dir) {
  StreamConfig stream;
  auto [group, requests] = kafka_url(s.required_string("requestsURL"), s.key("requestsURL"), true);
  stream.group = std::move(group);
  stream.requests_topic = std::move(requests);
  stream.responses_topic = kafka_url(s.required_string("responsesURL"), s.key("responsesURL"), false).second;
  const std::string dlq = s.optional_string("dlqURL").value_or("");
  stream.dlq_topic =
      dlq.empty() ? stream.requests_topic + ".dlq" : kafka_url(dlq, s.key("dlqURL"), false).second;
  if (auto cancel = s.optional_string("cancelURL"); cancel && !cancel->empty()) {
    stream.cancel_topic = kafka_url(*cancel, s.key("cancelURL"), false).second;
    if (stream.cancel_topic == stream.requests_topic || stream.cancel_topic == stream.responses_topic) {
      throw ConfigError(s.key("cancelURL"),
                        "must name a topic of its own, not the request or response topic");
    }
  }
  stream.cancel_retention = s.duration("cancelRetention", Millis(1));
  stream.max_handlers = static_cast<std::size_t>(s.integer("maxHandlers", 1));
  if (s.find("deadline") != nullptr) {
    stream.deadline = s.duration("deadline", Millis(1));
    stream.features["deadline_ms"] = stream.deadline->count();
  }
  const std::string ordering = s.string("ordering");
  if (ordering == "key") {
    stream.ordering = Ordering::kKey;
    stream.features["ordering"] = "key";
  } else if (ordering != "none") {
    throw ConfigError(s.key("ordering"), "must be none or key, got \"" + ordering + "\"");
  }
  parse_prompt(s, stream);
  parse_output_schema(s, base_dir, stream);
  parse_redact(s, stream);
  parse_review_and_dedupe(s, stream);
  return stream;
}

// The streams of `messaging`; the first one takes the environment's topics and group, and a
// document without streams gets one made of the defaults and the environment.
void parse_streams(const Section& messaging, const Environment& env, const std::filesystem::path& base_dir,
                   PipelineConfig& config) {
  if (const json* list = messaging.find("streams")) {
    if (!list->is_array()) throw ConfigError(messaging.key("streams"), "must be a list");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Section item = messaging.item("streams", *list, i);
      config.streams.push_back(parse_stream(item, base_dir));
      // A stream's own `exactlyOnce` wins over the worker's.
      config.streams.back().exactly_once =
          item.find("exactlyOnce") != nullptr ? item.boolean("exactlyOnce") : config.exactly_once;
      if (config.streams.back().exactly_once) config.streams.back().features["exactlyOnce"] = true;
    }
  }
  if (config.streams.empty()) {
    StreamConfig stream;
    stream.group = "kafka-llm";
    stream.requests_topic = "llm.requests";
    stream.responses_topic = "llm.responses";
    stream.dlq_topic = "llm.dlq";
    stream.max_handlers =
        static_cast<std::size_t>(config_default("messaging.streams[].maxHandlers")->get<int>());
    config.streams.push_back(std::move(stream));
  }
  StreamConfig& first = config.streams.front();
  for (auto [name, field] :
       {std::pair{"KAFKA_GROUP_ID", &first.group}, std::pair{"REQUEST_TOPIC", &first.requests_topic},
        std::pair{"RESPONSE_TOPIC", &first.responses_topic}, std::pair{"DLQ_TOPIC", &first.dlq_topic}}) {
    if (auto value = env_value(env, name); !value.empty()) *field = std::move(value);
  }
}

std::string property_value(const json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  if (v.is_number()) return v.dump();
  throw ConfigError(key, "must be a string, number or boolean");
}

// Secrets read from files (Kubernetes secrets mounted as files): where relative paths start, and
// every value read, so that no error repeats one.
struct SecretFiles {
  std::filesystem::path base_dir;
  std::vector<std::string> values;
};

// The content of a secret file, one trailing newline dropped; an error names the key and the path,
// never the content.
std::string read_secret_file(const std::string& file, const std::string& key, SecretFiles& files) {
  const std::filesystem::path path = files.base_dir / file;
  std::error_code ec;
  if (file.empty() || !std::filesystem::is_regular_file(path, ec)) {
    throw ConfigError(key, "no such file: " + path.string());
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in || in.bad()) throw ConfigError(key, "cannot read " + path.string() + ": " + std::strerror(errno));
  std::string value = std::move(buffer).str();
  if (value.ends_with("\r\n")) {
    value.resize(value.size() - 2);
  } else if (value.ends_with('\n')) {
    value.pop_back();
  }
  if (value.empty()) throw ConfigError(key, "the file " + path.string() + " is empty");
  files.values.push_back(value);
  return value;
}

constexpr std::string_view kFileSuffix = ".file";

void parse_kafka(const json* kafka, const Environment& env, SecretFiles& files, PipelineConfig& config) {
  if (kafka != nullptr) {
    if (!kafka->is_object()) throw ConfigError("kafka", "must be a mapping of librdkafka properties");
    for (const auto& [name, value] : kafka->items()) {
      if (!name.ends_with(kFileSuffix)) {
        kafka::set_property(config.kafka, name, property_value(value, "kafka." + name));
        continue;
      }
      // `<secret property>.file: <path>`: the property's value is the file's content.
      const std::string property = name.substr(0, name.size() - kFileSuffix.size());
      const std::string key = "kafka." + name;
      if (!kafka::is_secret_property(property)) {
        throw ConfigError(key,
                          "only secret properties (*password*, *secret*, *key*, *token*) are read "
                          "from a file");
      }
      if (kafka->contains(property)) {
        std::string reason = "give either kafka.";
        reason += property;
        reason += " or ";
        reason += key;
        reason += ", not both";
        throw ConfigError(key, reason);
      }
      if (!value.is_string()) throw ConfigError(key, "must be a path");
      kafka::set_property(config.kafka, property, read_secret_file(value.get<std::string>(), key, files));
    }
  }
  // KAFKA_LLM_BOOTSTRAP_SERVERS (what `kafka-llm dev up` exports) wins over KAFKA_BOOTSTRAP_SERVERS.
  for (const std::string_view name : {"KAFKA_LLM_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"}) {
    if (auto servers = env_value(env, name); !servers.empty()) {
      kafka::set_property(config.kafka, "bootstrap.servers", std::move(servers));
      break;
    }
  }
  const bool has_bootstrap = std::any_of(config.kafka.begin(), config.kafka.end(), [](const auto& p) {
    return p.first == "bootstrap.servers" && !p.second.empty();
  });
  if (!has_bootstrap)
    throw ConfigError("kafka.bootstrap.servers",
                      "is required (or set KAFKA_LLM_BOOTSTRAP_SERVERS or KAFKA_BOOTSTRAP_SERVERS)");
  (void)kafka::make_conf(config.kafka);  // unknown or invalid librdkafka properties fail now, named
}

void parse_redis(const Section& r, const Environment& env, SecretFiles& files, PipelineConfig& config) {
  std::string key = r.key("url");
  config.redis.url = r.string("url");
  const std::string host = env_value(env, "REDIS_HOST");
  const std::string port = env_value(env, "REDIS_PORT");
  if (auto url = env_value(env, "KAFKA_LLM_REDIS_URL"); !url.empty()) {
    key = "KAFKA_LLM_REDIS_URL";
    config.redis.url = std::move(url);
  } else if (url = env_value(env, "REDIS_URL"); !url.empty()) {
    key = "REDIS_URL";
    config.redis.url = std::move(url);
  } else if (!host.empty() || !port.empty()) {
    if (!port.empty() && port.find_first_not_of("0123456789") != std::string::npos) {
      throw ConfigError("REDIS_PORT", "must be a port number");
    }
    key = "REDIS_HOST";
    config.redis.url =
        "redis://" + (host.empty() ? "127.0.0.1" : host) + ":" + (port.empty() ? "6379" : port) + "/0";
  }
  if (!config.redis.url.starts_with("redis://") && !config.redis.url.starts_with("unix://")) {
    throw ConfigError(key, "must start with redis:// or unix://");
  }
  const auto options = redis::parse_redis_url(config.redis.url, key);
  if (r.find("passwordFile") != nullptr) {
    const std::string file_key = r.key("passwordFile");
    if (!config.redis.url.starts_with("redis://")) {
      throw ConfigError(file_key, "needs a redis:// URL (" + key + " is not one)");
    }
    if (!options.password.empty() || !options.username.empty()) {
      throw ConfigError(file_key, "give the password either in " + key + " or in passwordFile, not both");
    }
    const std::string password = read_secret_file(r.required_string("passwordFile"), file_key, files);
    // Percent-encoded, so that any character survives the URL (the core and redis-py decode it).
    config.redis.url = "redis://:" + redis::percent_encode_userinfo(password) + "@" +
                       config.redis.url.substr(std::string_view("redis://").size());
  }
  config.redis.key_prefix = r.string("keyPrefix");
  config.redis.result_ttl = r.duration("resultTTL", Millis(1));
}

ProviderKind parse_kind(const Section& p, const std::string& name) {
  const std::string kind = p.optional_string("kind").value_or(name == "anthropic" ? "anthropic" : "openai");
  if (kind == "openai") return ProviderKind::kOpenAI;
  if (kind == "anthropic") return ProviderKind::kAnthropic;
  if (kind == "python") return ProviderKind::kEmbedded;
  throw ConfigError(p.key("kind"), "must be openai, anthropic or python, got \"" + kind + "\"");
}

void parse_provider_lists(const Section& p, ProviderConfig& provider) {
  if (const json* headers = p.find("headers")) {
    if (!headers->is_object()) throw ConfigError(p.key("headers"), "must be a mapping of strings");
    for (const auto& [name, value] : headers->items()) {
      if (!value.is_string()) throw ConfigError(p.key("headers") + "." + name, "must be a string");
      provider.extra_headers.emplace_back(name, value.get<std::string>());
    }
  }
  provider.models = string_list(p, "models", "model names");
}

ProviderConfig parse_provider(const Section& p, const Environment& env, SecretFiles& files) {
  ProviderConfig provider;
  provider.name = p.required_string("name");
  provider.kind = parse_kind(p, provider.name);
  const BuiltinProvider* builtin = builtin_provider(provider.name);
  const bool needs_url = provider.kind != ProviderKind::kEmbedded;
  if (needs_url && builtin == nullptr) {
    provider.base_url = p.required_string("baseURL");
  } else {
    provider.base_url =
        p.optional_string("baseURL").value_or(builtin == nullptr ? "" : std::string(builtin->base_url));
  }
  if (needs_url && !provider.base_url.starts_with("http://") && !provider.base_url.starts_with("https://")) {
    throw ConfigError(p.key("baseURL"), "must start with http:// or https://");
  }
  while (!provider.base_url.empty() && provider.base_url.back() == '/') provider.base_url.pop_back();
  const int key_sources = static_cast<int>(p.find("apiKey") != nullptr) +
                          static_cast<int>(p.find("apiKeyEnv") != nullptr) +
                          static_cast<int>(p.find("apiKeyFile") != nullptr);
  if (key_sources > 1) {
    throw ConfigError(p.key(p.find("apiKeyFile") != nullptr ? "apiKeyFile" : "apiKeyEnv"),
                      "give one of apiKey, apiKeyEnv and apiKeyFile, not several");
  }
  provider.api_key = p.string("apiKey");
  if (p.find("apiKeyFile") != nullptr) {
    provider.api_key = read_secret_file(p.required_string("apiKeyFile"), p.key("apiKeyFile"), files);
  }
  const std::string key_env =
      p.optional_string("apiKeyEnv").value_or(builtin == nullptr ? "" : std::string(builtin->key_env));
  if (provider.api_key.empty() && !key_env.empty()) {
    provider.api_key = env_value(env, key_env);
    if (provider.api_key.empty() && p.find("apiKeyEnv") != nullptr) {
      throw ConfigError(p.key("apiKeyEnv"), "environment variable " + key_env + " is not set");
    }
  }
  provider.unix_socket = p.string("unixSocket");
  parse_provider_lists(p, provider);
  provider.rpm = p.number("rpm");
  provider.tpm = p.number("tpm");
  provider.shared_limits = p.boolean("shared");
  provider.connect_timeout = p.duration("connectTimeout", Millis(1));
  provider.first_byte_timeout = p.duration("firstByteTimeout", Millis(1));
  provider.max_concurrency = static_cast<std::size_t>(p.integer("maxConcurrency"));
  return provider;
}

void parse_providers(const Section& top, const Environment& env, SecretFiles& files, PipelineConfig& config) {
  if (const json* list = top.find("providers")) {
    if (!list->is_array()) throw ConfigError("providers", "must be a list");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Section p = top.item("providers", *list, i);
      ProviderConfig provider = parse_provider(p, env, files);
      if (config.find_provider(provider.name) != nullptr) {
        throw ConfigError(p.key("name"), "duplicate provider name \"" + provider.name + "\"");
      }
      config.providers.push_back(std::move(provider));
    }
  }
  if (config.providers.empty()) {
    // KAFKA_LLM_PROVIDER_URL (the local stack's mock provider): an OpenAI-compatible provider
    // named local, first, so it is the default; the built-in providers whose keys are set follow.
    if (std::string url = env_value(env, "KAFKA_LLM_PROVIDER_URL"); !url.empty()) {
      if (!url.starts_with("http://") && !url.starts_with("https://")) {
        throw ConfigError("KAFKA_LLM_PROVIDER_URL", "must start with http:// or https://");
      }
      while (url.back() == '/') url.pop_back();
      ProviderConfig provider;
      provider.name = std::string(kLocalProvider);
      provider.base_url = std::move(url);
      config.providers.push_back(std::move(provider));
    }
    for (const auto& builtin : kBuiltinProviders) {
      std::string key = env_value(env, builtin.key_env);
      if (key.empty()) continue;
      ProviderConfig provider;
      provider.name = builtin.name;
      provider.base_url = builtin.base_url;
      provider.api_key = std::move(key);
      config.providers.push_back(std::move(provider));
    }
  }
  if (config.providers.empty()) {
    throw ConfigError("providers",
                      "at least one provider is required (or set KAFKA_LLM_PROVIDER_URL, OPENAI_API_KEY "
                      "or GROQ_API_KEY)");
  }
  config.default_provider = top.optional_string("defaultProvider").value_or(config.providers.front().name);
  if (config.find_provider(config.default_provider) == nullptr) {
    throw ConfigError("defaultProvider", "names no configured provider: \"" + config.default_provider + "\"");
  }
}

void parse_retry(const Section& r, const Section& messaging, PipelineConfig& config) {
  config.retry.max_attempts = static_cast<int>(r.integer("maxAttempts", 1));
  config.retry.initial_backoff = r.duration("initialBackoff");
  config.retry.max_backoff = r.duration("maxBackoff");
  config.retry.request_timeout = r.duration("requestTimeout", Millis(1));
  config.retry.max_malformed_retries = static_cast<int>(r.integer("maxMalformedRetries"));
  config.retry.error_max_backoff = messaging.duration("errorMaxBackoff");
  try {
    (void)policy::RetryPolicy(config.retry);
  } catch (const std::invalid_argument& e) {
    throw ConfigError("retry", e.what());
  }
}

void parse_circuit(const Section& c, CircuitConfig& circuit) {
  circuit.failure_threshold = static_cast<int>(c.integer("failureThreshold", 1));
  circuit.failure_ratio = c.number("failureRatio");
  if (circuit.failure_ratio > 1) {
    throw ConfigError(c.key("failureRatio"), "must be between 0 and 1 (0 turns the ratio off)");
  }
  circuit.minimum_outcomes = static_cast<int>(c.integer("minimumOutcomes", 1));
  circuit.window = c.duration("window", Millis(10));
  circuit.cooldown = c.duration("cooldown", Millis(1));
  circuit.max_cooldown = c.duration("maxCooldown", Millis(1));
}

void parse_tracing(const Section& t, const Environment& env, TracingConfig& tracing) {
  if (auto endpoint = t.optional_string("otlpEndpoint")) {
    tracing.otlp_endpoint = std::move(*endpoint);
    if (!tracing.otlp_endpoint.starts_with("http://") && !tracing.otlp_endpoint.starts_with("https://"))
      throw ConfigError(t.key("otlpEndpoint"), "must be an http:// or https:// URL");
  } else if (auto traces = env_value(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); !traces.empty()) {
    tracing.otlp_endpoint = std::move(traces);
  } else if (auto base = env_value(env, "OTEL_EXPORTER_OTLP_ENDPOINT"); !base.empty()) {
    while (base.ends_with('/')) base.pop_back();
    tracing.otlp_endpoint = base + "/v1/traces";
  }
  tracing.service_name = t.string("serviceName");
  if (tracing.service_name.empty()) throw ConfigError(t.key("serviceName"), "must not be empty");
  tracing.sample_ratio = t.number("sampleRatio");
  if (tracing.sample_ratio > 1) throw ConfigError(t.key("sampleRatio"), "must be between 0 and 1");
  tracing.export_interval = t.duration("exportInterval", Millis(10));
  tracing.max_queue = static_cast<std::size_t>(t.integer("maxQueueSize", 1));
}

std::filesystem::path base_directory(const std::string& file) {
  if (file.empty()) return std::filesystem::current_path();
  return std::filesystem::weakly_canonical(std::filesystem::absolute(file)).parent_path();
}

PipelineConfig parse_document(const json& document, const ConfigSource& source, SecretFiles& files) {
  PipelineConfig config;
  const Section top(&document, "", "");
  const Section messaging = top.child("messaging");
  config.exactly_once = top.boolean("exactlyOnce");
  config.transactional_id = top.string("transactionalId");
  parse_streams(messaging, source.env, files.base_dir, config);
  parse_kafka(top.find("kafka"), source.env, files, config);
  parse_redis(top.child("redis"), source.env, files, config);
  parse_providers(top, source.env, files, config);
  parse_retry(top.child("retry"), messaging, config);
  parse_circuit(top.child("circuit"), config.circuit);
  config.max_request_bytes = static_cast<std::size_t>(top.integer("maxRequestBytes", 1));
  config.model_version = top.string("modelVersion");
  config.commit_interval = top.duration("commitInterval", Millis(1));
  config.drain_timeout = top.duration("drainTimeout");
  config.lag_interval = top.duration("lagInterval", Millis(100));
  parse_tracing(top.child("tracing"), source.env, config.tracing);
  return config;
}

// The secrets a document or its environment may hold, so that no error repeats one.
std::vector<std::string> candidate_secrets(const json& document, const Environment& env) {
  std::vector<std::string> out;
  out.reserve(std::size(kBuiltinProviders));
  for (const auto& builtin : kBuiltinProviders) out.push_back(env_value(env, builtin.key_env));
  const json* providers =
      document.is_object() && document.contains("providers") ? &document["providers"] : nullptr;
  for (const auto& p : providers != nullptr && providers->is_array() ? *providers : json::array()) {
    if (!p.is_object()) continue;
    if (p.contains("apiKey") && p["apiKey"].is_string()) out.push_back(p["apiKey"].get<std::string>());
    if (p.contains("apiKeyEnv") && p["apiKeyEnv"].is_string())
      out.push_back(env_value(env, p["apiKeyEnv"].get<std::string>()));
  }
  std::erase_if(out, [](const std::string& s) { return s.size() < 4; });
  return out;
}

std::string scrubbed(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

}  // namespace

PipelineConfig PipelineConfig::parse(const json& document, const ConfigSource& source) {
  SecretFiles files{base_directory(source.file), {}};
  try {
    return parse_document(document.is_null() ? json::object() : document, source, files);
  } catch (const ConfigError& e) {
    auto secrets = candidate_secrets(document, source.env);
    secrets.insert(secrets.end(), files.values.begin(), files.values.end());
    throw ConfigError(e.key(), scrubbed(e.reason(), secrets), source.file);
  }
}

json PipelineConfig::view() const {
  json out = {{"kafka", json::object()}, {"streams", json::array()}, {"providers", json::array()}};
  for (const auto& [name, value] : kafka) out["kafka"][name] = value;
  for (const auto& s : streams) {
    json stream = {{"group", s.group},
                   {"requests_topic", s.requests_topic},
                   {"responses_topic", s.responses_topic},
                   {"dlq_topic", s.dlq_topic},
                   {"cancel_topic", s.cancel_topic.empty() ? json(nullptr) : json(s.cancel_topic)},
                   {"cancel_retention_ms", s.cancel_retention.count()},
                   {"max_handlers", s.max_handlers}};
    stream.update(s.features);
    out["streams"].push_back(std::move(stream));
  }
  out["redis"] = {
      {"url", redis.url}, {"key_prefix", redis.key_prefix}, {"result_ttl_ms", redis.result_ttl.count()}};
  constexpr std::array kKindNames{"openai", "anthropic", "python"};
  for (const auto& p : providers) {
    json headers = json::object();
    for (const auto& [name, value] : p.extra_headers) headers[name] = value;
    out["providers"].push_back({{"name", p.name},
                                {"kind", kKindNames.at(static_cast<std::size_t>(p.kind))},
                                {"base_url", p.base_url},
                                {"api_key", p.api_key},
                                {"unix_socket", p.unix_socket},
                                {"models", p.models},
                                {"headers", headers},
                                {"rpm", p.rpm},
                                {"tpm", p.tpm},
                                {"shared", p.shared_limits},
                                {"connect_timeout_ms", p.connect_timeout.count()},
                                {"first_byte_timeout_ms", p.first_byte_timeout.count()},
                                {"max_concurrency", p.max_concurrency}});
  }
  out["retry"] = {{"max_attempts", retry.max_attempts},
                  {"initial_backoff_ms", retry.initial_backoff.count()},
                  {"max_backoff_ms", retry.max_backoff.count()},
                  {"request_timeout_ms", retry.request_timeout.count()},
                  {"max_malformed_retries", retry.max_malformed_retries},
                  {"error_max_backoff_ms", retry.error_max_backoff.count()}};
  out["circuit"] = {
      {"failure_threshold", circuit.failure_threshold}, {"failure_ratio", circuit.failure_ratio},
      {"minimum_outcomes", circuit.minimum_outcomes},   {"window_ms", circuit.window.count()},
      {"cooldown_ms", circuit.cooldown.count()},        {"max_cooldown_ms", circuit.max_cooldown.count()}};
  out["default_provider"] = default_provider;
  out["max_request_bytes"] = max_request_bytes;
  out["model_version"] = model_version;
  out["commit_interval_ms"] = commit_interval.count();
  out["drain_timeout_ms"] = drain_timeout.count();
  out["lag_interval_ms"] = lag_interval.count();
  out["exactly_once"] = exactly_once;
  out["transactional_id"] = transactional_id;
  out["tracing"] = {
      {"otlp_endpoint", tracing.otlp_endpoint.empty() ? json(nullptr) : json(tracing.otlp_endpoint)},
      {"service_name", tracing.service_name},
      {"sample_ratio", tracing.sample_ratio},
      {"export_interval_ms", tracing.export_interval.count()},
      {"max_queue_size", tracing.max_queue}};
  return out;
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
  if (!redis_options.password.empty()) {
    out.push_back(redis_options.password);
    // As it is written in the URL too, when that differs.
    const std::string encoded = redis::percent_encode_userinfo(redis_options.password);
    if (encoded != redis_options.password && redis.url.find(encoded) != std::string::npos) {
      out.push_back(encoded);
    }
  }
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

std::pair<std::string, std::string> PipelineConfig::metric_labels(std::string_view provider,
                                                                  std::string_view model) const {
  static const std::string kOther = "other";
  const ProviderConfig* p = find_provider(provider);
  std::string provider_label = p != nullptr ? p->name : (provider.empty() ? "" : kOther);
  if (model.empty()) return {std::move(provider_label), ""};
  if (p == nullptr) return {std::move(provider_label), kOther};
  const std::string m(model);
  for (const auto& name : p->models) {
    if (name == m) return {std::move(provider_label), name};
  }
  for (const auto& pattern : p->models) {
    if (fnmatch(pattern.c_str(), m.c_str(), 0) == 0) return {std::move(provider_label), pattern};
  }
  return {std::move(provider_label), kOther};
}

}  // namespace kafka_llm::pipeline
