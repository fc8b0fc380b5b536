#include "kafka_llm/pipeline/pipeline.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"
#include "kafka_llm/format/dead_letter.hpp"
#include "kafka_llm/kafka/producer.hpp"
#include "kafka_llm/kafka/queue_watcher.hpp"
#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/pipeline/cancel_feed.hpp"
#include "kafka_llm/pipeline/clock.hpp"
#include "kafka_llm/pipeline/lag_probe.hpp"
#include "kafka_llm/pipeline/output_sink.hpp"
#include "kafka_llm/pipeline/partition_flow.hpp"
#include "kafka_llm/pipeline/provider_dispatch.hpp"
#include "kafka_llm/pipeline/request_fsm.hpp"
#include "kafka_llm/pipeline/result_store.hpp"
#include "kafka_llm/pipeline/transaction_ledger.hpp"
#include "kafka_llm/pipeline/transaction_runner.hpp"
#include "kafka_llm/policy/cancel_registry.hpp"
#include "kafka_llm/policy/retry_policy.hpp"
#include "kafka_llm/policy/split_mix64.hpp"
#include "kafka_llm/redis/redis_client.hpp"
#include "kafka_llm/tracing/span_exporter.hpp"

namespace kafka_llm::pipeline {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {
constexpr std::chrono::milliseconds kHousekeepingInterval{50};
/// How long a revoke waits for the transaction under way, so that no output of a revoked partition
/// becomes visible after its next owner started on it.
constexpr std::chrono::seconds kRevokeWaitsForTransaction{30};

/// `kafka-llm-<group>-<host>-<pid>-<random>`: unique per worker process. Zombies are fenced by the
/// group's generation on every transaction's offsets (KIP-447), so the id need not be stable.
std::string transactional_id_prefix(const std::vector<StreamConfig>& streams) {
  std::string group;
  for (const auto& s : streams) {
    if (s.exactly_once) {
      group = s.group;
      break;
    }
  }
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string suffix(6, '0');
  for (auto& c : suffix) c = kHex[rd() % 16];
  return "kafka-llm-" + group + "-" + host.data() + "-" + std::to_string(getpid()) + "-" + suffix;
}
}  // namespace

/// One consumed record: its request's state machine and the handles the I/O layer keeps for it.
/// Owned by Impl::jobs_; callbacks refer to it by id.
struct Job {
  Job(std::uint64_t job_id, std::size_t stream_index, policy::OffsetTicket offset_ticket,
      const MachineEnv& env, ConsumedRecord record)
      : id(job_id), stream(stream_index), ticket(std::move(offset_ticket)), machine(env, std::move(record)) {}

  std::uint64_t id;
  std::size_t stream;
  policy::OffsetTicket ticket;
  RequestMachine machine;
  ProviderDispatch::Ticket admission;
  http::Client::RequestId http_id = 0;
  std::unique_ptr<asio::steady_timer> timer;
  std::vector<Output> bundle;  ///< exactly-once mode: the outputs, committed with the offset
};

class Pipeline::Impl {
 public:
  explicit Impl(PipelineConfig config);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  Impl(Impl&&) = delete;
  Impl& operator=(Impl&&) = delete;

  void register_embedded(const std::string& name, EmbeddedProvider provider);
  void start();
  void stop();
  bool running() const noexcept { return running_.load(); }
  nlohmann::json stats() const;
  std::string prometheus() const { return metrics_.prometheus(); }
  std::string submit(nlohmann::json envelope, int timeout_ms);
  const PipelineConfig& config() const noexcept { return config_; }

 private:
  /// One consumer group reading one request topic: its requests' environment and its partition flow,
  /// and with `cancelURL`, the cancellations it remembers and the feed of its control topic.
  struct Stream {
    MachineEnv env;
    std::unique_ptr<PartitionFlow> flow;
    std::unique_ptr<policy::CancelRegistry> cancels;
    std::unique_ptr<CancelFeed> cancel_feed;  ///< from start() until the io thread has stopped
  };

