#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kafka_llm/kafka/client_config.hpp"

namespace kafka_llm::kafka {

struct NewTopic {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  /// Topic configs, e.g. {"cleanup.policy", "compact"}.
  Properties config;
};

/// Creates topics and waits (bounded by timeout_ms) until the broker confirmed them and the
/// metadata shows every partition. Topics that already exist are left as they are.
/// Throws KafkaError naming the topic and the broker's reason on any other failure.
void create_topics(const Properties& props, const std::vector<NewTopic>& topics, int timeout_ms);

/// Number of partitions of a topic from a metadata request, or -1 if it does not exist.
int partition_count(const Properties& props, const std::string& topic, int timeout_ms);

}  // namespace kafka_llm::kafka
