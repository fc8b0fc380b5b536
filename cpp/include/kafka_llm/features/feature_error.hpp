#pragma once

#include <stdexcept>
#include <string>

namespace kafka_llm::features {

/// A stream feature's settings are invalid. `field()` names the setting relative to the
/// feature's own section (e.g. "template", "patterns[1].regex") so the configuration parser can
/// report the full key; what() is the reason alone.
class FeatureConfigError : public std::invalid_argument {
 public:
  FeatureConfigError(std::string field, const std::string& reason)
      : std::invalid_argument(reason), field_(std::move(field)) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

}  // namespace kafka_llm::features