  PartitionFlow::Handlers flow_handlers(std::size_t stream);
  void flow_changed();
  /// Publishes the lags the probe learnt, for the partitions still owned.
  void lags_learnt(const std::vector<PartitionLag>& lags);
  void commit_finished(kafka::CommitMode mode);
  /// Exactly-once mode: hands the released outputs and their offsets to the transaction runner
  /// when it is idle. Returns whether anything is left to commit.
  bool commit_transactions();
  void transaction_done(TransactionBatch& batch, TransactionResult result, const std::string& message);
  void schedule_housekeeping();
  void housekeeping();
  void drain_then(std::function<void()> done);
  /// A cancel record of stream `index`: remembered, and carried out on the requests in flight here.
  void cancel(std::size_t index, const format::CancelRecord& record, std::int64_t at_ms);

  // Carrying out what the request machines decide.
  void apply(std::uint64_t job_id, Actions& actions);
  void carry_out(Job& job, Action& action);
  void call_provider(Job& job, action::CallProvider& call);
  void wake(std::uint64_t job_id);
  /// Runs `event` on the machine of `job_id` (when it still exists) and carries out its actions.
  template <class Event>
  void deliver(std::uint64_t job_id, Event&& event);
  /// Frees the job's slot in the window (cancelling its provider call) and forgets it.
  void release(Job& job);
  Job* find_job(std::uint64_t id);
  /// Hands the spans of a recorded request that ended (`outcome`: finished, abandoned) to the exporter.
  void export_spans(const Job& job, const std::string& outcome);

