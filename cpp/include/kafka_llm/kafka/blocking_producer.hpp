#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/kafka/client_config.hpp"
#include "kafka_llm/kafka/producer.hpp"

namespace kafka_llm::kafka {

/// Whether a produced record leaves its delivery (partition, offset, error) for take_deliveries().
enum class Tracking : std::uint8_t { kUntracked, kTracked };

/// A blocking producer for tools and tests: produce() enqueues (waiting while librdkafka's local
/// queue is full), flush() waits for every delivery report and returns the failures. A tracked
/// record also leaves its Delivery for take_deliveries(); untracked records keep nothing.
/// Thread-safe. Non-copyable, non-movable; the destructor behaves as Producer's.
class BlockingProducer {
 public:
  struct Delivery {
    std::uint64_t id = 0;
    std::int32_t partition = RD_KAFKA_PARTITION_UA;
    std::int64_t offset = RD_KAFKA_OFFSET_INVALID;
    std::optional<std::string> error;  ///< librdkafka's reason when the record failed
  };

  /// Throws ConfigError for a bad property and KafkaError when the client can't be created.
  explicit BlockingProducer(const Properties& props);

  /// Enqueues a record; returns its delivery id (0 when untracked). Throws KafkaError when
  /// librdkafka refuses it for another reason than a full queue (e.g. a record too large).
  std::uint64_t produce(const std::string& topic, std::string_view value, std::optional<std::string_view> key,
                        const HeaderList& headers, std::int32_t partition, Tracking tracking);

  /// Waits up to timeout_ms for every delivery report; returns the error messages of the records
  /// that failed since the last flush. Throws KafkaError when records are still outstanding then.
  std::vector<std::string> flush(int timeout_ms);

  /// Deliveries of tracked records reported since the last call.
  std::vector<Delivery> take_deliveries();

  /// Records not yet acknowledged.
  int outstanding() const noexcept { return producer_.outstanding(); }

 private:
  void on_delivery(std::uint64_t id, const DeliveryReport& report);

  // Declared before producer_: its destructor still runs delivery callbacks that use them.
  std::mutex mutex_;
  std::vector<std::string> failures_;
  std::vector<Delivery> deliveries_;
  std::uint64_t next_id_ = 0;
  Producer producer_;
};

}  // namespace kafka_llm::kafka
