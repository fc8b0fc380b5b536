#include "options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <thread>

namespace kafka_llm::mock_provider {
namespace {

struct NumericKnob {
  std::string_view name;
  double ProviderConfig::*field;
  double min;
  double max;
};

constexpr double kMaxMillis = 24.0 * 3600.0 * 1000.0;

constexpr std::array kNumericKnobs{
    NumericKnob{"latency_ms", &ProviderConfig::latency_ms, 0.0, kMaxMillis},
    NumericKnob{"latency_sigma", &ProviderConfig::latency_sigma, 0.0, 10.0},
    NumericKnob{"token_interval_ms", &ProviderConfig::token_interval_ms, 0.0, kMaxMillis},
    NumericKnob{"fault_429", &ProviderConfig::fault_429, 0.0, 1.0},
    NumericKnob{"retry_after", &ProviderConfig::retry_after_s, 0.0, 86400.0},
    NumericKnob{"fault_500", &ProviderConfig::fault_500, 0.0, 1.0},
    NumericKnob{"fault_503", &ProviderConfig::fault_503, 0.0, 1.0},
    NumericKnob{"fault_hang", &ProviderConfig::fault_hang, 0.0, 1.0},
    NumericKnob{"fault_reset", &ProviderConfig::fault_reset, 0.0, 1.0},
    NumericKnob{"fault_malformed", &ProviderConfig::fault_malformed, 0.0, 1.0},
};

constexpr std::string_view kLatencyDistKnob = "latency_dist";

const NumericKnob* find_numeric_knob(std::string_view name) {
  const auto* it = std::find_if(kNumericKnobs.begin(), kNumericKnobs.end(),
                                [name](const NumericKnob& knob) { return knob.name == name; });
  return it == kNumericKnobs.end() ? nullptr : it;
}

std::string format_range(const NumericKnob& knob) {
  auto text = [](double v) {
    std::array<char, 32> buffer{};
    auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), v);
    return std::string(buffer.data(), end);
  };
  return "must be a number in [" + text(knob.min) + ", " + text(knob.max) + "]";
}

void set_numeric(ProviderConfig& config, const NumericKnob& knob, double value, const std::string& shown) {
  if (!std::isfinite(value) || value < knob.min || value > knob.max)
    throw OptionError(shown, format_range(knob));
  config.*knob.field = value;
}

LatencyDistribution parse_distribution(std::string_view text, const std::string& shown) {
  if (text == "fixed") return LatencyDistribution::kFixed;
  if (text == "lognormal") return LatencyDistribution::kLognormal;
  throw OptionError(shown, "must be 'fixed' or 'lognormal', got '" + std::string(text) + "'");
}

bool fault_sum_exceeds_one(const ProviderConfig& config) {
  const double sum = config.fault_429 + config.fault_500 + config.fault_503 + config.fault_hang +
                     config.fault_reset + config.fault_malformed;
  return sum > 1.0 + 1e-9;
}

template <class Number>
Number parse_number(std::string_view text, const std::string& shown) {
  Number value{};
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || end != last || text.empty()) {
    throw OptionError(shown, "invalid value '" + std::string(text) + "'");
  }
  return value;
}

}  // namespace

OptionError::OptionError(std::string name, const std::string& reason)
    : std::runtime_error(name + ": " + reason), name_(std::move(name)) {}

std::string usage_text() {
  return R"(usage: kafka-llm-mock-provider [options]

A mock LLM provider speaking the OpenAI and Anthropic HTTP APIs, for tests and benchmarks.

  --host ADDR             address to listen on (default 127.0.0.1)
  --port N                TCP port; 0 picks a free one (default 0)
  --unix-socket PATH      also serve HTTP on this Unix domain socket
  --threads N             I/O threads (default: hardware concurrency)
  --port-file PATH        write the bound port number to PATH
  --latency-ms F          base latency in milliseconds (median when lognormal; default 0)
  --latency-dist D        fixed | lognormal (default fixed)
  --latency-sigma F       shape of the lognormal distribution (default 0.5)
  --token-interval-ms F   delay between streamed tokens (default 0)
  --fault-429 P           probability of a 429 answer (0..1)
  --retry-after S         Retry-After seconds sent with 429 (default 1)
  --fault-500 P           probability of a 500 answer
  --fault-503 P           probability of a 503 answer
  --fault-hang P          probability of never answering
  --fault-reset P         probability of resetting the connection
  --fault-malformed P     probability of a 200 with an invalid JSON body
  --seed N                seed of the random source (default: random)
  --help                  show this text

Per request: headers x-mock-latency-ms, x-mock-fault, x-mock-fault-times, or a "mock" object in
the JSON body ({"fault", "fault_times", "latency_ms", "retry_after", "retry_after_ms",
"token_interval_ms", "content": reply with this text, "record_body": keep the body for
GET /stats?request_id=ID}). See GET /admin/config, POST /admin/config, GET /stats, POST /stats/reset.
)";
}