  PipelineConfig config_;
  std::vector<std::string> secrets_;
  RealClock clock_;
  policy::RetryPolicy retry_;
  policy::SplitMix64 rng_;
  metrics::PipelineMetrics metrics_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<kafka::Producer> producer_;
  std::mutex submit_mutex_;
  std::unique_ptr<kafka::Producer> submit_producer_;  ///< submit()'s own, created on first use
  std::unique_ptr<kafka::QueueWatcher> producer_watcher_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<ResultStore> store_;
  std::unique_ptr<OutputSink> sink_;
  std::unique_ptr<ProviderDispatch> dispatch_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::unique_ptr<LagProbe> lag_probe_;              ///< from start() until the io thread has stopped
  std::unique_ptr<TransactionRunner> transactions_;  ///< exactly-once streams only; from start() to stop()
  /// With `tracing`: from start(); stopped (flushed) after the io thread.
  std::unique_ptr<tracing::SpanExporter> exporter_;
  mutable std::mutex transactions_mutex_;  ///< guards transactions_'s creation and reset
  TransactionLedger ledger_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> jobs_;
  std::vector<Actions> spare_actions_;  ///< emptied action lists, reused (events can nest)
  asio::steady_timer housekeeping_;
  SteadyClock::time_point last_commit_;
  std::uint64_t next_job_id_ = 1;
  std::atomic<bool> running_{false};
  std::mutex lifecycle_mutex_;  ///< serializes start() and stop()
  bool started_ = false;
  bool stopped_ = false;
};

// ---------------------------------------------------------------------------------------------
// Setup and teardown

Pipeline::Impl::Impl(PipelineConfig config)
    : config_(std::move(config)),
      secrets_(config_.secrets()),
      retry_(config_.retry),
      rng_(std::random_device{}() ^
           static_cast<std::uint64_t>(SteadyClock::now().time_since_epoch().count())),
      housekeeping_(io_) {
  kafka::Properties producer_props = config_.kafka;
  kafka::set_property(producer_props, "enable.idempotence", "true");
  // Responses wait at most 2 ms for a batch unless the configuration says otherwise
  // (`queue.buffering.max.ms` is librdkafka's other name for it).
  if (!kafka::has_property(producer_props, "queue.buffering.max.ms")) {
    kafka::set_default_property(producer_props, "linger.ms", "2");
  }
  producer_ = std::make_unique<kafka::Producer>(producer_props);

  streams_.reserve(config_.streams.size());
  for (const auto& stream_config : config_.streams) {
    auto stream = std::make_unique<Stream>(
        Stream{MachineEnv{config_, stream_config, retry_, rng_, clock_, metrics_, secrets_}, nullptr, nullptr,
               nullptr});
    stream->flow = std::make_unique<PartitionFlow>(io_, stream_config, config_.kafka, metrics_, secrets_,
                                                   flow_handlers(streams_.size()));
    if (!stream_config.cancel_topic.empty()) {
      stream->cancels = std::make_unique<policy::CancelRegistry>(stream_config.cancel_retention);
      stream->env.cancels = stream->cancels.get();
    }
    streams_.push_back(std::move(stream));
  }
  auto redis_options = redis::parse_redis_url(config_.redis.url);
  redis_options.command_timeout = config_.redis.command_timeout;
  redis_ = std::make_unique<redis::RedisClient>(io_, std::move(redis_options));
  store_ = std::make_unique<ResultStore>(*redis_, config_.redis);
  sink_ = std::make_unique<OutputSink>(
      io_, *producer_, secrets_, [this](std::uint64_t id) { return find_job(id) != nullptr; },
      [this](std::uint64_t id) {
        deliver(id, [](RequestMachine& m, Actions& out) { m.on_delivered(out); });
      });
  dispatch_ = std::make_unique<ProviderDispatch>(io_, config_, *redis_, metrics_, clock_,
                                                 [this](std::uint64_t id) { wake(id); });
}

Pipeline::Impl::~Impl() {
  stop();
}

void Pipeline::Impl::register_embedded(const std::string& name, EmbeddedProvider provider) {
  std::lock_guard lock(lifecycle_mutex_);
  if (started_) throw Error("register_embedded_provider must be called before start()");
  dispatch_->register_embedded(name, std::move(provider));
}

void Pipeline::Impl::start() {
  std::lock_guard lock(lifecycle_mutex_);
  if (started_) throw Error("the pipeline was already started");
  // First, as it may fail (a missing control topic): nothing else has started yet.
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    const StreamConfig& stream = streams_[i]->env.stream;
    if (stream.cancel_topic.empty()) continue;
    streams_[i]->cancel_feed = std::make_unique<CancelFeed>(
        io_, config_.kafka, stream.cancel_topic, stream.cancel_retention,
        "messaging.streams[" + std::to_string(i) + "].cancelURL",
        [this, i](const format::CancelRecord& record, std::int64_t at_ms) { cancel(i, record, at_ms); },
        [this](const std::string& why) {
          metrics_.cancel("invalid");
          log(LogLevel::kWarning, "cancel record ignored: " + why);
        });
    // The io thread does not run yet: what was cancelled before this worker started is remembered
    // before its first request is taken up.
    streams_[i]->cancel_feed->catch_up(std::chrono::seconds(10));
  }
  if (std::any_of(streams_.begin(), streams_.end(),
                  [](const auto& s) { return s->env.stream.exactly_once; })) {
    std::lock_guard transactions_lock(transactions_mutex_);
    transactions_ = std::make_unique<TransactionRunner>(
        config_.kafka,
        config_.transactional_id.empty() ? transactional_id_prefix(config_.streams)
                                         : config_.transactional_id,
        std::chrono::seconds(30),
        [this](TransactionBatch batch, TransactionResult result, std::string message) {
          asio::post(io_, [this, batch = std::make_shared<TransactionBatch>(std::move(batch)), result,
                           message = std::move(message)] { transaction_done(*batch, result, message); });
        });
  }
  dispatch_->start();
  if (config_.tracing.enabled()) {
    tracing::ExporterOptions options;
    options.endpoint = config_.tracing.otlp_endpoint;
    options.service_name = config_.tracing.service_name;
    options.interval = config_.tracing.export_interval;
    options.max_queue = config_.tracing.max_queue;
    exporter_ = std::make_unique<tracing::SpanExporter>(std::move(options), metrics_);
  }
  lag_probe_ = std::make_unique<LagProbe>(config_.lag_interval, [this](auto lags) {
    asio::post(io_, [this, lags = std::move(lags)] { lags_learnt(lags); });
  });
  started_ = true;
  for (auto& stream : streams_) {
    producer_->prepare_topic(stream->env.stream.responses_topic);
    producer_->prepare_topic(stream->env.stream.dlq_topic);
    stream->flow->subscribe();
  }
  work_.emplace(asio::make_work_guard(io_));
  asio::post(io_, [this] {
    redis_->start();
    producer_watcher_ = std::make_unique<kafka::QueueWatcher>(io_, producer_->main_queue(), [this] {
      while (producer_->poll(0) > 0) {
      }
    });
    for (auto& stream : streams_) {
      stream->flow->start_polling();
      if (stream->cancel_feed) stream->cancel_feed->start_polling();
    }
    last_commit_ = SteadyClock::now();
    schedule_housekeeping();
  });
  running_ = true;
  io_thread_ = std::thread([this] { io_.run(); });
}

