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
  return {{"kafka", {{"bootstrap.servers", "127.0.0.1:9092"}}},
          {"messaging",
           {{"streams",
             json::array({{{"requestsURL", "kafka://g?topic=req"}, {"responsesURL", "kafka://resp"}}})}}},
          {"providers", json::array({{{"name", "mock"}, {"baseURL", "http://127.0.0.1:1/v1"}}})},
          {"circuit", circuit}};
}

std::string error_key(const json& circuit) {
  try {
    (void)PipelineConfig::parse(config_with_circuit(circuit));
  } catch (const ConfigError& e) {
    return e.key();
  }
  return "";
}

TEST(PipelineCircuitConfig, DefaultsAndEveryKey) {
  const auto defaults = PipelineConfig::parse(config_with_circuit(json::object())).circuit;
  EXPECT_EQ(defaults.failure_threshold, 20);
  EXPECT_DOUBLE_EQ(defaults.failure_ratio, 0.5);
  EXPECT_EQ(defaults.minimum_outcomes, 20);
  EXPECT_EQ(defaults.window, Millis(10'000));

  const auto set = PipelineConfig::parse(config_with_circuit({{"failureThreshold", 7},
                                                              {"failureRatio", 0.25},
                                                              {"minimumOutcomes", 4},
                                                              {"window", "3s"},
                                                              {"cooldown", "500ms"},
                                                              {"maxCooldown", "9s"}}))
                       .circuit;
  EXPECT_EQ(set.failure_threshold, 7);
  EXPECT_DOUBLE_EQ(set.failure_ratio, 0.25);
  EXPECT_EQ(set.minimum_outcomes, 4);
  EXPECT_EQ(set.window, Millis(3000));
  EXPECT_EQ(set.cooldown, Millis(500));
  EXPECT_EQ(set.max_cooldown, Millis(9000));
  EXPECT_DOUBLE_EQ(PipelineConfig::parse(config_with_circuit({{"failureRatio", 0}})).circuit.failure_ratio,
                   0);
}

TEST(PipelineCircuitConfig, BadValuesNameTheirKey) {
  EXPECT_EQ(error_key({{"failureRatio", 1.5}}), "circuit.failureRatio");
  EXPECT_EQ(error_key({{"failureRatio", -0.1}}), "circuit.failureRatio");
  EXPECT_EQ(error_key({{"failureRatio", "half"}}), "circuit.failureRatio");
  EXPECT_EQ(error_key({{"minimumOutcomes", 0}}), "circuit.minimumOutcomes");
  EXPECT_EQ(error_key({{"window", "5ms"}}), "circuit.window");
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
