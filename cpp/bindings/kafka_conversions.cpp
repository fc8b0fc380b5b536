#include "kafka_conversions.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

kafka::Properties to_properties(const py::dict& props) {
  kafka::Properties out;
  for (const auto& [name, value] : props) {
    out.emplace_back(py::str(name).cast<std::string>(), py::str(value).cast<std::string>());
  }
  return out;
}

std::vector<kafka::TopicPartition> from_tuples(const OffsetTuples& offsets) {
  std::vector<kafka::TopicPartition> out;
  out.reserve(offsets.size());
  for (const auto& [topic, partition, offset] : offsets) out.push_back({topic, partition, offset});
  return out;
}

std::vector<kafka::TopicPartition> from_pairs(const PartitionPairs& partitions) {
  std::vector<kafka::TopicPartition> out;
  out.reserve(partitions.size());
  for (const auto& [topic, partition] : partitions) out.push_back({topic, partition});
  return out;
}

OffsetTuples to_tuples(const std::vector<kafka::TopicPartition>& partitions) {
  OffsetTuples out;
  out.reserve(partitions.size());
  for (const auto& tp : partitions) out.emplace_back(tp.topic, tp.partition, tp.offset);
  return out;
}

PartitionPairs to_pairs(const std::vector<kafka::TopicPartition>& partitions) {
  PartitionPairs out;
  out.reserve(partitions.size());
  for (const auto& tp : partitions) out.emplace_back(tp.topic, tp.partition);
  return out;
}

HeaderList to_headers(const PyHeaders& headers) {
  HeaderList out;
  out.reserve(headers.size());
  for (const auto& [name, value] : headers) out.emplace_back(name, std::string(value));
  return out;
}

std::optional<std::string> to_key(const py::object& key) {
  if (key.is_none()) return std::nullopt;
  return key.cast<std::string>();
}

}  // namespace kafka_llm::bindings