// Stops taking records, then lets in-flight work finish for up to the drain timeout; `done` runs
// (on the io thread) once the finished records are committed.
void Pipeline::Impl::drain_then(std::function<void()> done) {
  for (auto& stream : streams_) stream->flow->stop_taking();
  const auto deadline = SteadyClock::now() + config_.drain_timeout;
  auto poll_drain = std::make_shared<std::function<void()>>();
  auto timer = std::make_shared<asio::steady_timer>(io_);
  *poll_drain = [this, deadline, weak = std::weak_ptr(poll_drain), timer, done = std::move(done)] {
    // Exactly-once streams: what finished is committed in a last transaction before the stop.
    const bool transactions_pending = commit_transactions();
    if ((jobs_.empty() && !transactions_pending) || SteadyClock::now() >= deadline) {
      if (transactions_ && !transactions_->wait_idle(std::chrono::seconds(30)))
        log(LogLevel::kError, "the last transaction did not end within 30 s");
      // Delivery reports served by the flush finish their records; then commit all of it.
      producer_->flush(5000);
      commit_finished(kafka::CommitMode::kSync);
      done();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(10));
    timer->async_wait([keep = weak.lock()](boost::system::error_code) { (*keep)(); });
  };
  (*poll_drain)();
}

void Pipeline::Impl::stop() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  std::promise<void> drained;
  asio::post(io_, [this, &drained] { drain_then([&drained] { drained.set_value(); }); });
  drained.get_future().wait();
  // Before the consumers close: the probe asks through them.
  lag_probe_->stop();
  // Leave the groups on the io thread (the final revoke commits through on_rebalance).
  std::promise<void> closed;
  asio::post(io_, [this, &closed] {
    housekeeping_.cancel();
    for (auto& stream : streams_) {
      stream->flow->close();
      if (stream->cancel_feed) stream->cancel_feed->close();
    }
    producer_->flush(1000);
    producer_watcher_.reset();
    dispatch_->stop();
    jobs_.clear();
    redis_.reset();  // fails what is pending through the store's callbacks: the store goes after it
    store_.reset();
    closed.set_value();
  });
  closed.get_future().wait();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  if (exporter_) exporter_->stop();  // what finished goes out
  lag_probe_.reset();                // what it still posts is never run
  {
    std::lock_guard transactions_lock(transactions_mutex_);
    transactions_.reset();
  }
  for (auto& stream : streams_) stream->cancel_feed.reset();
  dispatch_->stop();
  // A stopped pipeline keeps no connections open.
  for (auto& stream : streams_) stream->flow->release_consumer();
  sink_.reset();
  producer_.reset();
  {
    std::lock_guard submit_lock(submit_mutex_);
    submit_producer_.reset();
  }
  running_ = false;
}

nlohmann::json Pipeline::Impl::stats() const {
  auto out = metrics_.snapshot();
  out["running"] = running_.load();
  std::lock_guard lock(transactions_mutex_);  // stop() destroys the runner
  out["transactional_id"] =
      transactions_ ? nlohmann::json(transactions_->transactional_id()) : nlohmann::json();
  return out;
}

