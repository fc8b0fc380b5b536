#include "kafka_llm/kafka/admin.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/handles.hpp"

namespace kafka_llm::kafka {

namespace {

std::string partition_name(const std::string& topic, std::int32_t partition) {
  return topic + "[" + std::to_string(partition) + "]";
}

// Admin requests get the whole timeout as their request timeout; the queue poll waits a little
// longer so the request's own timeout error (which names the cause) wins over a silent poll timeout.
constexpr int kPollMarginMs = 1000;

AdminOptionsPtr make_options(rd_kafka_t* rk, rd_kafka_admin_op_t op, int timeout_ms) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, op));
  std::array<char, 512> errstr{};
  if (rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr.data(), errstr.size()) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw KafkaError(std::string("invalid admin request timeout: ") + errstr.data());
  }
  return options;
}

// A new topic's partitions answer "not leader" (or have no leader) for a moment after creation, and a
// leader election does the same: such offset requests are asked again until the call's timeout.
constexpr std::chrono::milliseconds kSettleRetry{100};

bool is_leadership_settling(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
         err == RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH || err == RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH;
}

// Milliseconds left until `deadline`, at least 1 (librdkafka reads 0 as "do not wait").
int ms_until(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
          .count();
  return static_cast<int>(std::max<std::int64_t>(left, 1));
}

// The partition-level errors of a result list, as "t[0]: reason; t[1]: reason".
std::string partition_errors(const rd_kafka_topic_partition_list_t* list) {
  std::string out;
  if (list == nullptr) return out;
  for (int i = 0; i < list->cnt; ++i) {
    const auto& tp = list->elems[i];
    if (tp.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    if (!out.empty()) out += "; ";
    out += partition_name(tp.topic, tp.partition) + ": " + rd_kafka_err2str(tp.err);
  }
  return out;
}

// The one group result of a ListConsumerGroupOffsets or AlterConsumerGroupOffsets result, checked.
const rd_kafka_group_result_t* single_group_result(const rd_kafka_group_result_t** results, size_t count,
                                                   const std::string& what) {
  if (count != 1 || results == nullptr) throw KafkaError(what + ": the broker returned no group result");
  if (const rd_kafka_error_t* error = rd_kafka_group_result_error(results[0]); error != nullptr) {
    throw KafkaError(what + ": " + rd_kafka_error_string(error));
  }
  return results[0];
}

}  // namespace

AdminClient::AdminClient(const Properties& props) {
  ConfPtr conf = make_conf(props);
  std::array<char, 512> errstr{};
  // A producer handle: it joins no group and fetches nothing, but serves every admin request.
  rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr.data(), errstr.size()));
  if (!rk_) throw KafkaError(std::string("cannot create Kafka admin client: ") + errstr.data());
  (void)conf.release();
  queue_.reset(rd_kafka_queue_new(rk_.get()));
}

EventPtr AdminClient::wait_for_result(rd_kafka_event_type_t type, int timeout_ms, const std::string& what) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms + kPollMarginMs);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw KafkaError(what + " timed out after " + std::to_string(timeout_ms) + " ms");
    EventPtr event(rd_kafka_queue_poll(queue_.get(), static_cast<int>(left.count())));
    if (!event || rd_kafka_event_type(event.get()) != type)
      continue;  // e.g. a late result of a timed-out call
    if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError(what + " failed: " + rd_kafka_event_error_string(event.get()));
    }
    return event;
  }
}

void AdminClient::create_topics(const std::vector<NewTopic>& topics, int timeout_ms) {
  if (topics.empty()) return;
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
  AdminOptionsPtr options = make_options(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr.data(), errstr.size());
  rd_kafka_CreateTopics(rk_.get(), raw.data(), raw.size(), options.get(), queue_.get());
  EventPtr event = wait_for_result(RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms, "creating topics");
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
    while (partition_count(topic.name, 2000) <= 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw KafkaError("topic " + topic.name + " was created but its partitions have no leader yet");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

int AdminClient::partition_count(const std::string& topic, int timeout_ms) {
  const rd_kafka_metadata_t* metadata = nullptr;
  // A metadata request for all topics, so that asking does not auto-create the topic.
  if (rd_kafka_metadata(rk_.get(), 1, nullptr, &metadata, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return -1;
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

std::pair<std::int64_t, std::int64_t> AdminClient::watermarks(const std::string& topic,
                                                              std::int32_t partition, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    const auto err = rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), partition, &low, &high,
                                                      ms_until(deadline));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {low, high};
    if (!is_leadership_settling(err) || std::chrono::steady_clock::now() + kSettleRetry >= deadline) {
      throw KafkaError("querying the offsets of " + partition_name(topic, partition) +
                       " failed: " + rd_kafka_err2str(err));
    }
    std::this_thread::sleep_for(kSettleRetry);
  }
}

std::vector<TopicPartition> AdminClient::offsets_for_times(const std::vector<TopicPartition>& query,
                                                           int timeout_ms) {
  if (query.empty()) return {};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto list = to_rd_list(query);
    auto err = rd_kafka_offsets_for_times(rk_.get(), list.get(), ms_until(deadline));
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
      if (is_leadership_settling(list->elems[i].err)) err = list->elems[i].err;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (auto errors = partition_errors(list.get()); !errors.empty()) {
        throw KafkaError("looking up offsets by time failed: " + errors);
      }
      return from_rd_list(list.get());
    }
    if (!is_leadership_settling(err) || std::chrono::steady_clock::now() + kSettleRetry >= deadline) {
      const auto errors = partition_errors(list.get());
      throw KafkaError(std::string("looking up offsets by time failed: ") +
                       (errors.empty() ? rd_kafka_err2str(err) : errors));
    }
    std::this_thread::sleep_for(kSettleRetry);
  }
}

