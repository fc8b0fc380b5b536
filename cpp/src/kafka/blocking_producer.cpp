#include "kafka_llm/kafka/blocking_producer.hpp"

#include <utility>

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::kafka {

namespace {
// How long produce() serves delivery reports before trying again when the local queue is full.
constexpr int kQueueFullPollMs = 50;
}  // namespace

BlockingProducer::BlockingProducer(const Properties& props) : producer_(props) {}

std::uint64_t BlockingProducer::produce(const std::string& topic, std::string_view value,
                                        std::optional<std::string_view> key, const HeaderList& headers,
                                        std::int32_t partition, Tracking tracking) {
  std::uint64_t id = 0;
  if (tracking == Tracking::kTracked) {
    std::lock_guard lock(mutex_);
    id = ++next_id_;
  }
  for (;;) {
    const auto err = producer_.produce(
        topic, key, value, headers, [this, id](const DeliveryReport& r) { on_delivery(id, r); }, partition);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return id;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      throw KafkaError(std::string("produce failed: ") + rd_kafka_err2str(err));
    producer_.poll(kQueueFullPollMs);
  }
}

void BlockingProducer::on_delivery(std::uint64_t id, const DeliveryReport& report) {
  std::lock_guard lock(mutex_);
  if (!report.ok()) failures_.push_back(report.error_message);
  if (id == 0) return;
  deliveries_.push_back({id, report.partition, report.offset,
                         report.ok() ? std::nullopt : std::optional<std::string>(report.error_message)});
}

std::vector<std::string> BlockingProducer::flush(int timeout_ms) {
  if (producer_.flush(timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("flush timed out with " + std::to_string(producer_.outstanding()) +
                     " records outstanding");
  }
  std::lock_guard lock(mutex_);
  return std::exchange(failures_, {});
}

std::vector<BlockingProducer::Delivery> BlockingProducer::take_deliveries() {
  std::lock_guard lock(mutex_);
  return std::exchange(deliveries_, {});
}

}  // namespace kafka_llm::kafka
