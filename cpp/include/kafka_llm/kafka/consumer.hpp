#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/handles.hpp"
#include "kafka_llm/kafka/message.hpp"

namespace kafka_llm::kafka {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = RD_KAFKA_OFFSET_INVALID;
  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
};

enum class RebalanceKind : std::uint8_t { kAssigned, kRevoked, kLost };

/// kSync waits for the broker and returns its answer; kAsync returns at once and reports through
/// the CommitHandler.
enum class CommitMode : std::uint8_t { kSync, kAsync };

/// Called on the polling thread, inside poll(). For kRevoked/kLost it runs *before* the
/// partitions are given up, so the handler can still commit their finished offsets.
using RebalanceHandler = std::function<void(RebalanceKind, const std::vector<TopicPartition>&)>;
/// Called on the polling thread with the result of a commit.
using CommitHandler = std::function<void(rd_kafka_resp_err_t, const std::vector<TopicPartition>&)>;

/// A high-level (group) consumer with manual offset commits. Works with both the eager and the
/// cooperative-sticky assignment protocols. Not thread-safe except pause()/resume()/commit();
/// poll from one thread. Non-copyable, non-movable (librdkafka keeps a pointer to it).
class Consumer {
 public:
  /// Throws ConfigError for a bad property and KafkaError when the client can't be created.
  /// `enable.auto.commit` is forced off and `enable.auto.offset.store` off: offsets move only
  /// through commit().
  Consumer(const Properties& props, RebalanceHandler on_rebalance = {}, CommitHandler on_commit = {});
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  Consumer(Consumer&&) = delete;
  Consumer& operator=(Consumer&&) = delete;

  /// Throws KafkaError if the subscription is rejected.
  void subscribe(const std::vector<std::string>& topics);
  /// Assigns partitions directly, without group management.
  void assign(const std::vector<TopicPartition>& partitions);
  /// A record, a consumer error event (check Message::error()), or nullopt on timeout.
  std::optional<Message> poll(int timeout_ms);
  /// As poll(), but a fatal error event (the consumer cannot go on, e.g. a fenced static member)
  /// throws KafkaError with librdkafka's reason; non-fatal error events are returned.
  std::optional<Message> poll_checked(int timeout_ms);
  /// Records (never error events) until `max_records` arrived or `timeout_ms` passed. Non-fatal
  /// error events are logged (a warning; a partition end at debug level) and skipped; a fatal one
  /// throws KafkaError.
  std::vector<Message> consume(std::size_t max_records, int timeout_ms);
  /// Moves the given partitions to their offsets (asynchronously; records already fetched past them
  /// are discarded). Throws KafkaError when librdkafka refuses at once.
  void seek(const std::vector<TopicPartition>& partitions);
  void pause(const std::vector<TopicPartition>& partitions);
  void resume(const std::vector<TopicPartition>& partitions);
  /// Commits the given offsets (the next offset to consume, per partition).
  /// Async commits report through the CommitHandler; a sync commit returns its error.
  rd_kafka_resp_err_t commit(const std::vector<TopicPartition>& offsets, CommitMode mode);
  /// Committed offsets of the group for the given partitions (blocking, bounded by timeout).
  std::vector<TopicPartition> committed(const std::vector<TopicPartition>& partitions, int timeout_ms);
  /// Low and high watermarks from the local cache (no broker round trip); nullopt when unknown.
  std::optional<std::pair<std::int64_t, std::int64_t>> watermarks(const std::string& topic,
                                                                  std::int32_t partition) const;
  /// The partition's (low, high) offsets asked of its leader (blocking, bounded by timeout).
  /// Throws KafkaError naming the partition and the broker's reason.
  std::pair<std::int64_t, std::int64_t> query_watermarks(const std::string& topic, std::int32_t partition,
                                                         int timeout_ms);
  /// For each given partition, the next offset this consumer hands out (RD_KAFKA_OFFSET_INVALID
  /// before its first record); offsets of the input are ignored. Throws KafkaError.
  std::vector<TopicPartition> position(const std::vector<TopicPartition>& partitions) const;
  /// The fatal error that stopped this consumer ("<error name>: <reason>"), or empty.
  std::string fatal_error() const;
  std::vector<TopicPartition> assignment() const;
  /// "COOPERATIVE", "EAGER" or "NONE".
  std::string rebalance_protocol() const;
  /// Leaves the group (serving the final revoke). Idempotent; called by the destructor.
  void close();
  /// The consumer queue that poll() serves (for io-event integration).
  rd_kafka_queue_t* queue() const noexcept { return queue_.get(); }
  rd_kafka_t* handle() const noexcept { return rk_.get(); }

 private:
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void on_offset_commit(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* offsets, void* opaque);

  RebalanceHandler on_rebalance_;
  CommitHandler on_commit_;
  KafkaPtr rk_;
  QueuePtr queue_;
  bool closed_ = false;
};

/// Converts to and from librdkafka partition lists.
TopicPartitionListPtr to_rd_list(const std::vector<TopicPartition>& partitions);
std::vector<TopicPartition> from_rd_list(const rd_kafka_topic_partition_list_t* list);

}  // namespace kafka_llm::kafka