std::string Pipeline::Impl::submit(nlohmann::json envelope, int timeout_ms) {
  if (!envelope.is_object()) throw Error("a request envelope must be a JSON object");
  std::string request_id;
  if (auto it = envelope.find("request_id");
      it != envelope.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
    request_id = it->get<std::string>();
  } else {
    static constexpr char kHex[] = "0123456789abcdef";
    std::random_device rd;
    request_id.resize(32);
    for (auto& c : request_id) c = kHex[rd() % 16];
    envelope["request_id"] = request_id;
  }
  const std::string value = envelope.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // A producer of its own (not the io thread's), so that submit() works whether or not the
  // pipeline runs; one per pipeline, submits serialized.
  std::lock_guard lock(submit_mutex_);
  if (!submit_producer_) submit_producer_ = std::make_unique<kafka::Producer>(config_.kafka);
  std::optional<kafka::DeliveryReport> report;
  auto err = submit_producer_->produce(config_.streams.front().requests_topic, request_id, value, {},
                                       [&report](const kafka::DeliveryReport& r) { report = r; });
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw KafkaError(std::string("submit failed: ") + rd_kafka_err2str(err));
  submit_producer_->flush(timeout_ms);
  if (!report) throw KafkaError("submit timed out waiting for the broker");
  if (!report->ok()) throw KafkaError("submit failed: " + report->error_message);
  return request_id;
}

// ---------------------------------------------------------------------------------------------
// Partition flow, commits and housekeeping

PartitionFlow::Handlers Pipeline::Impl::flow_handlers(std::size_t index) {
  PartitionFlow::Handlers handlers;
  handlers.record = [this, index](kafka::Message&& message, policy::OffsetTicket ticket) {
    ConsumedRecord record;
    record.origin = message.origin();
    if (auto key = message.key()) record.key = std::string(*key);
    record.value = std::string(message.value());
    record.headers = message.headers();
    record.timestamp_ms = message.timestamp_ms();
    const std::uint64_t id = next_job_id_++;
    jobs_.emplace(
        id, std::make_unique<Job>(id, index, std::move(ticket), streams_[index]->env, std::move(record)));
    return id;
  };
  handlers.start = [this](std::uint64_t id) {
    deliver(id, [](RequestMachine& m, Actions& out) { m.start(out); });
  };
  handlers.drop = [this](std::uint64_t id) { jobs_.erase(id); };
  handlers.revoked = [this, index](const std::vector<kafka::TopicPartition>& parts) {
    if (streams_[index]->env.stream.exactly_once) {
      // A transaction under way may hold outputs of these partitions: it ends (committed with their
      // offsets, or aborted) before they go; what is not released yet is dropped.
      if (transactions_ && !transactions_->wait_idle(kRevokeWaitsForTransaction))
        log(LogLevel::kError, "a transaction did not end before a revoke; outputs may be duplicated");
      for (const auto& tp : parts) ledger_.drop({tp.topic, tp.partition});
    }
    std::vector<std::uint64_t> started;
    for (const auto& [id, job] : jobs_) {
      const auto& partition = job->ticket.partition;
      const bool revoked = std::any_of(parts.begin(), parts.end(), [&](const kafka::TopicPartition& tp) {
        return tp.topic == partition.topic && tp.partition == partition.partition;
      });
      if (job->stream == index && revoked) started.push_back(id);
    }
    for (const auto id : started) deliver(id, [](RequestMachine& m, Actions& out) { m.on_revoked(out); });
  };
  handlers.changed = [this] { flow_changed(); };
  return handlers;
}

// Publishes the assignment and the paused partitions of every stream.
void Pipeline::Impl::flow_changed() {
  std::vector<std::string> owned;
  std::int64_t paused = 0;
  for (const auto& stream : streams_) {
    if (!stream->flow) continue;  // still being built
    for (const auto& tp : stream->flow->assignment())
      owned.push_back(tp.topic + "/" + std::to_string(tp.partition));
    if (stream->flow->paused()) paused += static_cast<std::int64_t>(stream->flow->assignment().size());
  }
  std::sort(owned.begin(), owned.end());
  metrics_.set_assignment(std::move(owned));
  metrics_.set_paused_partitions(paused);
  if (lag_probe_) {
    std::vector<LagProbe::Target> targets;
    for (const auto& stream : streams_) {
      if (stream->flow)
        targets.push_back({stream->env.stream.group, stream->flow->consumer(), stream->flow->assignment()});
    }
    lag_probe_->set_targets(std::move(targets));
  }
}

