#pragma once

#include <stdexcept>
#include <string>

namespace kafka_llm {

/// Base of the exceptions the core throws. Exceptions are for setup and fatal client errors only;
/// a request's fate is a value (see policy::RetryDecision), never an exception.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration value is missing or wrong. `key()` names it in the user's terms
/// (e.g. "kafka.bootstrap.servers", "providers[1].baseURL").
class ConfigError : public Error {
 public:
  ConfigError(std::string key, const std::string& reason) : ConfigError(std::move(key), reason, "") {}
  /// The same error located in `file` (named before the key when not empty).
  ConfigError(std::string key, const std::string& reason, const std::string& file)
      : Error("invalid configuration: " + (file.empty() ? std::string() : file + ": ") + key + ": " + reason),
        key_(std::move(key)),
        reason_(reason) {}
  const std::string& key() const noexcept { return key_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string key_;
  std::string reason_;
};

/// A Kafka client could not be created or failed fatally (e.g. a fenced transactional producer).
class KafkaError : public Error {
 public:
  using Error::Error;
};

/// Redis could not be reached or answered with an error where the caller needed success.
class RedisError : public Error {
 public:
  using Error::Error;
};

}  // namespace kafka_llm
