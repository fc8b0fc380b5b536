#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kafka_llm/kafka/handles.hpp"

namespace kafka_llm::kafka {

/// librdkafka properties, in order; later entries override earlier ones with the same name.
using Properties = std::vector<std::pair<std::string, std::string>>;

/// Sets `name` in `props`, replacing an earlier value.
void set_property(Properties& props, std::string name, std::string value);

/// True when `props` sets `name`.
bool has_property(const Properties& props, std::string_view name) noexcept;

/// Sets `name` to `value` unless `props` already sets it (a default the user's configuration wins
/// over).
void set_default_property(Properties& props, std::string name, std::string value);

/// True for properties whose values must never be printed (passwords, secrets, keys).
bool is_secret_property(std::string_view name) noexcept;

/// Builds a librdkafka configuration whose log lines go to the core's log sink (kafka_llm::log,
/// "librdkafka <client name> <facility>: <message>"). Throws ConfigError naming `<key_prefix>.<property>` and
/// librdkafka's reason when a property is unknown or its value invalid; secret values are
/// never included in the message.
ConfPtr make_conf(const Properties& props, const std::string& key_prefix = "kafka");

}  // namespace kafka_llm::kafka
