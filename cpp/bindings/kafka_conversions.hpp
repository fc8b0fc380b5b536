#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/consumer.hpp"

namespace kafka_llm::bindings {

/// (topic, partition, offset) and (topic, partition), as Python passes and receives them.
using OffsetTuples = std::vector<std::tuple<std::string, std::int32_t, std::int64_t>>;
using PartitionPairs = std::vector<std::pair<std::string, std::int32_t>>;
/// Record headers as Python passes them.
using PyHeaders = std::vector<std::pair<std::string, pybind11::bytes>>;

/// librdkafka properties from a dict; values are converted with str().
kafka::Properties to_properties(const pybind11::dict& props);

std::vector<kafka::TopicPartition> from_tuples(const OffsetTuples& offsets);
std::vector<kafka::TopicPartition> from_pairs(const PartitionPairs& partitions);
OffsetTuples to_tuples(const std::vector<kafka::TopicPartition>& partitions);
PartitionPairs to_pairs(const std::vector<kafka::TopicPartition>& partitions);

HeaderList to_headers(const PyHeaders& headers);
/// A record key: None, or str/bytes.
std::optional<std::string> to_key(const pybind11::object& key);

}  // namespace kafka_llm::bindings
