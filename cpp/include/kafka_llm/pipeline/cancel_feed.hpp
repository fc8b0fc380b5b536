#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kafka_llm/format/cancel_record.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/queue_watcher.hpp"

namespace kafka_llm::pipeline {

/// Reads a stream's control topic (`cancelURL`, docs/guarantees.md "Cancellation") on the io thread:
/// every partition, from `retention` back, without a group's assignment or commits, since every
/// worker must see every cancellation. Each record is handed to `on_cancel` (with its timestamp) or,
/// when it cannot be read, to `on_invalid` with the reason.
class CancelFeed {
 public:
  using CancelHandler = std::function<void(const format::CancelRecord& record, std::int64_t at_ms)>;
  using InvalidHandler = std::function<void(const std::string& why)>;

  /// Blocking (a worker's start): looks up the topic's partitions and the offsets `retention` back.
  /// Throws ConfigError naming `key` when the topic does not exist, KafkaError when the brokers
  /// cannot answer within `timeout`.
  CancelFeed(boost::asio::io_context& io, const kafka::Properties& props, const std::string& topic,
             std::chrono::milliseconds retention, const std::string& key, CancelHandler on_cancel,
             InvalidHandler on_invalid, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~CancelFeed();
  CancelFeed(const CancelFeed&) = delete;
  CancelFeed& operator=(const CancelFeed&) = delete;
  CancelFeed(CancelFeed&&) = delete;
  CancelFeed& operator=(CancelFeed&&) = delete;

  /// Blocking (a worker's start, before it takes requests): hands over every record that was on the
  /// topic when the feed was made, so a request consumed next already sees its cancellation. Gives up
  /// after `timeout` with a warning (the rest comes through start_polling()).
  void catch_up(std::chrono::milliseconds timeout);
  /// Starts reading (on the io thread).
  void start_polling();
  /// Stops reading and closes the consumer (on the io thread, or after it stopped). A drain the io
  /// loop still holds does nothing; destroy the feed only once the loop has stopped.
  void close();

 private:
  void drain();
  void hand_over(const kafka::Message& message);

  boost::asio::io_context& io_;
  CancelHandler on_cancel_;
  InvalidHandler on_invalid_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::QueueWatcher> watcher_;
  std::vector<kafka::TopicPartition> catch_up_to_;  ///< the high watermarks when the feed was made
  bool closed_ = false;
};

}  // namespace kafka_llm::pipeline
