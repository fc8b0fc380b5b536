#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <vector>

#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/producer.hpp"

namespace kafka_llm::kafka {

/// The group metadata (group, generation, member id) of `consumer` now: what a transaction's offsets
/// are checked against, so a member fenced by a rebalance cannot commit. Thread-safe.
GroupMetadataPtr group_metadata(const Consumer& consumer);

/// How a transactional call went (librdkafka's error classes).
struct TxnOutcome {
  enum class Kind : std::uint8_t {
    kOk,
    kRetriable,  ///< try the same call again
    kAbortable,  ///< abort the transaction, then go on with a new one
    kFatal,      ///< the producer is unusable (fenced by a newer instance): make a new one
  };
  Kind kind = Kind::kOk;
  std::string message;
  bool ok() const noexcept { return kind == Kind::kOk; }
};

/// A transactional producer (docs/guarantees.md, "Exactly-once"): records and consumer offsets
/// committed together or not at all. `transactional.id` and idempotence are set here. Not
/// thread-safe: one thread drives the transaction calls (they block); produce() is thread-safe.
class TransactionalProducer {
 public:
  /// Creates the producer and registers `transactional_id` with its coordinator, fencing any
  /// earlier producer of that id. Throws ConfigError for a bad property, KafkaError when the
  /// coordinator does not answer within `timeout_ms`.
  TransactionalProducer(const Properties& props, const std::string& transactional_id, int timeout_ms);

  TxnOutcome begin();
  /// Enqueues a record of the open transaction; waits (serving the producer) while its queue is full.
  TxnOutcome produce(const std::string& topic, const std::optional<std::string>& key,
                     const std::string& value, const HeaderList& headers);
  /// Adds `offsets` (the next record to consume, per partition) of the group described by
  /// `metadata` to the open transaction.
  TxnOutcome send_offsets(const std::vector<TopicPartition>& offsets,
                          const rd_kafka_consumer_group_metadata_t* metadata, int timeout_ms);
  /// Flushes and commits the open transaction.
  TxnOutcome commit(int timeout_ms);
  TxnOutcome abort(int timeout_ms);

  const std::string& transactional_id() const noexcept { return transactional_id_; }

 private:
  std::string transactional_id_;
  std::unique_ptr<Producer> producer_;
};

}  // namespace kafka_llm::kafka
