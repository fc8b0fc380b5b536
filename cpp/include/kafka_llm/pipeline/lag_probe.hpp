#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/consumer.hpp"

namespace kafka_llm::pipeline {

/// The lag a broker-side observer sees (docs/operations.md, "Scaling on lag"): the high watermark
/// minus the group's committed offset, or minus the low watermark when the group committed nothing
/// there (it starts from the earliest record). Never negative.
std::int64_t committed_lag(std::int64_t low, std::int64_t high, std::int64_t committed) noexcept;

/// One partition's lag as the brokers know it.
struct PartitionLag {
  std::string group;
  kafka::TopicPartition partition;  ///< offset unset
  std::int64_t lag = 0;
};

/// Asks the brokers, every `interval`, for the committed offsets of each stream's group and the high
/// watermarks of the partitions this worker owns, on a thread of its own (the requests block; the poll
/// loop must not). It asks through the streams' own consumers (rd_kafka_committed and
/// rd_kafka_query_watermark_offsets are thread-safe): librdkafka 2.0's admin ListConsumerGroupOffsets
/// crashed its own thread when the broker restarted mid-request. What it learns goes to `report`,
/// called on that thread.
class LagProbe {
 public:
  /// The partitions a group owns in this worker, and the group's consumer (it must stay alive until
  /// stop(): the probe asks through it).
  struct Target {
    std::string group;
    kafka::Consumer* consumer = nullptr;
    std::vector<kafka::TopicPartition> partitions;
  };
  using Report = std::function<void(std::vector<PartitionLag> lags)>;

  /// The thread starts at once.
  LagProbe(std::chrono::milliseconds interval, Report report);
  /// Calls stop().
  ~LagProbe();
  /// Stops and joins the thread (waiting for a query under way); idempotent. No consumer is used
  /// after it returns.
  void stop();
  LagProbe(const LagProbe&) = delete;
  LagProbe& operator=(const LagProbe&) = delete;
  LagProbe(LagProbe&&) = delete;
  LagProbe& operator=(LagProbe&&) = delete;

  /// What to ask about from now on (call from any thread).
  void set_targets(std::vector<Target> targets);

 private:
  void run(const kafka::Properties& props);

  std::chrono::milliseconds interval_;
  Report report_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Target> targets_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kafka_llm::pipeline