void Pipeline::Impl::lags_learnt(const std::vector<PartitionLag>& lags) {
  for (const auto& lag : lags) {
    const bool owned = std::any_of(streams_.begin(), streams_.end(), [&](const auto& stream) {
      if (stream->env.stream.group != lag.group) return false;
      const auto& assigned = stream->flow->assignment();
      return std::any_of(assigned.begin(), assigned.end(), [&](const kafka::TopicPartition& tp) {
        return tp.topic == lag.partition.topic && tp.partition == lag.partition.partition;
      });
    });
    if (owned) metrics_.set_lag(lag.partition.topic, lag.partition.partition, lag.lag);
  }
}

bool Pipeline::Impl::commit_transactions() {
  if (!transactions_) return false;
  if (transactions_->busy()) return true;
  TransactionBatch batch;
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    auto& stream = *streams_[i];
    if (!stream.env.stream.exactly_once || !stream.flow) continue;
    auto positions = stream.flow->advanced();
    if (positions.empty()) continue;
    TransactionBatch::Group group;
    group.stream = i;
    for (const auto& position : positions) {
      auto taken = ledger_.take(position);
      batch.records += taken.records;
      if (taken.first_offset >= 0)
        group.rewind_to.push_back({position.partition, position.generation, taken.first_offset});
      for (auto& output : taken.outputs) batch.outputs.push_back(std::move(output));
    }
    group.positions = std::move(positions);
    group.metadata = stream.flow->group_metadata();
    batch.groups.push_back(std::move(group));
  }
  if (batch.groups.empty()) return false;
  transactions_->submit(std::move(batch));
  return true;
}

void Pipeline::Impl::transaction_done(TransactionBatch& batch, TransactionResult result,
                                      const std::string& message) {
  metrics_.transaction(to_string(result), batch.records);
  if (result == TransactionResult::kCommitted) {
    for (const auto& group : batch.groups) streams_[group.stream]->flow->mark_committed(group.positions);
    return;
  }
  // Neither the outputs nor the offsets are in: the partitions consume again from their committed
  // offsets, and the records' stored results are published again (no provider call).
  log(LogLevel::kWarning, "transaction " + std::string(to_string(result)) + " (" +
                              std::to_string(batch.records) +
                              " records go back to their committed offsets): " + message);
  for (const auto& group : batch.groups) streams_[group.stream]->flow->rewind(group.rewind_to);
}

void Pipeline::Impl::commit_finished(kafka::CommitMode mode) {
  last_commit_ = SteadyClock::now();
  for (auto& stream : streams_) stream->flow->commit(mode);
  commit_transactions();
}

void Pipeline::Impl::schedule_housekeeping() {
  housekeeping_.expires_after(kHousekeepingInterval);
  housekeeping_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    housekeeping();
    schedule_housekeeping();
  });
}

void Pipeline::Impl::housekeeping() {
  // Poll even when nothing woke us: keeps the group membership alive while partitions are paused
  // (max.poll.interval.ms) and serves rebalance events promptly.
  for (auto& stream : streams_) stream->flow->drain_consumer();
  while (producer_->poll(0) > 0) {
  }
  if (SteadyClock::now() - last_commit_ >= config_.commit_interval)
    commit_finished(kafka::CommitMode::kAsync);
  std::int64_t inflight = 0;
  std::int64_t backlog = 0;
  for (auto& stream : streams_) {
    inflight += static_cast<std::int64_t>(stream->flow->inflight());
    backlog += static_cast<std::int64_t>(stream->flow->backlog());
  }
  metrics_.set_inflight(inflight);
  metrics_.set_backlog(backlog);
}

void Pipeline::Impl::cancel(std::size_t index, const format::CancelRecord& record, std::int64_t at_ms) {
  Stream& stream = *streams_[index];
  const std::int64_t now = clock_.system_ms();
  stream.cancels->expire(now);
  stream.cancels->add(record.request_id, record.reason, at_ms, now);
  // Cancellations are rare: a scan of the jobs costs nothing on the path of every request.
  std::vector<std::uint64_t> matching;
  for (const auto& [id, job] : jobs_) {
    const auto* request = job->machine.request();
    if (job->stream == index && request != nullptr && request->request_id == record.request_id)
      matching.push_back(id);
  }
  if (matching.empty()) {
    metrics_.cancel("remembered");  // queued here or elsewhere, run elsewhere, or unknown
    return;
  }
  for (const auto id : matching) {
    CancelEffect effect = CancelEffect::kTooLate;
    deliver(id, [&](RequestMachine& m, Actions& out) { effect = m.on_cancel(record.reason, out); });
    metrics_.cancel(to_string(effect));
  }
}

