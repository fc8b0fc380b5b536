#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"

namespace kafka_llm::pipeline {
namespace {

using nlohmann::json;

json config_with_circuit(const json& circuit) {
  return {
      {"kafka", {{"bootstrap.servers", "127.0.0.1:9092"}}},
      {"streams",
       json::array(
           {{{"group", "g"}, {"requests_topic", "req"}, {"responses_topic", "resp"}, {"dlq_topic", "dlq"}}})},
      {"providers", json::array({{{"name", "mock"}, {"base_url", "http://127.0.0.1:1/v1"}}})},
      {"circuit", circuit}};
}

std::string error_key(const json& circuit) {
  try {
    (void)PipelineConfig::from_json(config_with_circuit(circuit));
  } catch (const ConfigError& e) {
    return e.key();
  }
  return "";
}

TEST(PipelineCircuitConfig, DefaultsAndEveryKey) {
  const auto defaults = PipelineConfig::from_json(config_with_circuit(json::object())).circuit;
  EXPECT_EQ(defaults.failure_threshold, 20);
  EXPECT_DOUBLE_EQ(defaults.failure_ratio, 0.5);
  EXPECT_EQ(defaults.minimum_outcomes, 20);
  EXPECT_EQ(defaults.window, Millis(10'000));

  const auto set = PipelineConfig::from_json(config_with_circuit({{"failure_threshold", 7},
                                                                  {"failure_ratio", 0.25},
                                                                  {"minimum_outcomes", 4},
                                                                  {"window_ms", 3000},
                                                                  {"cooldown_ms", 500},
                                                                  {"max_cooldown_ms", 9000}}))
                       .circuit;
  EXPECT_EQ(set.failure_threshold, 7);
  EXPECT_DOUBLE_EQ(set.failure_ratio, 0.25);
  EXPECT_EQ(set.minimum_outcomes, 4);
  EXPECT_EQ(set.window, Millis(3000));
  EXPECT_EQ(set.cooldown, Millis(500));
  EXPECT_EQ(set.max_cooldown, Millis(9000));
  EXPECT_DOUBLE_EQ(
      PipelineConfig::from_json(config_with_circuit({{"failure_ratio", 0}})).circuit.failure_ratio, 0);
}

TEST(PipelineCircuitConfig, BadValuesNameTheirKey) {
  EXPECT_EQ(error_key({{"failure_ratio", 1.5}}), "circuit.failure_ratio");
  EXPECT_EQ(error_key({{"failure_ratio", -0.1}}), "circuit.failure_ratio");
  EXPECT_EQ(error_key({{"failure_ratio", "half"}}), "circuit.failure_ratio");
  EXPECT_EQ(error_key({{"minimum_outcomes", 0}}), "circuit.minimum_outcomes");
  EXPECT_EQ(error_key({{"window_ms", 5}}), "circuit.window_ms");
}

TEST(PipelineMetricsCircuit, StateGaugeAndTripCounter) {
  metrics::PipelineMetrics metrics;
  metrics.circuit_state("openai", "closed");
  metrics.circuit_state("mock", "closed");
  metrics.circuit_state("mock", "open");
  metrics.circuit_state("mock", "open");  // no change: not a second trip
  metrics.circuit_state("mock", "half_open");
  metrics.circuit_state("mock", "open");
  const auto snapshot = metrics.snapshot();
  EXPECT_EQ(snapshot["circuits"]["mock"], (json{{"state", "open"}, {"trips", 2}}));
  EXPECT_EQ(snapshot["circuits"]["openai"], (json{{"state", "closed"}, {"trips", 0}}));
  const auto text = metrics.prometheus();
  EXPECT_NE(text.find("kafka_llm_circuit_open{provider=\"mock\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("kafka_llm_circuit_open{provider=\"openai\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("kafka_llm_circuit_trips_total{provider=\"mock\"} 2\n"), std::string::npos) << text;
  metrics.circuit_state("mock", "half_open");
  EXPECT_NE(metrics.prometheus().find("kafka_llm_circuit_open{provider=\"mock\"} 0.5\n"), std::string::npos);
}

}  // namespace
}  // namespace kafka_llm::pipeline
