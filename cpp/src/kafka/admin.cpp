#include "kafka_llm/kafka/admin.hpp"

#include <array>
#include <chrono>
#include <thread>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/handles.hpp"

namespace kafka_llm::kafka {

namespace {

KafkaPtr make_admin_client(const Properties& props) {
  ConfPtr conf = make_conf(props);
  std::array<char, 512> errstr{};
  KafkaPtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr.data(), errstr.size()));
  if (!rk) throw KafkaError(std::string("cannot create Kafka admin client: ") + errstr.data());
  (void)conf.release();
  return rk;
}

int partition_count_with(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  const rd_kafka_metadata_t* metadata = nullptr;
  // A metadata request for all topics, so that asking does not auto-create the topic.
  if (rd_kafka_metadata(rk, 1, nullptr, &metadata, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
  int count = -1;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const auto& t = metadata->topics[i];
    if (topic == t.topic && t.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      count = t.partition_cnt;
      for (int p = 0; p < t.partition_cnt; ++p) {
        if (t.partitions[p].leader < 0) count = 0;  // not ready yet
      }
    }
  }
  rd_kafka_metadata_destroy(metadata);
  return count;
}

}  // namespace

void create_topics(const Properties& props, const std::vector<NewTopic>& topics, int timeout_ms) {
  if (topics.empty()) return;
  KafkaPtr rk = make_admin_client(props);
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  std::vector<NewTopicPtr> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  std::array<char, 512> errstr{};
  for (const auto& topic : topics) {
    NewTopicPtr nt(rd_kafka_NewTopic_new(topic.name.c_str(), topic.partitions, topic.replication_factor,
                                         errstr.data(), errstr.size()));
    if (!nt) throw KafkaError("cannot create topic " + topic.name + ": " + errstr.data());
    for (const auto& [name, value] : topic.config) {
      rd_kafka_NewTopic_set_config(nt.get(), name.c_str(), value.c_str());
    }
    raw.push_back(nt.get());
    owned.push_back(std::move(nt));
  }
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr.data(), errstr.size());
  rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), timeout_ms + 1000));
  if (!event) throw KafkaError("creating topics timed out");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("creating topics failed: ") + rd_kafka_event_error_string(event.get()));
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const auto err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      throw KafkaError(std::string("cannot create topic ") + rd_kafka_topic_result_name(results[i]) + ": " +
                       (msg != nullptr ? msg : rd_kafka_err2str(err)));
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (const auto& topic : topics) {
    while (partition_count_with(rk.get(), topic.name, 2000) <= 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw KafkaError("topic " + topic.name + " was created but its partitions have no leader yet");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

int partition_count(const Properties& props, const std::string& topic, int timeout_ms) {
  KafkaPtr rk = make_admin_client(props);
  return partition_count_with(rk.get(), topic, timeout_ms);
}

}  // namespace kafka_llm::kafka