// ---------------------------------------------------------------------------------------------
// Carrying out the request machines' decisions

template <class Event>
void Pipeline::Impl::deliver(std::uint64_t job_id, Event&& event) {
  Job* job = find_job(job_id);
  if (job == nullptr) return;
  Actions actions;
  if (!spare_actions_.empty()) {
    actions = std::move(spare_actions_.back());
    spare_actions_.pop_back();
  }
  std::forward<Event>(event)(job->machine, actions);
  apply(job_id, actions);
  actions.clear();
  spare_actions_.push_back(std::move(actions));
}

void Pipeline::Impl::apply(std::uint64_t job_id, Actions& actions) {
  for (auto& action : actions) {
    Job* job = find_job(job_id);  // an action may have released it
    if (job == nullptr) return;
    carry_out(*job, action);
  }
}

void Pipeline::Impl::carry_out(Job& job, Action& action) {
  const std::uint64_t id = job.id;
  const auto on_store = [this, id](StoreReply reply) {
    deliver(id, [&reply](RequestMachine& m, Actions& out) { m.on_store(std::move(reply), out); });
  };
  std::visit(
      [&](auto& a) {
        using A = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<A, action::Claim>) {
          store_->claim(a.pending, [this, id](StoreReply reply) {
            deliver(id, [&reply](RequestMachine& m, Actions& out) { m.on_claim(std::move(reply), out); });
          });
        } else if constexpr (std::is_same_v<A, action::DedupeClaim>) {
          store_->dedupe_claim(a.key, job.machine.facts().request_id(), a.window,
                               [this, id](bool ok, std::optional<std::string> holder) {
                                 deliver(id, [&](RequestMachine& m, Actions& out) {
                                   m.on_dedupe_holder(ok, std::move(holder), out);
                                 });
                               });
        } else if constexpr (std::is_same_v<A, action::DedupeLookUp>) {
          store_->look_up(a.holder, [this, id](bool ok, std::optional<format::ResultRecord> record) {
            deliver(id,
                    [&](RequestMachine& m, Actions& out) { m.on_dedupe_result(ok, std::move(record), out); });
          });
        } else if constexpr (std::is_same_v<A, action::DedupeTakeOver>) {
          store_->dedupe_take_over(a.key, job.machine.facts().request_id(), a.window);
        } else if constexpr (std::is_same_v<A, action::Admit>) {
          dispatch_->admit(id, *job.machine.provider(), *job.machine.request(), job.admission,
                           [this, id](std::chrono::milliseconds wait, bool rate_limited) {
                             deliver(id, [&](RequestMachine& m, Actions& out) {
                               m.on_admission(wait, rate_limited, out);
                             });
                           });
        } else if constexpr (std::is_same_v<A, action::CallProvider>) {
          call_provider(job, a);
        } else if constexpr (std::is_same_v<A, action::ReportToBreaker>) {
          dispatch_->report(*job.machine.provider(), a.report, a.classification);
        } else if constexpr (std::is_same_v<A, action::RefundAdmission>) {
          dispatch_->refund(*job.machine.provider(), job.admission);
        } else if constexpr (std::is_same_v<A, action::SettleTokens>) {
          dispatch_->settle(*job.machine.provider(), job.admission, a.total_tokens);
        } else if constexpr (std::is_same_v<A, action::WaitUntil>) {
          if (!job.timer) job.timer = std::make_unique<asio::steady_timer>(io_);
          job.timer->expires_at(a.at);
          job.timer->async_wait([this, id](boost::system::error_code ec) {
            if (!ec) deliver(id, [](RequestMachine& m, Actions& out) { m.on_timer(out); });
          });
        } else if constexpr (std::is_same_v<A, action::StoreResult>) {
          store_->store_unless_done(*a.record, on_store);
        } else if constexpr (std::is_same_v<A, action::Produce>) {
          if (streams_[job.stream]->env.stream.exactly_once) {
            // Kept for the transaction that commits the record's offset: handed over is delivered.
            job.bundle.push_back(std::move(a.output));
            asio::post(io_, [this, id] {
              deliver(id, [](RequestMachine& m, Actions& out) { m.on_delivered(out); });
            });
          } else {
            sink_->send(id, std::move(a.output));
          }
        } else if constexpr (std::is_same_v<A, action::Finish>) {
          const auto finished = streams_[job.stream]->flow->finish(job.ticket);
          if (streams_[job.stream]->env.stream.exactly_once && finished == policy::FinishResult::kFinished) {
            ledger_.add(job.ticket.partition, job.ticket.generation, job.ticket.offset,
                        std::move(job.bundle));
          }
          export_spans(job, "finished");
          release(job);
        } else if constexpr (std::is_same_v<A, action::Abandon>) {
          export_spans(job, "abandoned");
          release(job);
        } else if constexpr (std::is_same_v<A, action::AbortCall>) {
          dispatch_->cancel(job.http_id);
          job.http_id = 0;
        }
      },
      action);
}

