#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/producer.hpp"

namespace kafka_llm::kafka {

/// A producer for event-loop callers (the HTTP service): produce() enqueues and returns a delivery
/// id at once; poll() serves delivery reports and returns (id, error or nullopt, persistence) for
/// each record whose fate is known. produce() may be called from any thread, poll()/flush() from one thread.
/// Reports are buffered here between poll() calls, so nothing is lost when poll() runs late.
/// Non-copyable, non-movable; the destructor behaves as Producer's.
class DeliveryProducer {
 public:
  /// Whether a record is on the broker: a failed record is kNotPersisted when it certainly never
  /// reached a partition (safe to produce again), kPossiblyPersisted when it may have (sent, but
  /// unacknowledged); a delivered record is kPersisted (rd_kafka_message_status).
  enum class Persistence : std::uint8_t { kNotPersisted = 0, kPossiblyPersisted = 1, kPersisted = 2 };

  /// A record's id, librdkafka's reason when it failed (nullopt when delivered) and its persistence.
  struct Report {
    std::uint64_t id = 0;
    std::optional<std::string> error;
    Persistence persistence = Persistence::kNotPersisted;
  };

  /// Throws ConfigError for a bad property and KafkaError when the client can't be created.
  explicit DeliveryProducer(const Properties& props);

  /// Enqueues a record and returns its delivery id (never waits for the broker). Throws KafkaError
  /// when the record cannot be enqueued (e.g. a full local queue); then no report carries the id.
  std::uint64_t produce(const std::string& topic, std::string_view value, std::optional<std::string_view> key,
                        const HeaderList& headers, std::int32_t partition);

  /// Waits up to timeout_ms for delivery reports; returns every report not yet returned.
  std::vector<Report> poll(int timeout_ms);

  /// Waits up to timeout_ms until every record is delivered or failed; returns the reports not
  /// yet returned (outstanding() tells what is still in flight after a timeout).
  std::vector<Report> flush(int timeout_ms);

  /// Records not yet acknowledged.
  int outstanding() const noexcept { return producer_.outstanding(); }

 private:
  std::vector<Report> take();

  // Declared before producer_: its destructor still calls back into them.
  std::mutex mutex_;
  std::vector<Report> reports_;
  std::atomic<std::uint64_t> next_id_{1};
  Producer producer_;
};

}  // namespace kafka_llm::kafka
