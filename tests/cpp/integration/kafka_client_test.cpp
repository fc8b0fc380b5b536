#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <map>
#include <set>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/admin.hpp"
#include "kafka_llm/kafka/blocking_producer.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/producer.hpp"
#include "kafka_llm/kafka/queue_watcher.hpp"
#include "stack_env.hpp"

namespace kafka_llm {
namespace {

using testing::bootstrap_servers;
using testing::unique_name;

kafka::Properties client_props() {
  return {{"bootstrap.servers", bootstrap_servers()}};
}

TEST(KafkaClient, ProduceConsumeRoundTripWithKeysHeadersAndManualCommit) {
  const std::string topic = unique_name("roundtrip");
  kafka::create_topics(client_props(), {{topic, 3, 1, {}}}, 30000);
  ASSERT_EQ(kafka::partition_count(client_props(), topic, 5000), 3);

  constexpr int kRecords = 300;
  int delivered = 0;
  int failed = 0;
  {
    auto props = client_props();
    props.emplace_back("enable.idempotence", "true");
    props.emplace_back("linger.ms", "5");
    kafka::Producer producer(props);
    for (int i = 0; i < kRecords; ++i) {
      const std::string key = "k" + std::to_string(i);
      const std::string value = "{\"n\":" + std::to_string(i) + "}";
      ASSERT_EQ(producer.produce(topic, key, value, {{"h-index", std::to_string(i)}, {"h-empty", ""}},
                                 [&](const kafka::DeliveryReport& r) { r.ok() ? ++delivered : ++failed; }),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ASSERT_EQ(producer.flush(30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  EXPECT_EQ(delivered, kRecords);
  EXPECT_EQ(failed, 0);

  const std::string group = unique_name("group");
  auto props = client_props();
  props.emplace_back("group.id", group);
  props.emplace_back("auto.offset.reset", "earliest");
  props.emplace_back("partition.assignment.strategy", "cooperative-sticky");
  std::vector<kafka::TopicPartition> assigned;
  kafka::Consumer consumer(props,
                           [&](kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts) {
                             if (kind == kafka::RebalanceKind::kAssigned)
                               assigned.insert(assigned.end(), parts.begin(), parts.end());
                           });
  consumer.subscribe({topic});
  std::set<std::string> keys;
  std::map<int32_t, int64_t> next_offset;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (keys.size() < kRecords && std::chrono::steady_clock::now() < deadline) {
    auto message = consumer.poll(200);
    if (!message || message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    ASSERT_TRUE(message->key().has_value());
    const std::string key(*message->key());
    const auto headers = message->headers();
    ASSERT_EQ(headers.size(), 2u);
    EXPECT_EQ("k" + headers[0].second, key);
    EXPECT_EQ(headers[1].first, "h-empty");
    EXPECT_EQ(message->value(), "{\"n\":" + headers[0].second + "}");
    EXPECT_EQ(message->topic(), topic);
    keys.insert(key);
    next_offset[message->partition()] = message->offset() + 1;
  }
  EXPECT_EQ(keys.size(), static_cast<size_t>(kRecords));
  EXPECT_EQ(consumer.rebalance_protocol(), "COOPERATIVE");
  EXPECT_EQ(assigned.size(), 3u);

  std::vector<kafka::TopicPartition> commits;
  for (auto [partition, offset] : next_offset) commits.push_back({topic, partition, offset});
  ASSERT_EQ(consumer.commit(commits, kafka_llm::kafka::CommitMode::kSync), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::vector<kafka::TopicPartition> query;
  for (auto [partition, offset] : next_offset) query.push_back({topic, partition});
  const auto committed = consumer.committed(query, 10000);
  int64_t total = 0;
  for (const auto& tp : committed) {
    EXPECT_EQ(tp.offset, next_offset[tp.partition]);
    total += tp.offset;
  }
  EXPECT_EQ(total, kRecords);  // offsets start at 0 in a fresh topic
}

TEST(KafkaClient, QueueWatcherWakesAnAsioLoopForDeliveryReports) {
  const std::string topic = unique_name("watcher");
  kafka::create_topics(client_props(), {{topic, 1, 1, {}}}, 30000);
  boost::asio::io_context io;
  kafka::Producer producer(client_props());
  int delivered = 0;
  kafka::QueueWatcher watcher(io, producer.main_queue(), [&] {
    while (producer.poll(0) > 0) {
    }
    if (delivered == 50) io.stop();
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(producer.produce(topic, std::nullopt, "v", {},
                               [&](const kafka::DeliveryReport& r) {
                                 EXPECT_TRUE(r.ok()) << r.error_message;
                                 ++delivered;
                               }),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  io.run_for(std::chrono::seconds(30));
  EXPECT_EQ(delivered, 50);
}

TEST(KafkaClient, BlockingProducerTracksWhereRecordsLandedAndConsumeReadsThemBack) {
  const std::string topic = unique_name("blocking");
  kafka::create_topics(client_props(), {{topic, 2, 1, {}}}, 30000);
  kafka::BlockingProducer producer(client_props());
  const auto first = producer.produce(topic, "a", "k", {{"h", "1"}}, 1, kafka::Tracking::kTracked);
  EXPECT_EQ(producer.produce(topic, "b", std::nullopt, {}, 1, kafka::Tracking::kUntracked), 0u);
  const auto third = producer.produce(topic, "c", std::nullopt, {}, 0, kafka::Tracking::kTracked);
  EXPECT_TRUE(producer.flush(30000).empty());
  const auto deliveries = producer.take_deliveries();
  ASSERT_EQ(deliveries.size(), 2u);
  for (const auto& d : deliveries) {
    EXPECT_FALSE(d.error.has_value());
    EXPECT_EQ(d.offset, 0);
    EXPECT_EQ(d.partition, d.id == first ? 1 : 0);
    EXPECT_TRUE(d.id == first || d.id == third);
  }

  auto props = client_props();
  props.emplace_back("group.id", unique_name("reader"));
  kafka::Consumer consumer(props);
  consumer.assign({{topic, 1, RD_KAFKA_OFFSET_BEGINNING}});
  EXPECT_EQ(consumer.query_watermarks(topic, 1, 10000), std::make_pair(std::int64_t{0}, std::int64_t{2}));
  const auto records = consumer.consume(2, 30000);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].value(), "a");
  EXPECT_EQ(records[0].key(), std::optional<std::string_view>("k"));
  EXPECT_EQ(records[1].value(), "b");
  EXPECT_EQ(consumer.position({{topic, 1}}), (std::vector<kafka::TopicPartition>{{topic, 1, 2}}));
  EXPECT_THROW((void)consumer.query_watermarks(topic, 7, 2000), KafkaError);
}

TEST(KafkaClient, BadPropertyFailsNamingTheKey) {
  try {
    kafka::Producer producer({{"bootstrap.servers", bootstrap_servers()}, {"no.such.property", "1"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "kafka.no.such.property");
    EXPECT_NE(std::string(e.what()).find("no.such.property"), std::string::npos);
  }
}

}  // namespace
}  // namespace kafka_llm