void Pipeline::Impl::call_provider(Job& job, action::CallProvider& call) {
  const std::uint64_t id = job.id;
  const auto& request = *job.machine.request();
  http::Client::DataHandler on_data;
  if (request.stream && call.http) {
    on_data = [this, id](std::string_view data) {
      deliver(id, [data](RequestMachine& m, Actions& out) { m.on_provider_data(data, out); });
    };
  }
  job.http_id = dispatch_->call(*job.machine.provider(), std::move(call.http), request, std::move(on_data),
                                [this, id](ProviderCall&& answer) {
                                  if (Job* j = find_job(id)) j->http_id = 0;
                                  deliver(id, [&answer](RequestMachine& m, Actions& out) {
                                    m.on_provider_answer(std::move(answer), out);
                                  });
                                });
}

// A request a half-open breaker turned away asks again now instead of when its wait ends.
void Pipeline::Impl::wake(std::uint64_t job_id) {
  Job* job = find_job(job_id);
  if (job == nullptr || job->machine.state() != RequestState::kAwaitingAdmission || !job->timer) return;
  job->timer->expires_at(SteadyClock::now());
  job->timer->async_wait([this, job_id](boost::system::error_code ec) {
    if (!ec) deliver(job_id, [](RequestMachine& m, Actions& out) { m.on_timer(out); });
  });
}

void Pipeline::Impl::release(Job& job) {
  PartitionFlow& flow = *streams_[job.stream]->flow;
  if (job.http_id != 0) dispatch_->cancel(job.http_id);
  const std::uint64_t id = job.id;
  jobs_.erase(id);  // `job` is gone from here on
  flow.released(id);
}

void Pipeline::Impl::export_spans(const Job& job, const std::string& outcome) {
  const RequestFacts& facts = job.machine.facts();
  if (!exporter_ || !facts.tracing) return;
  const StreamConfig& stream = streams_[job.stream]->env.stream;
  exporter_->add(request_spans(facts, *facts.tracing,
                               SpanNames{stream.requests_topic, stream.responses_topic, stream.group},
                               clock_.steady(), outcome));
}

Job* Pipeline::Impl::find_job(std::uint64_t id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------------------------

Pipeline::Pipeline(PipelineConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Pipeline::~Pipeline() = default;
void Pipeline::register_embedded_provider(const std::string& name, EmbeddedProvider provider) {
  impl_->register_embedded(name, std::move(provider));
}
void Pipeline::start() {
  impl_->start();
}
void Pipeline::stop() {
  impl_->stop();
}
bool Pipeline::running() const noexcept {
  return impl_->running();
}
nlohmann::json Pipeline::stats() const {
  return impl_->stats();
}
std::string Pipeline::prometheus() const {
  return impl_->prometheus();
}
std::string Pipeline::submit(nlohmann::json envelope, int timeout_ms) {
  return impl_->submit(std::move(envelope), timeout_ms);
}
const PipelineConfig& Pipeline::config() const noexcept {
  return impl_->config();
}

}  // namespace kafka_llm::pipeline