GroupDescription AdminClient::describe_group(const std::string& group, int timeout_ms) {
  const std::string what = "describing consumer group " + group;
  AdminOptionsPtr options = make_options(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout_ms);
  std::array<const char*, 1> groups = {group.c_str()};
  rd_kafka_DescribeConsumerGroups(rk_.get(), groups.data(), groups.size(), options.get(), queue_.get());
  EventPtr event = wait_for_result(RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT, timeout_ms, what);
  const auto* result = rd_kafka_event_DescribeConsumerGroups_result(event.get());
  size_t count = 0;
  const rd_kafka_ConsumerGroupDescription_t** descriptions =
      rd_kafka_DescribeConsumerGroups_result_groups(result, &count);
  if (count != 1 || descriptions == nullptr) throw KafkaError(what + ": the broker returned no description");
  const auto* description = descriptions[0];
  if (const rd_kafka_error_t* error = rd_kafka_ConsumerGroupDescription_error(description);
      error != nullptr) {
    throw KafkaError(what + " failed: " + rd_kafka_error_string(error));
  }
  GroupDescription out;
  out.group_id = rd_kafka_ConsumerGroupDescription_group_id(description);
  out.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(description));
  const size_t members = rd_kafka_ConsumerGroupDescription_member_count(description);
  for (size_t i = 0; i < members; ++i) {
    const auto* member = rd_kafka_ConsumerGroupDescription_member(description, i);
    const auto text = [](const char* value) { return value != nullptr ? std::string(value) : std::string(); };
    GroupMember m{text(rd_kafka_MemberDescription_consumer_id(member)),
                  text(rd_kafka_MemberDescription_client_id(member)),
                  text(rd_kafka_MemberDescription_host(member)),
                  {}};
    if (const auto* assignment = rd_kafka_MemberDescription_assignment(member); assignment != nullptr) {
      m.assignment = from_rd_list(rd_kafka_MemberAssignment_partitions(assignment));
    }
    out.members.push_back(std::move(m));
  }
  return out;
}

std::vector<TopicPartition> AdminClient::committed_offsets(const std::string& group,
                                                           const std::vector<TopicPartition>& partitions,
                                                           int timeout_ms) {
  const std::string what = "fetching the committed offsets of consumer group " + group;
  auto list = to_rd_list(partitions);  // only topic and partition are read
  ListConsumerGroupOffsetsPtr request(rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), list.get()));
  AdminOptionsPtr options = make_options(rk_.get(), RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout_ms);
  std::array<rd_kafka_ListConsumerGroupOffsets_t*, 1> requests = {request.get()};
  rd_kafka_ListConsumerGroupOffsets(rk_.get(), requests.data(), requests.size(), options.get(), queue_.get());
  EventPtr event = wait_for_result(RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT, timeout_ms, what);
  const auto* result = rd_kafka_event_ListConsumerGroupOffsets_result(event.get());
  size_t count = 0;
  const auto** groups = rd_kafka_ListConsumerGroupOffsets_result_groups(result, &count);
  const auto* group_result = single_group_result(groups, count, what);
  const auto* offsets = rd_kafka_group_result_partitions(group_result);
  if (auto errors = partition_errors(offsets); !errors.empty()) throw KafkaError(what + " failed: " + errors);
  return from_rd_list(offsets);
}

void AdminClient::alter_committed_offsets(const std::string& group,
                                          const std::vector<TopicPartition>& offsets, int timeout_ms) {
  if (offsets.empty()) return;
  const std::string what = "setting the committed offsets of consumer group " + group;
  auto list = to_rd_list(offsets);
  AlterConsumerGroupOffsetsPtr request(rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), list.get()));
  AdminOptionsPtr options = make_options(rk_.get(), RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, timeout_ms);
  std::array<rd_kafka_AlterConsumerGroupOffsets_t*, 1> requests = {request.get()};
  rd_kafka_AlterConsumerGroupOffsets(rk_.get(), requests.data(), requests.size(), options.get(),
                                     queue_.get());
  EventPtr event = wait_for_result(RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT, timeout_ms, what);
  const auto* result = rd_kafka_event_AlterConsumerGroupOffsets_result(event.get());
  size_t count = 0;
  const auto** groups = rd_kafka_AlterConsumerGroupOffsets_result_groups(result, &count);
  const auto* group_result = single_group_result(groups, count, what);
  if (auto errors = partition_errors(rd_kafka_group_result_partitions(group_result)); !errors.empty()) {
    throw KafkaError(what + " failed: " + errors);
  }
}

void create_topics(const Properties& props, const std::vector<NewTopic>& topics, int timeout_ms) {
  if (topics.empty()) return;
  AdminClient(props).create_topics(topics, timeout_ms);
}

int partition_count(const Properties& props, const std::string& topic, int timeout_ms) {
  return AdminClient(props).partition_count(topic, timeout_ms);
}

}  // namespace kafka_llm::kafka
