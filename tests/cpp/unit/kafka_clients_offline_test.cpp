// The Kafka clients' behaviour that needs no broker: a closed port on the loopback stands for a
// cluster that is down.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"
#include "kafka_llm/kafka/blocking_producer.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/delivery_producer.hpp"

namespace kafka_llm::kafka {
namespace {

// Port 1 on the loopback: nothing listens there, connections are refused at once.
constexpr const char* kNoBroker = "127.0.0.1:1";

/// Collects the core's log lines for the lifetime of the test.
class CapturedLog {
 public:
  CapturedLog() {
    set_log_sink([this](LogLevel level, std::string_view message) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(level, std::string(message));
    });
  }
  ~CapturedLog() { set_log_sink({}); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  /// Waits up to `timeout` for a line at `level` containing `text`.
  bool wait_for(LogLevel level, const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        for (const auto& [l, message] : lines_) {
          if (l == level && message.find(text) != std::string::npos) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

TEST(KafkaClientsOffline, LibrdkafkaLogLinesGoThroughTheCoreLogSink) {
  CapturedLog log;
  Consumer consumer({{"bootstrap.servers", kNoBroker}, {"group.id", "offline"}});
  consumer.subscribe({"offline-topic"});
  for (int i = 0; i < 10; ++i) (void)consumer.poll(100);
  EXPECT_TRUE(log.wait_for(LogLevel::kError, "librdkafka rdkafka#consumer-", std::chrono::seconds(10)));
  EXPECT_TRUE(log.wait_for(LogLevel::kError, "127.0.0.1:1", std::chrono::seconds(1)));
}

TEST(KafkaClientsOffline, PollCheckedAndConsumeThrowOnAFatalErrorFromThenOn) {
  Consumer consumer({{"bootstrap.servers", kNoBroker}, {"group.id", "offline-fatal"}});
  consumer.subscribe({"offline-topic"});
  EXPECT_EQ(consumer.fatal_error(), "");
  ASSERT_EQ(
      rd_kafka_test_fatal_error(consumer.handle(), RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID, "fenced in a test"),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_NE(consumer.fatal_error().find("fenced in a test"), std::string::npos) << consumer.fatal_error();
  try {
    for (int i = 0; i < 50; ++i) (void)consumer.poll_checked(100);
    FAIL() << "expected KafkaError";
  } catch (const KafkaError& e) {
    EXPECT_NE(std::string(e.what()).find("fenced in a test"), std::string::npos) << e.what();
  }
  // The consumer stays unusable: every later call says why.
  EXPECT_THROW((void)consumer.poll_checked(0), KafkaError);
  EXPECT_THROW((void)consumer.consume(1, 200), KafkaError);
}

TEST(KafkaClientsOffline, DeliveryProducerReportsARecordThatTimedOut) {
  DeliveryProducer producer({{"bootstrap.servers", kNoBroker}, {"message.timeout.ms", "200"}});
  const auto first = producer.produce("offline-topic", "v1", std::nullopt, {}, RD_KAFKA_PARTITION_UA);
  const auto second = producer.produce("offline-topic", "v2", "key", {{"h", "1"}}, 0);
  EXPECT_EQ(second, first + 1);
  EXPECT_GE(producer.outstanding(), 2);  // librdkafka counts its queued error events too
  std::vector<DeliveryProducer::Report> reports;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (reports.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    for (auto& report : producer.poll(100)) reports.push_back(std::move(report));
  }
  ASSERT_EQ(reports.size(), 2u);
  for (const auto& [id, error, persistence] : reports) {
    EXPECT_TRUE(id == first || id == second) << id;
    // Never sent (no broker): certainly not on a partition, so safe to produce again.
    EXPECT_EQ(persistence, DeliveryProducer::Persistence::kNotPersisted);
    ASSERT_TRUE(error.has_value());
    EXPECT_NE(error->find("timed out"), std::string::npos) << *error;
  }
  EXPECT_TRUE(producer.flush(100).empty());  // each report is returned once
}

TEST(KafkaClientsOffline, BlockingProducerReturnsFailuresAndTracksOnlyTrackedRecords) {
  BlockingProducer producer({{"bootstrap.servers", kNoBroker}, {"message.timeout.ms", "200"}});
  EXPECT_EQ(
      producer.produce("offline-topic", "v", std::nullopt, {}, RD_KAFKA_PARTITION_UA, Tracking::kUntracked),
      0u);
  const auto tracked = producer.produce("offline-topic", "v", std::nullopt, {}, 2, Tracking::kTracked);
  EXPECT_EQ(tracked, 1u);
  const auto failures = producer.flush(10000);
  ASSERT_EQ(failures.size(), 2u);
  const auto deliveries = producer.take_deliveries();
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].id, tracked);
  EXPECT_EQ(deliveries[0].partition, 2);
  ASSERT_TRUE(deliveries[0].error.has_value());
  EXPECT_EQ(*deliveries[0].error, failures[0]);
  EXPECT_TRUE(producer.take_deliveries().empty());
  EXPECT_TRUE(producer.flush(100).empty());
}

TEST(KafkaClientsOffline, BlockingProducerThrowsForARecordLibrdkafkaRefuses) {
  BlockingProducer producer({{"bootstrap.servers", kNoBroker}, {"message.max.bytes", "1000"}});
  try {
    (void)producer.produce("offline-topic", std::string(5000, 'x'), std::nullopt, {}, RD_KAFKA_PARTITION_UA,
                           Tracking::kUntracked);
    FAIL() << "expected KafkaError";
  } catch (const KafkaError& e) {
    EXPECT_NE(std::string(e.what()).find("produce failed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kafka_llm::kafka
