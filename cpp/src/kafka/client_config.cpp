#include "kafka_llm/kafka/client_config.hpp"

#include <algorithm>
#include <array>

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::kafka {

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
