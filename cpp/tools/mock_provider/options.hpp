#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kafka_llm::mock_provider {

/// How the base latency of a request is drawn.
enum class LatencyDistribution : std::uint8_t {
  kFixed,      ///< every request waits exactly `latency_ms`
  kLognormal,  ///< log-normal with median `latency_ms` and shape `latency_sigma`
};

/// The knobs that can change at runtime (CLI flags and `POST /admin/config`). The JSON name of a
/// knob is its CLI flag without the leading dashes and with `-` replaced by `_`.
struct ProviderConfig {
  double latency_ms = 0.0;
  LatencyDistribution latency_dist = LatencyDistribution::kFixed;
  double latency_sigma = 0.5;
  double token_interval_ms = 0.0;
  double fault_429 = 0.0;
  double retry_after_s = 1.0;
  double fault_500 = 0.0;
  double fault_503 = 0.0;
  double fault_hang = 0.0;
  double fault_reset = 0.0;
  double fault_malformed = 0.0;
};

/// A rejected option or config key. `name()` is the flag (`--fault-429`) or the JSON key
/// (`fault_429`) exactly as the user spelled it.
class OptionError : public std::runtime_error {
 public:
  OptionError(std::string name, const std::string& reason);
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

/// Everything the command line sets.
struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::optional<std::string> unix_socket;
  unsigned threads = 0;  ///< 0 until parsed; parse_options resolves it to >= 1
  std::optional<std::string> port_file;
  std::optional<std::uint64_t> seed;
  ProviderConfig config;
  bool help = false;
};

/// Parses `argv` (`--name value` or `--name=value`). Throws OptionError naming the first bad
/// option. With `--help` it returns at once with `help` set.
Options parse_options(int argc, const char* const* argv);

/// The `--help` text.
std::string usage_text();

/// Returns `config` with the keys of the JSON object `changes` applied, all or nothing.
/// Throws OptionError naming the first unknown key or invalid value, or when the fault
/// probabilities add up to more than 1.
ProviderConfig apply_config_json(const ProviderConfig& config, const nlohmann::json& changes);

/// The runtime knobs as a JSON object, keyed as `apply_config_json` accepts them.
nlohmann::json config_to_json(const ProviderConfig& config);

}  // namespace kafka_llm::mock_provider
