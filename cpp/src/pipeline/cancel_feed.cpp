#include "kafka_llm/pipeline/cancel_feed.hpp"

#include <boost/asio/post.hpp>
#include <random>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"
#include "kafka_llm/kafka/admin.hpp"

namespace kafka_llm::pipeline {

namespace {
/// Records served per turn of the io loop, so that the requests get their share.
constexpr int kPollBatch = 256;

std::string random_suffix() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out(12, '0');
  for (auto& c : out) c = kHex[rd() % 16];
  return out;
}
}  // namespace

CancelFeed::CancelFeed(boost::asio::io_context& io, const kafka::Properties& props, const std::string& topic,
                       std::chrono::milliseconds retention, const std::string& key, CancelHandler on_cancel,
                       InvalidHandler on_invalid, std::chrono::milliseconds timeout)
    : io_(io), on_cancel_(std::move(on_cancel)), on_invalid_(std::move(on_invalid)) {
  const int timeout_ms = static_cast<int>(timeout.count());
  std::vector<kafka::TopicPartition> start;
  {
    kafka::AdminClient admin(props);
    const int partitions = admin.partition_count(topic, timeout_ms);
    if (partitions < 0)
      throw ConfigError(key, "the topic \"" + topic + "\" does not exist (create it first)");
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch() - retention)
                           .count();
    std::vector<kafka::TopicPartition> query;
    query.reserve(static_cast<std::size_t>(partitions));
    for (int p = 0; p < partitions; ++p) query.push_back({topic, p, since});
    // The first record at or after `since`, else the partition's end: a concrete offset, never the
    // logical end, which librdkafka resolves only once it knows the leader, after records produced
    // meanwhile.
    start = admin.offsets_for_times(query, timeout_ms);
    for (auto& tp : start) {
      const auto [low, high] = admin.watermarks(tp.topic, tp.partition, timeout_ms);
      if (tp.offset < 0) tp.offset = high;
      if (high > tp.offset) catch_up_to_.push_back({tp.topic, tp.partition, high});
    }
  }
  kafka::Properties consumer_props = props;
  // A group of its own that never joins or commits: librdkafka serves an assigned consumer through
  // the consumer queue only when it has a group id.
  kafka::set_property(consumer_props, "group.id", "kafka-llm-cancel-" + random_suffix());
  kafka::set_property(consumer_props, "auto.offset.reset", "latest");
  consumer_ = std::make_unique<kafka::Consumer>(
      consumer_props, [](kafka::RebalanceKind, const std::vector<kafka::TopicPartition>&) {},
      [](rd_kafka_resp_err_t, const std::vector<kafka::TopicPartition>&) {});
  consumer_->assign(start);
}

CancelFeed::~CancelFeed() {
  close();
}

void CancelFeed::catch_up(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!catch_up_to_.empty()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log(LogLevel::kWarning, "the control topic was not read back within " +
                                  std::to_string(timeout.count()) +
                                  " ms; the rest of it is read while requests are taken");
      return;
    }
    auto message = consumer_->poll(100);
    if (!message || message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    hand_over(*message);
    std::erase_if(catch_up_to_, [&](const kafka::TopicPartition& tp) {
      return tp.partition == message->partition() && message->offset() + 1 >= tp.offset;
    });
  }
}

void CancelFeed::start_polling() {
  watcher_ = std::make_unique<kafka::QueueWatcher>(io_, consumer_->queue(), [this] { drain(); });
  drain();
}

void CancelFeed::drain() {
  if (closed_) return;
  for (int i = 0; i < kPollBatch; ++i) {
    auto message = consumer_->poll(0);
    if (!message) return;
    if (message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // A partition end, or a broker blip librdkafka recovers from by itself.
      if (message->error() != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        log(LogLevel::kWarning, "reading the control topic: " + message->error_string());
      continue;
    }
    hand_over(*message);
  }
  boost::asio::post(io_, [this] { drain(); });
}

void CancelFeed::hand_over(const kafka::Message& message) {
  auto parsed = format::parse_cancel_record(message.key(), message.value());
  if (auto* error = std::get_if<format::FormatError>(&parsed)) {
    on_invalid_(error->message + " (" + std::string(message.topic()) + "/" +
                std::to_string(message.partition()) + "@" + std::to_string(message.offset()) + ")");
    return;
  }
  on_cancel_(std::get<format::CancelRecord>(parsed), message.timestamp_ms());
}

void CancelFeed::close() {
  closed_ = true;
  watcher_.reset();
  if (consumer_) consumer_->close();
}

}  // namespace kafka_llm::pipeline
