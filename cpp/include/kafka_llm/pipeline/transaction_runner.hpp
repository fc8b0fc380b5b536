#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kafka_llm/kafka/transactional_producer.hpp"
#include "kafka_llm/pipeline/outputs.hpp"
#include "kafka_llm/policy/offset_tracker.hpp"

namespace kafka_llm::pipeline {

/// One transaction's content: the released outputs and, per stream, the offsets they advance its
/// group to (docs/guarantees.md, "Exactly-once").
struct TransactionBatch {
  struct Group {
    std::size_t stream = 0;
    kafka::GroupMetadataPtr metadata;
    std::vector<policy::CommitPosition> positions;  ///< the offsets committed with the outputs
    std::vector<policy::CommitPosition> rewind_to;  ///< where each partition goes back to if it aborts
  };
  std::vector<Output> outputs;
  std::vector<Group> groups;
  std::size_t records = 0;
};

/// How a transaction ended.
enum class TransactionResult : std::uint8_t {
  kCommitted,  ///< outputs and offsets are in
  kAborted,    ///< neither is: the partitions go back to their committed offsets
  kFenced,     ///< neither is, and the producer was replaced by a new one (a newer instance fenced it)
};

/// "committed", "aborted" or "fenced".
std::string_view to_string(TransactionResult result) noexcept;

/// Runs exactly-once mode's transactions on a thread of its own, since librdkafka's transaction calls
/// block and the poll loop must not. One batch at a time: begin, produce its outputs, add each
/// group's offsets, commit; an abortable failure aborts, a fatal one (fenced) makes a new producer.
/// The thread belongs to the runner: the destructor finishes the batch under way and joins it.
class TransactionRunner {
 public:
  /// Called on the runner's thread when a batch ended (post it to where it is handled).
  using Done = std::function<void(TransactionBatch batch, TransactionResult result, std::string message)>;

  /// Blocking: makes the transactional producer (`<id_prefix>-<n>`) and registers it with its
  /// coordinator. Throws ConfigError / KafkaError as kafka::TransactionalProducer does.
  TransactionRunner(kafka::Properties props, std::string id_prefix, std::chrono::milliseconds timeout,
                    Done done);
  ~TransactionRunner();
  TransactionRunner(const TransactionRunner&) = delete;
  TransactionRunner& operator=(const TransactionRunner&) = delete;
  TransactionRunner(TransactionRunner&&) = delete;
  TransactionRunner& operator=(TransactionRunner&&) = delete;

  /// Whether a batch is under way (until its Done was called).
  bool busy() const noexcept { return busy_.load(); }
  /// Hands over a batch; only when !busy().
  void submit(TransactionBatch batch);
  /// Waits until no batch is under way, for at most `timeout`; false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout);
  /// The current producer's transactional.id.
  std::string transactional_id() const;

 private:
  void run();
  TransactionResult execute(TransactionBatch& batch, std::string& message);
  /// Repeats `call` while it fails retriably, until the timeout.
  template <class Call>
  kafka::TxnOutcome with_retries(Call&& call);

  kafka::Properties props_;
  std::string id_prefix_;
  std::chrono::milliseconds timeout_;
  Done done_;
  int incarnation_ = 0;
  std::unique_ptr<kafka::TransactionalProducer> producer_;  ///< used on the runner's thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::optional<TransactionBatch> next_;
  std::string transactional_id_;
  bool stopping_ = false;
  std::atomic<bool> busy_{false};
  std::thread thread_;
};

}  // namespace kafka_llm::pipeline
