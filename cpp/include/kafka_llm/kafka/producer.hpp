#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/handles.hpp"

namespace kafka_llm::kafka {

/// The outcome of one produced record, as reported by the broker (or by librdkafka on failure).
struct DeliveryReport {
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string error_message;
  std::int32_t partition = RD_KAFKA_PARTITION_UA;
  std::int64_t offset = RD_KAFKA_OFFSET_INVALID;
  /// librdkafka's persistence status of the record (rd_kafka_message_status): whether a failed
  /// record may still be on the broker (POSSIBLY_PERSISTED) or certainly is not (NOT_PERSISTED).
  rd_kafka_msg_status_t status = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
  bool ok() const noexcept { return error == RD_KAFKA_RESP_ERR_NO_ERROR; }
};

using DeliveryCallback = std::function<void(const DeliveryReport&)>;

/// A librdkafka producer. Thread-safe for produce(); delivery callbacks run on the thread that
/// calls poll() or flush(). Non-copyable, non-movable (librdkafka keeps a pointer to it).
/// The destructor flushes for up to 5 s, then purges what is left; every pending callback is
/// called exactly once before destruction completes (with an error for purged records), so
/// whatever the callbacks reference must outlive the Producer.
class Producer {
 public:
  /// Throws ConfigError for a bad property and KafkaError when the client can't be created.
  explicit Producer(const Properties& props);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  Producer(Producer&&) = delete;
  Producer& operator=(Producer&&) = delete;

  /// Enqueues a record. Returns NO_ERROR when enqueued (the callback will run once from poll()),
  /// or the immediate error (e.g. _QUEUE_FULL, _MSG_SIZE_TOO_LARGE) and then never calls back.
  rd_kafka_resp_err_t produce(std::string_view topic, std::optional<std::string_view> key,
                              std::string_view value, const HeaderList& headers, DeliveryCallback on_delivery,
                              std::int32_t partition = RD_KAFKA_PARTITION_UA);

  /// Looks up `topic`'s partitions and leaders now, in the background, and keeps them known: the
  /// first record produced to a topic otherwise waits for that metadata request (hundreds of
  /// milliseconds on a busy broker). Idempotent; call it for every topic the producer will write.
  void prepare_topic(const std::string& topic);

  /// Serves delivery reports and errors; returns how many events were served.
  int poll(int timeout_ms);
  /// Waits until every enqueued record is delivered or failed, serving callbacks.
  rd_kafka_resp_err_t flush(int timeout_ms);
  /// Records not yet acknowledged.
  int outstanding() const noexcept;
  /// The queue whose events poll() serves (for io-event integration).
  rd_kafka_queue_t* main_queue() const noexcept { return main_queue_.get(); }
  rd_kafka_t* handle() const noexcept { return rk_.get(); }

  /// A fatal producer error (e.g. fenced idempotent/transactional producer), or empty.
  std::string fatal_error() const;

 private:
  static void on_delivery_report(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);

  KafkaPtr rk_;
  QueuePtr main_queue_;
  std::mutex topics_mutex_;
  std::vector<TopicPtr> topics_;  // prepared topics, held so librdkafka keeps their metadata fresh
};

}  // namespace kafka_llm::kafka
