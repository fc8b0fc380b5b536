#include "kafka_llm/kafka/consumer.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"

namespace kafka_llm::kafka {

TopicPartitionListPtr to_rd_list(const std::vector<TopicPartition>& partitions) {
  TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = tp.offset;
  }
  return list;
}

namespace {
std::string fatal_message(const std::string& reason) {
  return "the Kafka consumer failed fatally: " + reason;
}
}  // namespace

std::vector<TopicPartition> from_rd_list(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

Consumer::Consumer(const Properties& props, RebalanceHandler on_rebalance, CommitHandler on_commit)
    : on_rebalance_(std::move(on_rebalance)), on_commit_(std::move(on_commit)) {
  Properties effective = props;
  set_property(effective, "enable.auto.commit", "false");
  set_property(effective, "enable.auto.offset.store", "false");
  ConfPtr conf = make_conf(effective);
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Consumer::on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &Consumer::on_offset_commit);
  std::array<char, 512> errstr{};
  rk_.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr.data(), errstr.size()));
  if (!rk_) throw KafkaError(std::string("cannot create Kafka consumer: ") + errstr.data());
  (void)conf.release();
  rd_kafka_poll_set_consumer(rk_.get());
  queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
}

Consumer::~Consumer() {
  close();
  queue_.reset();
  if (rk_ && rd_kafka_fatal_error(rk_.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // librdkafka 2.0 spins forever destroying a consumer that failed fatally unless told not to
    // close it again.
    rd_kafka_destroy_flags(rk_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
  rk_.reset();
}

void Consumer::close() {
  if (closed_ || !rk_) return;
  closed_ = true;
  // A consumer that failed fatally has no group to leave.
  if (rd_kafka_fatal_error(rk_.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  rd_kafka_consumer_close(rk_.get());
}

void Consumer::subscribe(const std::vector<std::string>& topics) {
  TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& topic : topics)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(rk_.get(), list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("subscribe failed: ") + rd_kafka_err2str(err));
  }
}

void Consumer::assign(const std::vector<TopicPartition>& partitions) {
  auto list = to_rd_list(partitions);
  if (auto err = rd_kafka_assign(rk_.get(), list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("assign failed: ") + rd_kafka_err2str(err));
  }
}

void Consumer::seek(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  auto list = to_rd_list(partitions);
  ErrorPtr error(rd_kafka_seek_partitions(rk_.get(), list.get(), 0));
  if (error) throw KafkaError(std::string("seek failed: ") + rd_kafka_error_string(error.get()));
}

std::optional<Message> Consumer::poll(int timeout_ms) {
  rd_kafka_message_t* message = rd_kafka_consumer_poll(rk_.get(), timeout_ms);
  if (message == nullptr) return std::nullopt;
  return Message(MessagePtr(message));
}

std::optional<Message> Consumer::poll_checked(int timeout_ms) {
  // Checked before polling too: the fatal event comes once, the consumer stays unusable.
  if (std::string reason = fatal_error(); !reason.empty()) throw KafkaError(fatal_message(reason));
  auto message = poll(timeout_ms);
  if (message && message->error() == RD_KAFKA_RESP_ERR__FATAL) {
    std::string reason = fatal_error();
    throw KafkaError(fatal_message(reason.empty() ? message->error_string() : reason));
  }
  return message;
}

std::vector<Message> Consumer::consume(std::size_t max_records, int timeout_ms) {
  // Short polls, so that the deadline holds even when error events keep arriving.
  constexpr std::int64_t kPollStepMs = 100;
  std::vector<Message> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < max_records) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
            .count();
    if (left <= 0) break;
    auto message = poll_checked(static_cast<int>(std::min<std::int64_t>(left, kPollStepMs)));
    if (!message) continue;
    if (message->error() == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.push_back(std::move(*message));
    } else {
      const bool end = message->error() == RD_KAFKA_RESP_ERR__PARTITION_EOF;
      log(end ? LogLevel::kDebug : LogLevel::kWarning, "consumer error: " + message->error_string());
    }
  }
  return out;
}

void Consumer::pause(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  auto list = to_rd_list(partitions);
  rd_kafka_pause_partitions(rk_.get(), list.get());
}

void Consumer::resume(const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  auto list = to_rd_list(partitions);
  rd_kafka_resume_partitions(rk_.get(), list.get());
}

rd_kafka_resp_err_t Consumer::commit(const std::vector<TopicPartition>& offsets, CommitMode mode) {
  if (offsets.empty()) return RD_KAFKA_RESP_ERR_NO_ERROR;
  auto list = to_rd_list(offsets);
  return rd_kafka_commit(rk_.get(), list.get(), mode == CommitMode::kAsync ? 1 : 0);
}

std::vector<TopicPartition> Consumer::committed(const std::vector<TopicPartition>& partitions,
                                                int timeout_ms) {
  auto list = to_rd_list(partitions);
  if (auto err = rd_kafka_committed(rk_.get(), list.get(), timeout_ms); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("fetching committed offsets failed: ") + rd_kafka_err2str(err));
  }
  return from_rd_list(list.get());
}

std::optional<std::pair<std::int64_t, std::int64_t>> Consumer::watermarks(const std::string& topic,
                                                                          std::int32_t partition) const {
  int64_t low = 0;
  int64_t high = 0;
  if (rd_kafka_get_watermark_offsets(rk_.get(), topic.c_str(), partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      high < 0) {
    return std::nullopt;
  }
  return std::make_pair(low, high);
}

std::pair<std::int64_t, std::int64_t> Consumer::query_watermarks(const std::string& topic,
                                                                 std::int32_t partition, int timeout_ms) {
  std::int64_t low = 0;
  std::int64_t high = 0;
  const auto err =
      rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), partition, &low, &high, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError("querying offsets of " + topic + "[" + std::to_string(partition) +
                     "] failed: " + rd_kafka_err2str(err));
  }
  return {low, high};
}

std::vector<TopicPartition> Consumer::position(const std::vector<TopicPartition>& partitions) const {
  auto list = to_rd_list(partitions);
  if (auto err = rd_kafka_position(rk_.get(), list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("reading consumer positions failed: ") + rd_kafka_err2str(err));
  }
  return from_rd_list(list.get());
}

std::string Consumer::fatal_error() const {
  std::array<char, 512> errstr{};
  const auto err = rd_kafka_fatal_error(rk_.get(), errstr.data(), errstr.size());
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return std::string(rd_kafka_err2name(err)) + ": " + errstr.data();
}

std::vector<TopicPartition> Consumer::assignment() const {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  TopicPartitionListPtr list(raw);
  return from_rd_list(list.get());
}

std::string Consumer::rebalance_protocol() const {
  const char* protocol = rd_kafka_rebalance_protocol(rk_.get());
  return protocol != nullptr ? protocol : "NONE";
}

void Consumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  const auto list = from_rd_list(partitions);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      ErrorPtr error(rd_kafka_incremental_assign(rk, partitions));
    } else {
      rd_kafka_assign(rk, partitions);
    }
    if (self->on_rebalance_) self->on_rebalance_(RebalanceKind::kAssigned, list);
    return;
  }
  const bool lost = rd_kafka_assignment_lost(rk) != 0;
  if (self->on_rebalance_) self->on_rebalance_(lost ? RebalanceKind::kLost : RebalanceKind::kRevoked, list);
  if (cooperative) {
    ErrorPtr error(rd_kafka_incremental_unassign(rk, partitions));
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

void Consumer::on_offset_commit(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  if (self->on_commit_) self->on_commit_(err, from_rd_list(offsets));
}

}  // namespace kafka_llm::kafka
