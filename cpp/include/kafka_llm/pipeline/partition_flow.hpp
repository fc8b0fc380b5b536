#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/queue_watcher.hpp"
#include "kafka_llm/kafka/transactional_producer.hpp"
#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/pipeline/flow_control.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"
#include "kafka_llm/policy/key_gate.hpp"
#include "kafka_llm/policy/offset_tracker.hpp"

namespace kafka_llm::pipeline {

/// One stream's side of Kafka (docs/architecture.md, "Partition flow"): its consumer, the partitions
/// assigned to it, the in-flight window and the backlog behind it, pause/resume as FlowControl
/// decides, and commits of contiguous finished work through its policy::OffsetTracker. Records are
/// handed to the pipeline as jobs; the flow knows them only by id. Runs on the io thread.
class PartitionFlow {
 public:
  struct Handlers {
    /// A consumed record, begun in the tracker: make its job and return its id.
    std::function<std::uint64_t(kafka::Message&& message, policy::OffsetTicket ticket)> record;
    /// A job got a slot in the window: start it.
    std::function<void(std::uint64_t job)> start;
    /// A job that never started is dropped (its record is left to the partition's next owner).
    std::function<void(std::uint64_t job)> drop;
    /// `parts` are being revoked or lost: the started jobs of these partitions are told.
    std::function<void(const std::vector<kafka::TopicPartition>& parts)> revoked;
    /// The assignment or the paused state changed.
    std::function<void()> changed;
  };

  /// Creates the consumer (group, cooperative-sticky, manual commits); throws like kafka::Consumer.
  PartitionFlow(boost::asio::io_context& io, const StreamConfig& config, const kafka::Properties& kafka,
                metrics::PipelineMetrics& metrics, const std::vector<std::string>& secrets,
                Handlers handlers);
  ~PartitionFlow();
  PartitionFlow(const PartitionFlow&) = delete;
  PartitionFlow& operator=(const PartitionFlow&) = delete;
  PartitionFlow(PartitionFlow&&) = delete;
  PartitionFlow& operator=(PartitionFlow&&) = delete;

  void subscribe();
  /// Starts serving the consumer's queue on the io thread.
  void start_polling();
  /// Serves up to a batch of consumer events, then posts itself again while events remain.
  void drain_consumer();
  /// A started job ended (finished or abandoned): frees its slot, lets the next record of its key go
  /// (`ordering: key`), starts the backlog, updates the flow.
  void released(std::uint64_t job);
  /// Stop: pauses every partition and drops the backlog.
  void stop_taking();
  /// Commits the committable positions (asynchronously: skipping those already on their way).
  /// Nothing in exactly-once mode: offsets go with the transactions.
  void commit(kafka::CommitMode mode);
  /// Exactly-once mode: the assigned partitions whose position advanced since its last commit.
  std::vector<policy::CommitPosition> advanced() const;
  /// Exactly-once mode: `positions` were committed in a transaction.
  void mark_committed(const std::vector<policy::CommitPosition>& positions);
  /// Exactly-once mode, after an aborted transaction: each partition still in the same assignment
  /// goes back to `to`'s offset (its started jobs are told as on a revoke, its backlog dropped, a new
  /// generation begun) and consumes again from there.
  void rewind(const std::vector<policy::CommitPosition>& to);
  /// The stream's consumer (null once released), for the lag probe's thread-safe queries.
  kafka::Consumer* consumer() const noexcept { return consumer_.get(); }
  /// The consumer's group metadata now, for a transaction's offsets.
  kafka::GroupMetadataPtr group_metadata() const;
  /// Leaves the group (serving the final revoke) and releases the consumer.
  void close();
  void release_consumer();
  /// Finishes a job's offset; stale tickets (after a revoke) are ignored.
  policy::FinishResult finish(const policy::OffsetTicket& ticket) { return offsets_.finish(ticket); }

  const StreamConfig& config() const noexcept { return config_; }
  const std::vector<kafka::TopicPartition>& assignment() const noexcept { return assignment_; }
  bool paused() const noexcept { return paused_; }
  std::size_t inflight() const noexcept { return inflight_; }
  /// Records consumed and not started: waiting for a slot, or held behind an earlier record of their key.
  std::size_t backlog() const noexcept { return backlog_.size() + gate_.held(); }

 private:
  void on_rebalance(kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts);
  void revoke(kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts);
  /// Drops the backlog and held records of `parts` and tells their started jobs (revoke and rewind).
  void let_go(const std::vector<kafka::TopicPartition>& parts);
  void on_commit(rd_kafka_resp_err_t err, const std::vector<kafka::TopicPartition>& offsets);
  void on_record(kafka::Message&& message);
  /// A record free to run: started when the window has a slot, else queued (at the front: `first`).
  void ready(std::uint64_t job, policy::PartitionKey partition, bool first);
  void start_backlog();
  void drop_held(const std::vector<std::uint64_t>& jobs);
  void update_flow();

  boost::asio::io_context& io_;
  const StreamConfig& config_;
  metrics::PipelineMetrics& metrics_;
  const std::vector<std::string>& secrets_;
  Handlers handlers_;
  FlowControl flow_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::QueueWatcher> watcher_;
  std::vector<kafka::TopicPartition> assignment_;
  std::size_t inflight_ = 0;  ///< jobs started (the maxHandlers window)
  struct Waiting {
    std::uint64_t job = 0;
    policy::PartitionKey partition;
  };
  std::deque<Waiting> backlog_;  ///< consumed, waiting for a slot in the window
  policy::KeyGate gate_;         ///< `ordering: key`: records held behind an earlier one of their key
  bool paused_ = false;
  bool stopping_ = false;
  policy::OffsetTracker offsets_;
  std::map<policy::PartitionKey, policy::CommitPosition> commits_in_flight_;
};

}  // namespace kafka_llm::pipeline
