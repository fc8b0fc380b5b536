#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kafka_llm::pipeline {

/// One key of the configuration file, as the user writes it. `path` names list items with `[]`
/// (`messaging.streams[].requestsURL`). `default_value` is the literal the parser uses when the key
/// is absent (`30s`, `5000`, `false`, `kafka-llm`; empty for an empty string or no value), or a
/// description in parentheses when the default is derived (`(the first provider)`, `(required)`).
struct ConfigKey {
  std::string_view path;
  std::string_view type;
  std::string_view default_value;
  std::string_view description;
};

/// An environment variable of the original event backend and what it overrides.
struct ConfigEnvOverride {
  std::string_view name;
  std::string_view overrides;
  std::string_view description;
};

/// Every key the configuration file accepts, in document order. It drives the unknown-key check,
/// the defaults and the generated reference (docs/configuration.md).
std::span<const ConfigKey> config_keys() noexcept;

/// The environment overrides, in the order they are documented.
std::span<const ConfigEnvOverride> config_env_overrides() noexcept;

/// The row of `path`, or null when the table has none.
const ConfigKey* find_config_key(std::string_view path) noexcept;

/// The names of the keys directly under the mapping at `table_path` ("" for the top level,
/// `providers[]` for a provider).
std::vector<std::string_view> config_children(std::string_view table_path);

/// The literal default of `path` as JSON (a string for strings and durations), or nullopt when the
/// default is derived. Throws std::logic_error when the table has no such key.
std::optional<nlohmann::json> config_default(std::string_view path);

/// The candidate closest to `word` by edit distance, or "" when none is close enough to be a typo.
std::string closest_key(std::string_view word, const std::vector<std::string_view>& candidates);

/// A Go-style duration (`30s`, `500ms`, `1h30m`, `.5s`) or a bare number of seconds. Throws
/// ConfigError naming `key` when `value` is anything else or negative.
std::chrono::milliseconds parse_duration(const nlohmann::json& value, const std::string& key);

}  // namespace kafka_llm::pipeline
