#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/handles.hpp"

namespace kafka_llm::kafka {

struct NewTopic {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  /// Topic configs, e.g. {"cleanup.policy", "compact"}.
  Properties config;
};

/// One member of a consumer group, as the group coordinator describes it.
struct GroupMember {
  std::string member_id;
  std::string client_id;
  std::string host;
  std::vector<TopicPartition> assignment;  ///< offsets unset
};

/// A consumer group: its state ("Empty", "Stable", "PreparingRebalance", "CompletingRebalance",
/// "Dead" for a group the coordinator does not know, "Unknown") and its members.
struct GroupDescription {
  std::string group_id;
  std::string state;
  std::vector<GroupMember> members;
};

/// One client handle for metadata, topic, consumer-group and offset requests (tools, not the hot
/// path). Every call blocks for up to `timeout_ms` and throws KafkaError naming what was asked and
/// the broker's reason. Move-only; not thread-safe.
class AdminClient {
 public:
  /// Throws ConfigError for a bad property and KafkaError when the client cannot be created.
  explicit AdminClient(const Properties& props);

  /// Creates topics and waits until the broker confirmed them and the metadata shows every
  /// partition with a leader. Topics that already exist are left as they are.
  void create_topics(const std::vector<NewTopic>& topics, int timeout_ms);

  /// Number of partitions of a topic from a metadata request, or -1 if it does not exist
  /// (0 while a new topic's partitions have no leader yet). Never auto-creates the topic.
  int partition_count(const std::string& topic, int timeout_ms);

  /// The partition's (low, high) watermarks asked of its leader.
  std::pair<std::int64_t, std::int64_t> watermarks(const std::string& topic, std::int32_t partition,
                                                   int timeout_ms);

  /// For each (topic, partition, offset = timestamp in epoch ms): the earliest offset whose record
  /// timestamp is at or after that time, or -1 when there is none (the time is past the last record).
  std::vector<TopicPartition> offsets_for_times(const std::vector<TopicPartition>& query, int timeout_ms);

  /// The group's state and members (DescribeConsumerGroups).
  GroupDescription describe_group(const std::string& group, int timeout_ms);

  /// The group's committed offsets of the given partitions (offsets of the input are ignored);
  /// RD_KAFKA_OFFSET_INVALID (-1001) where the group has none. Works whatever the group's state.
  std::vector<TopicPartition> committed_offsets(const std::string& group,
                                                const std::vector<TopicPartition>& partitions,
                                                int timeout_ms);

  /// Sets the group's committed offsets (AlterConsumerGroupOffsets). The broker accepts this only
  /// while the group has no active members; otherwise (and for any other partition-level error)
  /// throws KafkaError naming the partitions and the broker's reason. Nothing is half-applied by
  /// this client, but the broker may have stored the partitions that did not fail.
  void alter_committed_offsets(const std::string& group, const std::vector<TopicPartition>& offsets,
                               int timeout_ms);

  rd_kafka_t* handle() const noexcept { return rk_.get(); }

 private:
  /// Waits for the result event of one admin request on queue_; throws on a request-level error.
  EventPtr wait_for_result(rd_kafka_event_type_t type, int timeout_ms, const std::string& what);

  KafkaPtr rk_;
  QueuePtr queue_;
};

/// Creates topics with a short-lived AdminClient (see AdminClient::create_topics).
void create_topics(const Properties& props, const std::vector<NewTopic>& topics, int timeout_ms);

/// Number of partitions of a topic with a short-lived AdminClient (see AdminClient::partition_count).
int partition_count(const Properties& props, const std::string& topic, int timeout_ms);

}  // namespace kafka_llm::kafka
