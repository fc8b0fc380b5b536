#include "kafka_llm/pipeline/partition_flow.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "kafka_llm/common/log.hpp"
#include "kafka_llm/format/dead_letter.hpp"

namespace kafka_llm::pipeline {

namespace {
/// Records served from the consumer per turn of the io loop, so that HTTP, Redis and timers get
/// their share.
constexpr int kPollBatch = 512;

bool same_partition(const kafka::TopicPartition& tp, const policy::PartitionKey& key) {
  return tp.topic == key.topic && tp.partition == key.partition;
}
}  // namespace

PartitionFlow::PartitionFlow(boost::asio::io_context& io, const StreamConfig& config,
                             const kafka::Properties& kafka, metrics::PipelineMetrics& metrics,
                             const std::vector<std::string>& secrets, Handlers handlers)
    : io_(io),
      config_(config),
      metrics_(metrics),
      secrets_(secrets),
      handlers_(std::move(handlers)),
      flow_(config.max_handlers) {
  kafka::Properties props = kafka;
  kafka::set_property(props, "group.id", config.group);
  kafka::set_property(props, "partition.assignment.strategy", "cooperative-sticky");
  kafka::set_default_property(props, "auto.offset.reset", "earliest");
  // librdkafka prefetches up to 64 MB; the backlog behind the window holds what is needed next, so a
  // few MB keep the fetcher ahead without holding a whole topic in memory.
  kafka::set_default_property(props, "queued.max.messages.kbytes", "4096");
  consumer_ = std::make_unique<kafka::Consumer>(
      props,
      [this](kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts) {
        on_rebalance(kind, parts);
      },
      [this](rd_kafka_resp_err_t err, const std::vector<kafka::TopicPartition>& offsets) {
        on_commit(err, offsets);
      });
}

PartitionFlow::~PartitionFlow() = default;

void PartitionFlow::subscribe() {
  consumer_->subscribe({config_.requests_topic});
}

void PartitionFlow::start_polling() {
  watcher_ = std::make_unique<kafka::QueueWatcher>(io_, consumer_->queue(), [this] { drain_consumer(); });
  drain_consumer();
}

void PartitionFlow::drain_consumer() {
  if (!consumer_) return;
  for (int i = 0; i < kPollBatch; ++i) {
    auto message = consumer_->poll(0);
    if (!message) return;
    if (message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (message->error() != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        log(LogLevel::kWarning,
            "consumer error: " + format::redact_secrets(message->error_string(), secrets_));
      }
      continue;
    }
    on_record(std::move(*message));
  }
  boost::asio::post(io_, [this] { drain_consumer(); });
}

void PartitionFlow::on_record(kafka::Message&& message) {
  metrics_.consumed();
  const auto origin = message.origin();
  policy::PartitionKey partition{origin.topic, origin.partition};
  auto ticket = offsets_.begin(partition, origin.offset);
  if (!ticket) return;  // a redelivery of a record already in flight in this assignment
  std::optional<policy::KeyGate::Lane> lane;
  if (config_.ordering == Ordering::kKey) {
    // Records without a key belong to no entity: they are not ordered.
    if (auto key = message.key())
      lane = policy::KeyGate::Lane{partition, ticket->generation, std::string(*key)};
  }
  const std::uint64_t job = handlers_.record(std::move(message), std::move(*ticket));
  if (!lane || gate_.enter(*lane, job)) ready(job, std::move(partition), false);
  update_flow();
}

// Records beyond the window wait in the backlog, so a finishing job starts the next one at once; the
// partitions are paused only when this backlog is full too (resuming costs a fetch round trip).
void PartitionFlow::ready(std::uint64_t job, policy::PartitionKey partition, bool first) {
  if (first ? flow_.has_slot(inflight_) : flow_.may_start(inflight_, backlog_.size())) {
    ++inflight_;
    handlers_.start(job);
  } else if (first) {
    backlog_.push_front({job, std::move(partition)});
  } else {
    backlog_.push_back({job, std::move(partition)});
  }
}

void PartitionFlow::start_backlog() {
  while (flow_.has_slot(inflight_) && !backlog_.empty()) {
    const std::uint64_t job = backlog_.front().job;
    backlog_.pop_front();
    ++inflight_;
    handlers_.start(job);
  }
}

void PartitionFlow::drop_held(const std::vector<std::uint64_t>& jobs) {
  for (const auto job : jobs) handlers_.drop(job);
}

void PartitionFlow::released(std::uint64_t job) {
  --inflight_;
  if (const auto* lane = gate_.lane_of(job)) {
    policy::PartitionKey partition = lane->partition;
    // The next record of its key is older than what entered the backlog since: it goes first.
    if (auto next = gate_.leave(job)) ready(*next, std::move(partition), true);
  }
  start_backlog();
  update_flow();
}

void PartitionFlow::update_flow() {
  if (stopping_) return;
  switch (flow_.decide(paused_, backlog())) {
    case FlowDecision::kPause:
      consumer_->pause(assignment_);
      paused_ = true;
      break;
    case FlowDecision::kResume:
      consumer_->resume(assignment_);
      paused_ = false;
      break;
    case FlowDecision::kKeep:
      return;
  }
  handlers_.changed();
}

void PartitionFlow::stop_taking() {
  stopping_ = true;
  consumer_->pause(assignment_);
  paused_ = true;
  // Never started: left uncommitted for the next owner rather than started now.
  for (const auto& waiting : backlog_) handlers_.drop(waiting.job);
  backlog_.clear();
  drop_held(gate_.drop_all());
  handlers_.changed();
}

void PartitionFlow::on_rebalance(kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts) {
  metrics_.rebalance();
  if (kind == kafka::RebalanceKind::kAssigned) {
    for (const auto& tp : parts) {
      offsets_.assign({tp.topic, tp.partition});
      assignment_.push_back(tp);
    }
    if (paused_) consumer_->pause(parts);
  } else {
    revoke(kind, parts);
  }
  handlers_.changed();
}

// Commits what finished on `parts` (not on a lost assignment: the partitions may already belong to
// someone else), then forgets them. Records that never started are left to the next owner; started
// ones are abandoned or go on as their machines decide, without moving a committed offset.
void PartitionFlow::let_go(const std::vector<kafka::TopicPartition>& parts) {
  std::erase_if(backlog_, [&](const Waiting& waiting) {
    const bool revoked = std::any_of(parts.begin(), parts.end(),
                                     [&](const auto& tp) { return same_partition(tp, waiting.partition); });
    if (revoked) handlers_.drop(waiting.job);
    return revoked;
  });
  for (const auto& tp : parts) drop_held(gate_.drop_partition({tp.topic, tp.partition}));
  handlers_.revoked(parts);
}

void PartitionFlow::revoke(kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts) {
  let_go(parts);
  std::vector<kafka::TopicPartition> commits;
  for (const auto& tp : parts) {
    auto position = offsets_.revoke({tp.topic, tp.partition});
    commits_in_flight_.erase({tp.topic, tp.partition});
    // In exactly-once mode offsets are committed only with the outputs, in a transaction.
    if (position && kind == kafka::RebalanceKind::kRevoked && !config_.exactly_once)
      commits.push_back({tp.topic, tp.partition, position->offset});
    metrics_.forget_lag(tp.topic, tp.partition);
    std::erase_if(assignment_, [&](const kafka::TopicPartition& a) {
      return a.topic == tp.topic && a.partition == tp.partition;
    });
  }
  if (!commits.empty()) consumer_->commit(commits, kafka::CommitMode::kSync);
}

void PartitionFlow::commit(kafka::CommitMode mode) {
  if (config_.exactly_once) return;
  const bool sync = mode == kafka::CommitMode::kSync;
  std::vector<kafka::TopicPartition> commits;
  std::vector<policy::CommitPosition> positions;
  for (const auto& c : advanced()) {
    auto in_flight = commits_in_flight_.find(c.partition);
    if (!sync && in_flight != commits_in_flight_.end() && in_flight->second.offset == c.offset) continue;
    commits.push_back({c.partition.topic, c.partition.partition, c.offset});
    positions.push_back(c);
  }
  if (commits.empty()) return;
  if (sync) {
    if (consumer_->commit(commits, mode) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (const auto& position : positions) offsets_.mark_committed(position);
    }
    return;
  }
  for (const auto& position : positions) commits_in_flight_[position.partition] = position;
  consumer_->commit(commits, mode);
}

std::vector<policy::CommitPosition> PartitionFlow::advanced() const {
  std::vector<policy::CommitPosition> out;
  for (const auto& c : offsets_.committable()) {
    const bool assigned = std::any_of(assignment_.begin(), assignment_.end(),
                                      [&](const auto& tp) { return same_partition(tp, c.partition); });
    if (assigned) out.push_back(c);
  }
  return out;
}

void PartitionFlow::mark_committed(const std::vector<policy::CommitPosition>& positions) {
  for (const auto& position : positions) offsets_.mark_committed(position);
}

void PartitionFlow::rewind(const std::vector<policy::CommitPosition>& to) {
  std::vector<kafka::TopicPartition> parts;
  for (const auto& position : to) {
    if (offsets_.generation(position.partition) != position.generation) continue;  // revoked since
    parts.push_back({position.partition.topic, position.partition.partition, position.offset});
  }
  if (parts.empty()) return;
  let_go(parts);
  for (const auto& tp : parts) {
    (void)offsets_.revoke({tp.topic, tp.partition});
    offsets_.assign({tp.topic, tp.partition}, tp.offset);
  }
  consumer_->seek(parts);
  handlers_.changed();
}

kafka::GroupMetadataPtr PartitionFlow::group_metadata() const {
  return kafka::group_metadata(*consumer_);
}

void PartitionFlow::on_commit(rd_kafka_resp_err_t err, const std::vector<kafka::TopicPartition>& offsets) {
  for (const auto& tp : offsets) {
    auto it = commits_in_flight_.find({tp.topic, tp.partition});
    if (it == commits_in_flight_.end() || it->second.offset != tp.offset) continue;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) offsets_.mark_committed(it->second);
    commits_in_flight_.erase(it);
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    log(LogLevel::kWarning, std::string("offset commit failed (will retry): ") + rd_kafka_err2str(err));
  }
}

void PartitionFlow::close() {
  watcher_.reset();
  consumer_->close();
}

void PartitionFlow::release_consumer() {
  consumer_.reset();
}

}  // namespace kafka_llm::pipeline
