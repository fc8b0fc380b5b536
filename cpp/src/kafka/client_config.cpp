#include "kafka_llm/kafka/client_config.hpp"

#include <algorithm>
#include <array>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"

namespace kafka_llm::kafka {

namespace {

// librdkafka's levels are syslog's: 0-3 emergency to error, 4 warning, 5-6 notice and info, 7 debug.
LogLevel log_level(int syslog_level) noexcept {
  if (syslog_level <= 3) return LogLevel::kError;
  if (syslog_level == 4) return LogLevel::kWarning;
  if (syslog_level <= 6) return LogLevel::kInfo;
  return LogLevel::kDebug;
}

// Called on librdkafka's own threads; the core's log sink serializes the calls.
void forward_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  std::string line = "librdkafka ";
  line.append(rd_kafka_name(rk)).append(" ").append(facility).append(": ").append(message);
  log(log_level(level), line);
}

}  // namespace

void set_property(Properties& props, std::string name, std::string value) {
  auto it = std::find_if(props.begin(), props.end(), [&](const auto& p) { return p.first == name; });
  if (it != props.end()) {
    it->second = std::move(value);
  } else {
    props.emplace_back(std::move(name), std::move(value));
  }
}

bool has_property(const Properties& props, std::string_view name) noexcept {
  return std::any_of(props.begin(), props.end(), [name](const auto& p) { return p.first == name; });
}

void set_default_property(Properties& props, std::string name, std::string value) {
  if (!has_property(props, name)) props.emplace_back(std::move(name), std::move(value));
}

bool is_secret_property(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 4> kMarkers = {"password", "secret", "key", "token"};
  return std::any_of(kMarkers.begin(), kMarkers.end(),
                     [&](std::string_view marker) { return name.find(marker) != std::string_view::npos; });
}

ConfPtr make_conf(const Properties& props, const std::string& key_prefix) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &forward_log);
  std::array<char, 512> errstr{};
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr.data(), errstr.size()) !=
        RD_KAFKA_CONF_OK) {
      std::string reason = errstr.data();
      if (is_secret_property(name) && !value.empty()) {
        for (auto pos = reason.find(value); pos != std::string::npos; pos = reason.find(value, pos)) {
          reason.replace(pos, value.size(), "***");
        }
      }
      std::string key = key_prefix;
      key += '.';
      key += name;
      throw ConfigError(std::move(key), reason);
    }
  }
  return conf;
}

}  // namespace kafka_llm::kafka
