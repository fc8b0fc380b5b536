#include "kafka_llm/kafka/delivery_producer.hpp"

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::kafka {

namespace {

DeliveryProducer::Persistence persistence_of(const DeliveryReport& r) {
  if (r.ok() || r.status == RD_KAFKA_MSG_STATUS_PERSISTED) return DeliveryProducer::Persistence::kPersisted;
  if (r.status == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED)
    return DeliveryProducer::Persistence::kPossiblyPersisted;
  return DeliveryProducer::Persistence::kNotPersisted;
}

}  // namespace

DeliveryProducer::DeliveryProducer(const Properties& props) : producer_(props) {}

std::uint64_t DeliveryProducer::produce(const std::string& topic, std::string_view value,
                                        std::optional<std::string_view> key, const HeaderList& headers,
                                        std::int32_t partition) {
  const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  const auto err = producer_.produce(
      topic, key, value, headers,
      [this, id](const DeliveryReport& r) {
        std::lock_guard lock(mutex_);
        reports_.push_back(Report{id, r.ok() ? std::nullopt : std::optional<std::string>(r.error_message),
                                  persistence_of(r)});
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
