#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/admin.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/producer.hpp"
#include "stack_env.hpp"

namespace kafka_llm {
namespace {

using testing::bootstrap_servers;
using testing::unique_name;
using testing::wait_until;

kafka::Properties client_props() {
  return {{"bootstrap.servers", bootstrap_servers()}};
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void produce_to(const std::string& topic, std::int32_t partition, int count) {
  kafka::Producer producer(client_props());
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(producer.produce(
                  topic, std::nullopt, "v" + std::to_string(i), {},
                  [&](const kafka::DeliveryReport& r) { failed += r.ok() ? 0 : 1; }, partition),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(producer.flush(30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(failed, 0);
}

TEST(KafkaAdmin, WatermarksAndOffsetsForTimesFindTheFirstRecordAtOrAfterATime) {
  const std::string topic = unique_name("times");
  kafka::AdminClient admin(client_props());
  admin.create_topics({{topic, 2, 1, {}}}, 30000);
  EXPECT_EQ(admin.partition_count(topic, 5000), 2);
  EXPECT_EQ(admin.partition_count(unique_name("absent"), 5000), -1);

  const std::int64_t before = now_ms() - 1;
  produce_to(topic, 0, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::int64_t between = now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  produce_to(topic, 0, 2);

  EXPECT_EQ(admin.watermarks(topic, 0, 5000), std::make_pair(std::int64_t{0}, std::int64_t{5}));
  EXPECT_EQ(admin.watermarks(topic, 1, 5000), std::make_pair(std::int64_t{0}, std::int64_t{0}));
  const auto found = admin.offsets_for_times({{topic, 0, before}, {topic, 1, before}}, 5000);
  ASSERT_EQ(found.size(), 2U);
  EXPECT_EQ(found[0].offset, 0);
  EXPECT_EQ(found[1].offset, -1);  // an empty partition has no record at or after any time
  EXPECT_EQ(admin.offsets_for_times({{topic, 0, between}}, 5000).at(0).offset, 3);
  EXPECT_EQ(admin.offsets_for_times({{topic, 0, now_ms() + 60000}}, 5000).at(0).offset, -1);
  EXPECT_THROW(admin.watermarks(topic, 7, 5000), KafkaError);
}

TEST(KafkaAdmin, DescribeGroupListsActiveMembersAndAlterIsRefusedUntilTheGroupIsEmpty) {
  const std::string topic = unique_name("groups");
  const std::string group = unique_name("group");
  kafka::AdminClient admin(client_props());
  admin.create_topics({{topic, 2, 1, {}}}, 30000);
  produce_to(topic, 0, 4);
  produce_to(topic, 1, 4);

  const auto unknown = admin.describe_group(group, 5000);
  EXPECT_EQ(unknown.state, "Dead");
  EXPECT_TRUE(unknown.members.empty());
  for (const auto& tp : admin.committed_offsets(group, {{topic, 0}, {topic, 1}}, 5000)) {
    EXPECT_EQ(tp.offset, RD_KAFKA_OFFSET_INVALID);
  }

  {
    auto props = client_props();
    props.emplace_back("group.id", group);
    props.emplace_back("client.id", "admin-test-member");
    props.emplace_back("auto.offset.reset", "earliest");
    kafka::Consumer consumer(props);
    consumer.subscribe({topic});
    ASSERT_TRUE(wait_until(
        [&] {
          (void)consumer.poll(100);
          return consumer.assignment().size() == 2;
        },
        std::chrono::seconds(30)));
    const auto active = admin.describe_group(group, 5000);
    EXPECT_EQ(active.state, "Stable");
    ASSERT_EQ(active.members.size(), 1U);
    EXPECT_EQ(active.members[0].client_id, "admin-test-member");
    EXPECT_FALSE(active.members[0].member_id.empty());
    EXPECT_EQ(active.members[0].assignment.size(), 2U);
    try {
      admin.alter_committed_offsets(group, {{topic, 0, 2}}, 5000);
      FAIL() << "the broker accepted an offset change for an active group";
    } catch (const KafkaError& e) {
      EXPECT_NE(std::string(e.what()).find(group), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(topic + "[0]"), std::string::npos) << e.what();
    }
    consumer.close();
  }

  ASSERT_TRUE(wait_until([&] { return admin.describe_group(group, 5000).state == "Empty"; },
                         std::chrono::seconds(30)));
  admin.alter_committed_offsets(group, {{topic, 0, 3}, {topic, 1, 1}}, 5000);
  const auto committed = admin.committed_offsets(group, {{topic, 0}, {topic, 1}}, 5000);
  ASSERT_EQ(committed.size(), 2U);
  EXPECT_EQ(committed[0].offset, 3);
  EXPECT_EQ(committed[1].offset, 1);
}

}  // namespace
}  // namespace kafka_llm
