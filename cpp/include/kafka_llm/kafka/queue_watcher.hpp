#pragma once

#include <librdkafka/rdkafka.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>

namespace kafka_llm::kafka {

/// Wakes an Asio event loop when a librdkafka queue becomes non-empty, so the loop can poll the
/// queue with a zero timeout instead of blocking in it. librdkafka writes to a pipe only when
/// the queue goes from empty to non-empty: `on_ready` must drain the queue (or re-post itself
/// until it has). Lives on the io_context's thread; the queue must outlive the watcher.
class QueueWatcher {
 public:
  QueueWatcher(boost::asio::io_context& io, rd_kafka_queue_t* queue, std::function<void()> on_ready);
  ~QueueWatcher();
  QueueWatcher(const QueueWatcher&) = delete;
  QueueWatcher& operator=(const QueueWatcher&) = delete;
  QueueWatcher(QueueWatcher&&) = delete;
  QueueWatcher& operator=(QueueWatcher&&) = delete;

 private:
  void arm();

  rd_kafka_queue_t* queue_;
  std::function<void()> on_ready_;
  boost::asio::posix::stream_descriptor read_end_;
  int write_fd_ = -1;
};

}  // namespace kafka_llm::kafka