Options parse_options(int argc, const char* const* argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return options;
    }
    if (!arg.starts_with("--")) throw OptionError(std::string(arg), "unexpected argument");
    std::string flag;
    std::string_view value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      flag = std::string(arg.substr(0, eq));
      value = arg.substr(eq + 1);
      has_value = true;
    } else {
      flag = std::string(arg);
    }
    auto take_value = [&]() -> std::string_view {
      if (has_value) return value;
      if (i + 1 >= argc) throw OptionError(flag, "needs a value");
      return argv[++i];
    };

    std::string knob = flag.substr(2);
    std::replace(knob.begin(), knob.end(), '-', '_');
    if (flag == "--host") {
      options.host = std::string(take_value());
      if (options.host.empty()) throw OptionError(flag, "must not be empty");
    } else if (flag == "--port") {
      options.port = parse_number<std::uint16_t>(take_value(), flag);
    } else if (flag == "--unix-socket") {
      options.unix_socket = std::string(take_value());
      if (options.unix_socket->empty()) throw OptionError(flag, "must not be empty");
    } else if (flag == "--threads") {
      options.threads = parse_number<unsigned>(take_value(), flag);
      if (options.threads < 1 || options.threads > 256) throw OptionError(flag, "must be in [1, 256]");
    } else if (flag == "--port-file") {
      options.port_file = std::string(take_value());
    } else if (flag == "--seed") {
      options.seed = parse_number<std::uint64_t>(take_value(), flag);
    } else if (knob == kLatencyDistKnob) {
      options.config.latency_dist = parse_distribution(take_value(), flag);
    } else if (const NumericKnob* numeric = find_numeric_knob(knob)) {
      set_numeric(options.config, *numeric, parse_number<double>(take_value(), flag), flag);
    } else {
      throw OptionError(flag, "unknown option");
    }
  }
  if (fault_sum_exceeds_one(options.config)) {
    throw OptionError("--fault-*", "fault probabilities add up to more than 1");
  }
  if (options.threads == 0) options.threads = std::max(1U, std::thread::hardware_concurrency());
  return options;
}

ProviderConfig apply_config_json(const ProviderConfig& config, const nlohmann::json& changes) {
  if (!changes.is_object()) throw OptionError("body", "must be a JSON object of config keys");
  ProviderConfig updated = config;
  for (const auto& [key, value] : changes.items()) {
    if (key == kLatencyDistKnob) {
      if (!value.is_string()) throw OptionError(key, "must be 'fixed' or 'lognormal'");
      updated.latency_dist = parse_distribution(value.get_ref<const std::string&>(), key);
    } else if (const NumericKnob* numeric = find_numeric_knob(key)) {
      if (!value.is_number()) throw OptionError(key, format_range(*numeric));
      set_numeric(updated, *numeric, value.get<double>(), key);
    } else {
      throw OptionError(key, "unknown config key");
    }
  }
  if (fault_sum_exceeds_one(updated))
    throw OptionError("fault_*", "fault probabilities add up to more than 1");
  return updated;
}

nlohmann::json config_to_json(const ProviderConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const NumericKnob& knob : kNumericKnobs) out[std::string(knob.name)] = config.*knob.field;
  out[std::string(kLatencyDistKnob)] =
      config.latency_dist == LatencyDistribution::kLognormal ? "lognormal" : "fixed";
  return out;
}

}  // namespace kafka_llm::mock_provider
