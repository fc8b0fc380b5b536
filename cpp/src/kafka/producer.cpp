#include "kafka_llm/kafka/producer.hpp"

#include <array>
#include <memory>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/message.hpp"

namespace kafka_llm::kafka {

Producer::Producer(const Properties& props) {
  ConfPtr conf = make_conf(props);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Producer::on_delivery_report);
  std::array<char, 512> errstr{};
  rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr.data(), errstr.size()));
  if (!rk_) throw KafkaError(std::string("cannot create Kafka producer: ") + errstr.data());
  (void)conf.release();  // rd_kafka_new took ownership
  main_queue_.reset(rd_kafka_queue_get_main(rk_.get()));
}

Producer::~Producer() {
  if (!rk_) return;
  rd_kafka_flush(rk_.get(), 5000);
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  // Serve the purge reports so every callback (and its heap state) is released.
  while (rd_kafka_outq_len(rk_.get()) > 0 && rd_kafka_poll(rk_.get(), 100) >= 0) {
    if (rd_kafka_outq_len(rk_.get()) == 0) break;
  }
  rd_kafka_poll(rk_.get(), 0);
  topics_.clear();
  main_queue_.reset();
  rk_.reset();
}

rd_kafka_resp_err_t Producer::produce(std::string_view topic, std::optional<std::string_view> key,
                                      std::string_view value, const HeaderList& headers,
                                      DeliveryCallback on_delivery, std::int32_t partition) {
  auto callback = std::make_unique<DeliveryCallback>(std::move(on_delivery));
  HeadersPtr rd_headers = to_rd_headers(headers);
  const std::string topic_name(topic);
  std::array<rd_kafka_vu_t, 7> vus{};
  vus[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  vus[0].u.cstr = topic_name.c_str();
  vus[1].vtype = RD_KAFKA_VTYPE_PARTITION;
  vus[1].u.i32 = partition;
  vus[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[2].u.i = RD_KAFKA_MSG_F_COPY;
  vus[3].vtype = RD_KAFKA_VTYPE_VALUE;
  vus[3].u.mem = {const_cast<char*>(value.data()), value.size()};
  vus[4].vtype = RD_KAFKA_VTYPE_KEY;
  vus[4].u.mem = {key ? const_cast<char*>(key->data()) : nullptr, key ? key->size() : 0};
  vus[5].vtype = RD_KAFKA_VTYPE_HEADERS;
  vus[5].u.headers = rd_headers.get();
  vus[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vus[6].u.ptr = callback.get();
  ErrorPtr error(rd_kafka_produceva(rk_.get(), vus.data(), vus.size()));
  if (error) return rd_kafka_error_code(error.get());
  (void)rd_headers.release();  // owned by the message now
  (void)callback.release();    // freed in on_delivery_report
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

void Producer::on_delivery_report(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* /*opaque*/) {
  std::unique_ptr<DeliveryCallback> callback(static_cast<DeliveryCallback*>(message->_private));
  if (!callback || !*callback) return;
  DeliveryReport report;
  report.error = message->err;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) report.error_message = rd_kafka_err2str(message->err);
  report.partition = message->partition;
  report.offset = message->offset;
  report.status = rd_kafka_message_status(message);
  (*callback)(report);
}

void Producer::prepare_topic(const std::string& topic) {
  const std::lock_guard lock(topics_mutex_);
  for (const auto& known : topics_) {
    if (topic == rd_kafka_topic_name(known.get())) return;
  }
  // A new topic handle makes librdkafka query the topic's leaders at once (asynchronously).
  TopicPtr handle(rd_kafka_topic_new(rk_.get(), topic.c_str(), nullptr));
  if (handle) topics_.push_back(std::move(handle));
}

int Producer::poll(int timeout_ms) {
  return rd_kafka_poll(rk_.get(), timeout_ms);
}

rd_kafka_resp_err_t Producer::flush(int timeout_ms) {
  return rd_kafka_flush(rk_.get(), timeout_ms);
}

int Producer::outstanding() const noexcept {
  return rd_kafka_outq_len(rk_.get());
}

std::string Producer::fatal_error() const {
  std::array<char, 512> errstr{};
  if (rd_kafka_fatal_error(rk_.get(), errstr.data(), errstr.size()) == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return errstr.data();
}

}  // namespace kafka_llm::kafka
