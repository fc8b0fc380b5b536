#include "kafka_llm/kafka/delivery_producer.hpp"

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::kafka {

DeliveryProducer::DeliveryProducer(const Properties& props) : producer_(props) {}

std::uint64_t DeliveryProducer::produce(const std::string& topic, std::string_view value,
                                        std::optional<std::string_view> key, const HeaderList& headers,
                                        std::int32_t partition) {
  const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  const auto err = producer_.produce(
      topic, key, value, headers,
      [this, id](const DeliveryReport& r) {
        std::lock_guard lock(mutex_);
        reports_.emplace_back(id, r.ok() ? std::nullopt : std::optional<std::string>(r.error_message));
      },
      partition);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw KafkaError(std::string("produce failed: ") + rd_kafka_err2str(err));
  return id;
}

std::vector<DeliveryProducer::Report> DeliveryProducer::poll(int timeout_ms) {
  producer_.poll(timeout_ms);
  return take();
}

std::vector<DeliveryProducer::Report> DeliveryProducer::flush(int timeout_ms) {
  (void)producer_.flush(timeout_ms);
  return take();
}

std::vector<DeliveryProducer::Report> DeliveryProducer::take() {
  std::lock_guard lock(mutex_);
  return std::exchange(reports_, {});
}

}  // namespace kafka_llm::kafka
