#include "kafka_llm/pipeline/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cctype>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"
#include "kafka_llm/features/dedupe.hpp"
#include "kafka_llm/features/output_check.hpp"
#include "kafka_llm/features/request_preparation.hpp"
#include "kafka_llm/features/review_sampling.hpp"
#include "kafka_llm/format/anthropic_mapping.hpp"
#include "kafka_llm/format/anthropic_stream.hpp"
#include "kafka_llm/format/dead_letter.hpp"
#include "kafka_llm/format/openai_stream.hpp"
#include "kafka_llm/format/provider_response.hpp"
#include "kafka_llm/format/request_envelope.hpp"
#include "kafka_llm/format/response_envelope.hpp"
#include "kafka_llm/format/result_record.hpp"
#include "kafka_llm/format/sse_parser.hpp"
#include "kafka_llm/http/client.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/producer.hpp"
#include "kafka_llm/kafka/queue_watcher.hpp"
#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/pipeline/provider_call.hpp"
#include "kafka_llm/policy/circuit_breaker.hpp"
#include "kafka_llm/policy/classify.hpp"
#include "kafka_llm/policy/offset_tracker.hpp"
#include "kafka_llm/policy/rate_limiter.hpp"
#include "kafka_llm/policy/retry_policy.hpp"
#include "kafka_llm/policy/shared_rate_limit_script.hpp"
#include "kafka_llm/policy/split_mix64.hpp"
#include "kafka_llm/redis/redis_client.hpp"

namespace kafka_llm::pipeline {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::now().time_since_epoch()).count();
}

/// The backlog of consumed records waiting for a slot in the window pauses consumption only at
/// max(maxHandlers, this); a record in it costs its payload plus about 300 bytes.
constexpr std::size_t kMinBacklog = 1024;

std::uint64_t micros_since(SteadyClock::time_point start) {
  const auto d = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();
  return d > 0 ? static_cast<std::uint64_t>(d) : 0;
}

// Writes a result record unless the stored one is already done, in one round trip: returns the
// stored record when it is done, else stores ARGV[1] (TTL ARGV[2] ms) and returns nil. Used on
// receipt (store `pending`; a done request is not sent again) and at the end (store `done` or
// `error`; the first done result wins, so readers never see it change). With ARGV[3] (a prompt
// hash), a done record counts only when it answered that prompt: a replay under another prompt
// template version replaces it.
constexpr std::string_view kStoreUnlessDoneScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 17) == '{"status":"done",' and
   (not ARGV[3] or ARGV[3] == '' or string.find(v, '"prompt_hash":"' .. ARGV[3] .. '"', 1, true)) then
  return v
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
)lua";

// What the script above counts as a done record for a request whose prompt hash is `prompt_hash`.
bool is_done_record(std::string_view stored, std::string_view prompt_hash) {
  if (!stored.starts_with(R"({"status":"done",)")) return false;
  if (prompt_hash.empty()) return true;
  std::string member = R"("prompt_hash":")";
  member.append(prompt_hash).push_back('"');
  return stored.find(member) != std::string_view::npos;
}

}  // namespace

/// One record's journey through the pipeline. Owned by Impl::jobs_; callbacks refer to it by id.
struct Job {
  std::uint64_t id = 0;
  std::size_t stream = 0;
  RecordOrigin origin;
  policy::OffsetTicket ticket;
  std::optional<std::string> key;
  std::string value;
  HeaderList headers;
  HeaderList trace;  ///< W3C trace context of the request (traceparent, tracestate), carried onwards
  std::int64_t record_timestamp_ms = -1;
  SteadyClock::time_point received;
  /// When the record was produced (its timestamp, on the steady clock); `received` when it has none
  /// or the producer's clock is ahead. End-to-end and time-to-first-token count from here.
  SteadyClock::time_point produced;
  std::int64_t created_ms = 0;

  std::optional<format::RequestEnvelope> request;
  const ProviderConfig* provider = nullptr;
  std::string model_version;
  std::string prompt_version;  ///< the stream's prompt template version once applied, else ""
  std::string dedupe_key;      ///< the Redis key of this prompt when the stream dedupes
  std::string dedupe_holder;   ///< the earlier request holding dedupe_key
  std::string dedupe_of;       ///< the earlier request whose result this one was served
  int dedupe_polls = 0;
  std::optional<std::string> rejected_output;  ///< model output that failed the output schema
  int attempts = 0;
  int malformed = 0;
  SteadyClock::time_point first_attempt;
  std::int64_t first_attempt_ms = 0;
  std::int64_t estimated_tokens = 0;
  http::Client::RequestId http_id = 0;
  std::unique_ptr<asio::steady_timer> timer;
  bool awaiting_breaker = false;  ///< parked by a half-open breaker; woken when it closes or reopens

  // Streaming state.
  std::unique_ptr<format::SseParser> sse;
  std::uint64_t seq = 0;
  std::string stream_text;
  std::optional<std::string> finish_reason;
  std::optional<format::TokenUsage> usage;
  bool stream_done = false;
  std::string stream_error;
  std::string stream_prefix;  ///< the first bytes of a streamed body, for error messages

  // Outputs still waiting for Redis or a delivery report before the record counts as finished.
  int outputs_pending = 0;
  bool finished = false;
};

namespace {

std::optional<std::string> prompt_hash_of(const Job& job) {
  if (!job.request || job.request->prompt_hash.empty()) return std::nullopt;
  return job.request->prompt_hash;
}

}  // namespace

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
  struct Stream {
    StreamConfig config;
    std::unique_ptr<kafka::Consumer> consumer;
    std::unique_ptr<kafka::QueueWatcher> watcher;
    std::vector<kafka::TopicPartition> assignment;
    std::size_t inflight = 0;           ///< jobs started (the maxHandlers window)
    std::deque<std::uint64_t> backlog;  ///< consumed, waiting for a slot in the window
    bool paused = false;
  };
  struct ProviderState {
    const ProviderConfig* config = nullptr;
    std::optional<policy::RateLimiter> limiter;
    policy::CircuitBreaker breaker;
    EmbeddedProvider embedded;
    policy::CircuitState reported = policy::CircuitState::kClosed;  ///< as last told to the metrics
    /// Jobs a half-open breaker turned away while its probe is out: they are dispatched again as
    /// soon as the probe decides (closed or open again), not after the probe timeout.
    std::vector<std::uint64_t> breaker_waiters;
  };

  /// Tells the metrics when `state`'s breaker changed state since the last report.
  void report_circuit(ProviderState& state);

  // Consumption and flow control.
  void on_rebalance(std::size_t stream, kafka::RebalanceKind kind,
                    const std::vector<kafka::TopicPartition>& parts);
  void drain_consumer(std::size_t stream);
  void publish_assignment();
  void on_record(std::size_t stream, kafka::Message&& message);
  void begin_job(Job& job);
  void start_backlog(Stream& stream);
  void update_flow(Stream& stream);
  void commit_finished(bool sync);
  void on_commit(rd_kafka_resp_err_t err, const std::vector<kafka::TopicPartition>& offsets);
  void schedule_housekeeping();

  // A request's life.
  /// Stores the pending record unless a done one is there. `replace`: with the store-unless-done
  /// script; otherwise with SET NX GET (no script on the server for the usual new key), falling
  /// back to the script when a record of an earlier attempt is there.
  void claim(Job& job, bool replace = false);
  // Dedupe (cost control): one provider call per prompt within the stream's window.
  void deduplicate(Job& job);
  void look_up_dedupe_holder(Job& job);
  void take_over_dedupe(Job& job);
  void serve_deduplicated(Job& job, format::ResultRecord earlier);
  void dispatch(Job& job);
  void start_attempt(Job& job);
  void on_attempt_done(std::uint64_t job_id, ProviderCall&& call);
  void on_stream_data(Job& job, std::string_view data);
  /// `body`: what read_provider_response reads (the members scan_provider_body kept, or a whole
  /// document); `body_text`: the provider's bytes, stored and published instead of `body` when set.
  void succeed(Job& job, nlohmann::json body, std::string body_text = {});
  void fail(Job& job, ErrorClass error_class, int http_status, const std::string& message);
  void republish_done(Job& job, const format::ResultRecord& record);
  void reject_poison(Job& job, const format::PoisonRecord& poison);

  // Outputs: each increments outputs_pending and retries until it succeeds.
  /// Called once the result is stored, with the record already done in Redis if one won.
  using AfterStore = std::function<void(Job&, const format::ResultRecord* already_done)>;
  void store_result(std::uint64_t job_id, std::string key, std::string value, AfterStore then);
  void publish_stored(Job& job, const format::ResultRecord& record);
  /// Produces a copy of a successful response to the stream's human-review topic when the
  /// request id is sampled (an output like the response: it holds the record unfinished until acked).
  void send_for_review(Job& job, const std::string& response, const HeaderList& headers);
  struct Output {
    std::string topic;
    std::optional<std::string> key;
    std::string value;
    HeaderList headers;
  };
  void produce_output(std::uint64_t job_id, std::string topic, std::optional<std::string> key,
                      std::string value, HeaderList headers);
  void send_output(std::uint64_t job_id, const std::shared_ptr<const Output>& output);
  void output_done(std::uint64_t job_id);
  void finish(Job& job);
  void after(Job& job, std::chrono::milliseconds delay, std::function<void(Job&)> then);
  Job* find_job(std::uint64_t id);
  ProviderState& provider_state(const ProviderConfig* config);
  // Limits shared by every worker: token buckets in Redis, one atomic script per check-and-take.
  void shared_take(Job& job);
  void shared_charge(const ProviderConfig& provider, std::int64_t requests, std::int64_t tokens);
  std::vector<policy::SharedBucketOp> shared_ops(const ProviderConfig& provider, std::int64_t requests,
                                                 std::int64_t tokens) const;
  std::vector<std::string> shared_keys(const ProviderConfig& provider) const;
  std::string redact(std::string_view text) const;
  /// A failed request's dead-letter headers (DESIGN 3.4) plus x-model-version, x-prompt-hash,
  /// x-prompt-version and, for a schema violation, the rejected model output.
  HeaderList dead_letter_headers(const Job& job, const format::DeadLetterFacts& facts) const;
  /// The headers of every output record: request_message_id, model_version, prompt_hash, then
  /// prompt_version and x-dedupe-of when they apply, then the request's trace context.
  static HeaderList output_headers(const Job& job, std::string_view request_id,
                                   std::string_view model_version, std::string_view prompt_hash);

  PipelineConfig config_;
  std::vector<std::string> secrets_;
  policy::RetryPolicy retry_;
  policy::SplitMix64 rng_;
  metrics::PipelineMetrics metrics_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  std::unique_ptr<asio::thread_pool> embedded_pool_;
  std::unique_ptr<kafka::Producer> producer_;
  std::mutex submit_mutex_;
  std::unique_ptr<kafka::Producer> submit_producer_;  ///< submit()'s own, created on first use
  std::unique_ptr<kafka::QueueWatcher> producer_watcher_;
  std::unique_ptr<redis::RedisClient> redis_;
  std::unique_ptr<http::Client> http_;
  std::vector<Stream> streams_;
  std::unordered_map<std::string, ProviderState> providers_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> jobs_;
  policy::OffsetTracker offsets_;
  std::map<policy::PartitionKey, policy::CommitPosition> commits_in_flight_;
  asio::steady_timer housekeeping_;
  SteadyClock::time_point last_commit_;
  std::uint64_t next_job_id_ = 1;
  const redis::RedisScript store_unless_done_script_{std::string(kStoreUnlessDoneScript)};
  const redis::RedisScript shared_rate_limit_script_{std::string(policy::kSharedRateLimitScript)};
  bool claim_with_set_nx_get_ = true;  ///< false once Redis (< 7.0) rejected SET … NX … GET
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
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

  for (const auto& stream_config : config_.streams) {
    Stream stream;
    stream.config = stream_config;
    kafka::Properties consumer_props = config_.kafka;
    kafka::set_property(consumer_props, "group.id", stream_config.group);
    kafka::set_property(consumer_props, "partition.assignment.strategy", "cooperative-sticky");
    kafka::set_default_property(consumer_props, "auto.offset.reset", "earliest");
    // librdkafka prefetches up to 64 MB; the backlog behind the window holds what is needed next,
    // so a few MB keep the fetcher ahead without holding a whole topic in memory.
    kafka::set_default_property(consumer_props, "queued.max.messages.kbytes", "4096");
    const std::size_t index = streams_.size();
    stream.consumer = std::make_unique<kafka::Consumer>(
        consumer_props,
        [this, index](kafka::RebalanceKind kind, const std::vector<kafka::TopicPartition>& parts) {
          on_rebalance(index, kind, parts);
        },
        [this](rd_kafka_resp_err_t err, const std::vector<kafka::TopicPartition>& offsets) {
          on_commit(err, offsets);
        });
    streams_.push_back(std::move(stream));
  }
  for (const auto& provider : config_.providers) {
    policy::CircuitBreakerConfig breaker;
    breaker.consecutive_failures = config_.circuit.failure_threshold;
    breaker.failure_ratio = config_.circuit.failure_ratio;
    breaker.minimum_outcomes = config_.circuit.minimum_outcomes;
    breaker.window = config_.circuit.window;
    breaker.open_cooldown = config_.circuit.cooldown;
    breaker.max_open_cooldown = config_.circuit.max_cooldown;
    // 429s are the provider pacing us: Retry-After and the rate limiter handle them.
    breaker.rate_limited = policy::RateLimitCounting::kIgnore;
    ProviderState state{
        &provider, std::nullopt, policy::CircuitBreaker(breaker), {}, policy::CircuitState::kClosed, {}};
    metrics_.circuit_state(provider.name, policy::to_string(policy::CircuitState::kClosed));
    if ((provider.rpm > 0 || provider.tpm > 0) && !provider.shared_limits) {
      state.limiter = policy::RateLimiter::per_minute(
          provider.rpm > 0 ? std::optional<std::int64_t>(static_cast<std::int64_t>(provider.rpm))
                           : std::nullopt,
          provider.tpm > 0 ? std::optional<std::int64_t>(static_cast<std::int64_t>(provider.tpm))
                           : std::nullopt);
    }
    providers_.emplace(provider.name, std::move(state));
  }
  auto redis_options = redis::parse_redis_url(config_.redis.url);
  redis_options.command_timeout = config_.redis.command_timeout;
  redis_ = std::make_unique<redis::RedisClient>(io_, std::move(redis_options));
  http_ = std::make_unique<http::Client>(io_, http::ClientOptions{});
}

Pipeline::Impl::~Impl() {
  stop();
}

void Pipeline::Impl::register_embedded(const std::string& name, EmbeddedProvider provider) {
  if (started_) throw Error("register_embedded_provider must be called before start()");
  auto it = providers_.find(name);
  if (it == providers_.end() || it->second.config->kind != ProviderKind::kEmbedded) {
    throw ConfigError("providers", "no provider of kind python is named \"" + name + "\"");
  }
  it->second.embedded = std::move(provider);
}

void Pipeline::Impl::start() {
  if (started_) throw Error("the pipeline was already started");
  for (const auto& [name, state] : providers_) {
    if (state.config->kind == ProviderKind::kEmbedded && !state.embedded) {
      throw ConfigError("providers",
                        "provider \"" + name + "\" is of kind python but no callable was registered");
    }
  }
  started_ = true;
  std::size_t embedded_threads = 0;
  for (const auto& p : config_.providers) {
    if (p.kind == ProviderKind::kEmbedded) embedded_threads += std::max<std::size_t>(1, p.max_concurrency);
  }
  if (embedded_threads > 0) embedded_pool_ = std::make_unique<asio::thread_pool>(embedded_threads);

  for (auto& stream : streams_) {
    producer_->prepare_topic(stream.config.responses_topic);
    producer_->prepare_topic(stream.config.dlq_topic);
    stream.consumer->subscribe({stream.config.requests_topic});
  }
  work_.emplace(asio::make_work_guard(io_));
  asio::post(io_, [this] {
    redis_->start();
    producer_watcher_ = std::make_unique<kafka::QueueWatcher>(io_, producer_->main_queue(), [this] {
      while (producer_->poll(0) > 0) {
      }
    });
    for (std::size_t i = 0; i < streams_.size(); ++i) {
      streams_[i].watcher = std::make_unique<kafka::QueueWatcher>(io_, streams_[i].consumer->queue(),
                                                                  [this, i] { drain_consumer(i); });
      drain_consumer(i);
    }
    last_commit_ = SteadyClock::now();
    schedule_housekeeping();
  });
  running_ = true;
  io_thread_ = std::thread([this] { io_.run(); });
}

void Pipeline::Impl::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_ = true;
  // Stop taking new records, then let in-flight work finish for up to the drain timeout.
  std::promise<void> drained;
  auto drained_future = drained.get_future();
  asio::post(io_, [this, &drained] {
    for (auto& stream : streams_) {
      stream.consumer->pause(stream.assignment);
      stream.paused = true;
      // Never started: left uncommitted for the next owner rather than started now.
      for (std::uint64_t id : stream.backlog) jobs_.erase(id);
      stream.backlog.clear();
    }
    auto deadline = SteadyClock::now() + config_.drain_timeout;
    auto poll_drain = std::make_shared<std::function<void()>>();
    auto timer = std::make_shared<asio::steady_timer>(io_);
    *poll_drain = [this, deadline, poll_drain, timer, &drained] {
      if (jobs_.empty() || SteadyClock::now() >= deadline) {
        // Delivery reports served by the flush finish their records; then commit all of it.
        producer_->flush(5000);
        commit_finished(/*sync=*/true);
        drained.set_value();
        return;
      }
      timer->expires_after(std::chrono::milliseconds(10));
      timer->async_wait([poll_drain](boost::system::error_code) { (*poll_drain)(); });
    };
    (*poll_drain)();
  });
  drained_future.wait();
  // Leave the groups on the io thread (the final revoke commits through on_rebalance).
  std::promise<void> closed;
  asio::post(io_, [this, &closed] {
    housekeeping_.cancel();
    for (auto& stream : streams_) {
      stream.watcher.reset();
      stream.consumer->close();
    }
    producer_->flush(1000);
    producer_watcher_.reset();
    http_.reset();  // cancels what is left without callbacks
    jobs_.clear();
    redis_.reset();
    closed.set_value();
  });
  closed.get_future().wait();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  if (embedded_pool_) embedded_pool_->join();
  // A stopped pipeline keeps no connections open.
  for (auto& stream : streams_) stream.consumer.reset();
  producer_.reset();
  {
    std::lock_guard lock(submit_mutex_);
    submit_producer_.reset();
  }
  running_ = false;
}

nlohmann::json Pipeline::Impl::stats() const {
  auto out = metrics_.snapshot();
  out["running"] = running_.load();
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
// Consumption, rebalances, flow control and commits

void Pipeline::Impl::publish_assignment() {
  std::vector<std::string> owned;
  for (const auto& stream : streams_) {
    for (const auto& tp : stream.assignment) owned.push_back(tp.topic + "/" + std::to_string(tp.partition));
  }
  std::sort(owned.begin(), owned.end());
  metrics_.set_assignment(std::move(owned));
}

void Pipeline::Impl::on_rebalance(std::size_t index, kafka::RebalanceKind kind,
                                  const std::vector<kafka::TopicPartition>& parts) {
  Stream& stream = streams_[index];
  metrics_.rebalance();
  if (kind == kafka::RebalanceKind::kAssigned) {
    for (const auto& tp : parts) {
      offsets_.assign({tp.topic, tp.partition});
      stream.assignment.push_back(tp);
    }
    if (stream.paused) stream.consumer->pause(parts);
    publish_assignment();
    return;
  }
  // Revoked: commit what finished on these partitions (not on a lost assignment: the
  // partitions may already belong to someone else), then forget them. Their in-flight work
  // goes on, but can no longer move a committed offset.
  // Records of these partitions that never started are left to the next owner.
  std::erase_if(stream.backlog, [&](std::uint64_t id) {
    const Job* job = find_job(id);
    const bool revoked = job == nullptr || std::any_of(parts.begin(), parts.end(), [&](const auto& tp) {
                           return tp.topic == job->origin.topic && tp.partition == job->origin.partition;
                         });
    if (revoked) jobs_.erase(id);
    return revoked;
  });
  std::vector<kafka::TopicPartition> commits;
  for (const auto& tp : parts) {
    auto position = offsets_.revoke({tp.topic, tp.partition});
    commits_in_flight_.erase({tp.topic, tp.partition});
    if (position && kind == kafka::RebalanceKind::kRevoked)
      commits.push_back({tp.topic, tp.partition, position->offset});
    metrics_.forget_lag(tp.topic, tp.partition);
    std::erase_if(stream.assignment, [&](const kafka::TopicPartition& a) {
      return a.topic == tp.topic && a.partition == tp.partition;
    });
  }
  if (!commits.empty()) stream.consumer->commit(commits, kafka::CommitMode::kSync);
  publish_assignment();
}

void Pipeline::Impl::drain_consumer(std::size_t index) {
  Stream& stream = streams_[index];
  // A bounded batch per turn so that HTTP, Redis and timers get their share of the loop.
  for (int i = 0; i < 512; ++i) {
    auto message = stream.consumer->poll(0);
    if (!message) return;
    if (message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (message->error() != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        log(LogLevel::kWarning, "consumer error: " + redact(message->error_string()));
      }
      continue;
    }
    on_record(index, std::move(*message));
  }
  asio::post(io_, [this, index] { drain_consumer(index); });
}

void Pipeline::Impl::update_flow(Stream& stream) {
  if (stopping_) return;
  // Pausing is expensive: librdkafka drops what it has prefetched for the paused partitions, and
  // after the resume their next fetch may wait behind a long-poll fetch already in flight (up to
  // fetch.wait.max.ms). So the backlog holds at least kMinBacklog records, and consumption resumes
  // while half of it is left: enough work to cover that round trip even with a small window.
  const std::size_t high = std::max(stream.config.max_handlers, kMinBacklog);
  const std::size_t low = high / 2;
  if (!stream.paused && stream.backlog.size() >= high) {
    stream.consumer->pause(stream.assignment);
    stream.paused = true;
  } else if (stream.paused && stream.backlog.size() <= low) {
    stream.consumer->resume(stream.assignment);
    stream.paused = false;
  }
  std::int64_t paused = 0;
  for (const auto& s : streams_) paused += s.paused ? static_cast<std::int64_t>(s.assignment.size()) : 0;
  metrics_.set_paused_partitions(paused);
}

void Pipeline::Impl::commit_finished(bool sync) {
  last_commit_ = SteadyClock::now();
  auto ready = offsets_.committable();
  for (auto& stream : streams_) {
    std::vector<kafka::TopicPartition> commits;
    std::vector<policy::CommitPosition> positions;
    for (const auto& c : ready) {
      auto in_flight = commits_in_flight_.find(c.partition);
      if (!sync && in_flight != commits_in_flight_.end() && in_flight->second.offset == c.offset) continue;
      for (const auto& tp : stream.assignment) {
        if (c.partition.topic == tp.topic && c.partition.partition == tp.partition) {
          commits.push_back({tp.topic, tp.partition, c.offset});
          positions.push_back(c);
        }
      }
    }
    if (commits.empty()) continue;
    if (sync) {
      if (stream.consumer->commit(commits, kafka::CommitMode::kSync) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (const auto& position : positions) offsets_.mark_committed(position);
      }
    } else {
      for (const auto& position : positions) commits_in_flight_[position.partition] = position;
      stream.consumer->commit(commits, kafka::CommitMode::kAsync);
    }
  }
}

void Pipeline::Impl::on_commit(rd_kafka_resp_err_t err, const std::vector<kafka::TopicPartition>& offsets) {
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

void Pipeline::Impl::schedule_housekeeping() {
  housekeeping_.expires_after(std::chrono::milliseconds(50));
  housekeeping_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    // Poll even when nothing woke us: keeps the group membership alive while partitions are
    // paused (max.poll.interval.ms) and serves rebalance events promptly.
    for (std::size_t i = 0; i < streams_.size(); ++i) drain_consumer(i);
    while (producer_->poll(0) > 0) {
    }
    if (SteadyClock::now() - last_commit_ >= config_.commit_interval) commit_finished(false);
    for (auto& stream : streams_) {
      for (const auto& tp : stream.assignment) {
        if (auto marks = stream.consumer->watermarks(tp.topic, tp.partition)) {
          if (auto committed = offsets_.position({tp.topic, tp.partition})) {
            metrics_.set_lag(tp.topic, tp.partition, std::max<std::int64_t>(0, marks->second - *committed));
          }
        }
      }
    }
    std::int64_t inflight = 0;
    for (const auto& stream : streams_) inflight += static_cast<std::int64_t>(stream.inflight);
    metrics_.set_inflight(inflight);
    schedule_housekeeping();
  });
}

void Pipeline::Impl::on_record(std::size_t index, kafka::Message&& message) {
  Stream& stream = streams_[index];
  metrics_.consumed();
  auto job = std::make_unique<Job>();
  job->id = next_job_id_++;
  job->stream = index;
  job->origin = message.origin();
  auto ticket = offsets_.begin({job->origin.topic, job->origin.partition}, job->origin.offset);
  if (!ticket) return;  // a redelivery of a record already in flight in this assignment
  job->ticket = *ticket;
  if (auto key = message.key()) job->key = std::string(*key);
  job->value = std::string(message.value());
  job->headers = message.headers();
  for (std::string_view name : {"traceparent", "tracestate"}) {
    if (const std::string* value = find_header(job->headers, name)) job->trace.emplace_back(name, *value);
  }
  job->record_timestamp_ms = message.timestamp_ms();
  job->received = SteadyClock::now();
  job->created_ms = now_ms();
  job->produced = job->received;
  if (job->record_timestamp_ms > 0 && job->created_ms > job->record_timestamp_ms)
    job->produced -= std::chrono::milliseconds(job->created_ms - job->record_timestamp_ms);
  Job& ref = *job;
  jobs_.emplace(job->id, std::move(job));
  // Records beyond the window wait here, so a finishing job starts the next one at once; the
  // partitions are paused only when this backlog is full too (resuming costs a fetch round trip).
  if (stream.inflight < stream.config.max_handlers && stream.backlog.empty()) {
    begin_job(ref);
  } else {
    stream.backlog.push_back(ref.id);
  }
  update_flow(stream);
}

void Pipeline::Impl::start_backlog(Stream& stream) {
  while (stream.inflight < stream.config.max_handlers && !stream.backlog.empty()) {
    const std::uint64_t id = stream.backlog.front();
    stream.backlog.pop_front();
    if (Job* job = find_job(id)) begin_job(*job);
  }
}

void Pipeline::Impl::begin_job(Job& ref) {
  ++streams_[ref.stream].inflight;
  format::RequestParseOptions options;
  options.max_request_bytes = config_.max_request_bytes;
  auto parsed = format::parse_request(ref.value, ref.key, ref.origin, options);
  if (auto* poison = std::get_if<format::PoisonRecord>(&parsed)) {
    reject_poison(ref, *poison);
    return;
  }
  ref.request = std::move(std::get<format::RequestEnvelope>(parsed));
  if (ref.request->provider) {
    ref.provider = config_.find_provider(*ref.request->provider);
    if (ref.provider == nullptr) {
      fail(ref, ErrorClass::kNonRetryable, 400, "unknown provider \"" + *ref.request->provider + "\"");
      return;
    }
  } else {
    ref.provider = config_.route_model(ref.request->model);
  }
  ref.model_version = config_.model_version.empty() ? ref.request->model : config_.model_version;
  const StreamConfig& stream = streams_[ref.stream].config;
  if (stream.prompt || stream.redactor) {
    features::RedactionCounts redactions;
    if (auto error =
            features::prepare_request(*ref.request, stream.prompt.get(), stream.redactor.get(), redactions)) {
      fail(ref, ErrorClass::kNonRetryable, 400, *error);
      return;
    }
    for (const auto& [rule, count] : redactions) metrics_.redactions(stream.requests_topic, rule, count);
    if (stream.prompt) ref.prompt_version = stream.prompt->version();
  }
  claim(ref);
}

// ---------------------------------------------------------------------------------------------
// A request's life: claim (idempotency), admission (breaker, rate limit), attempts, outcome

void Pipeline::Impl::claim(Job& job, bool replace) {
  format::ResultRecord pending;
  pending.status = format::ResultStatus::kPending;
  pending.request_id = job.request->request_id;
  pending.provider = job.provider->name;
  pending.model = job.request->model;
  pending.created_ms = job.created_ms;
  pending.prompt_hash = prompt_hash_of(job);
  pending.updated_ms = job.created_ms;
  const std::string key = format::result_key(config_.redis.key_prefix, job.request->request_id);
  const std::string value = format::serialize_result(pending);
  const std::string ttl = std::to_string(config_.redis.result_ttl.count());
  const bool by_script = replace || !claim_with_set_nx_get_;
  auto on_reply = [this, id = job.id, by_script](redis::RedisReply&& reply) {
    Job* j = find_job(id);
    if (j == nullptr) return;
    if (!reply.ok()) {
      if (!by_script && !reply.transport_error) {
        // Redis before 7.0 does not take NX and GET together: the script does it all from now on.
        claim_with_set_nx_get_ = false;
        claim(*j, true);
        return;
      }
      // Redis is down or slow: wait and try again; the in-flight window turns this into
      // backpressure.
      after(*j, std::chrono::milliseconds(200), [this, by_script](Job& again) { claim(again, by_script); });
      return;
    }
    if (reply.type == redis::RedisReply::Type::kString) {
      if (is_done_record(reply.str, j->request->prompt_hash)) {
        auto stored = format::parse_result(reply.str);
        if (auto* record = std::get_if<format::ResultRecord>(&stored)) {
          metrics_.cache_hit();
          republish_done(*j, *record);
          return;
        }
      }
      if (!by_script) {
        // The record of an earlier attempt (pending or error): replaced unless it became done.
        claim(*j, true);
        return;
      }
    }
    deduplicate(*j);
  };
  if (by_script) {
    redis_->eval(store_unless_done_script_, {"1", key, value, ttl, job.request->prompt_hash},
                 std::move(on_reply));
  } else {
    redis_->command({"SET", key, value, "NX", "PX", ttl, "GET"}, std::move(on_reply));
  }
}

void Pipeline::Impl::deduplicate(Job& job) {
  const StreamConfig& stream = streams_[job.stream].config;
  // Streamed requests want their tokens: they are never served from another request's result.
  if (!stream.dedupe_window || job.request->stream) {
    dispatch(job);
    return;
  }
  job.dedupe_key = features::dedupe_key(config_.redis.key_prefix, stream.group, job.request->prompt_hash,
                                        job.request->model, job.provider->name);
  const std::string window = std::to_string(stream.dedupe_window->count());
  redis_->command(
      {"EVAL", features::kDedupeClaimScript, "1", job.dedupe_key, job.request->request_id, window},
      [this, id = job.id](redis::RedisReply&& reply) {
        Job* j = find_job(id);
        if (j == nullptr) return;
        // Dedupe saves cost but is not needed for correctness: without Redis, call.
        if (!reply.ok() || reply.type != redis::RedisReply::Type::kString) {
          dispatch(*j);
          return;
        }
        j->dedupe_holder = reply.str;
        look_up_dedupe_holder(*j);
      });
}

void Pipeline::Impl::look_up_dedupe_holder(Job& job) {
  const std::string key = format::result_key(config_.redis.key_prefix, job.dedupe_holder);
  redis_->command({"GET", key}, [this, id = job.id](redis::RedisReply&& reply) {
    Job* j = find_job(id);
    if (j == nullptr) return;
    if (!reply.ok()) {
      dispatch(*j);
      return;
    }
    std::optional<format::ResultRecord> earlier;
    if (reply.type == redis::RedisReply::Type::kString) {
      auto stored = format::parse_result(reply.str);
      if (auto* record = std::get_if<format::ResultRecord>(&stored)) earlier = std::move(*record);
    }
    switch (features::decide_dedupe(earlier ? &*earlier : nullptr)) {
      case features::DedupeAction::kServe:
        serve_deduplicated(*j, std::move(*earlier));
        return;
      case features::DedupeAction::kWait: {
        // Bounded by the request's deadline; then the provider is called after all.
        const auto delay = features::dedupe_poll_delay(j->dedupe_polls++);
        if (SteadyClock::now() + delay >= j->received + config_.retry.request_timeout) {
          take_over_dedupe(*j);
          return;
        }
        after(*j, delay, [this](Job& again) { look_up_dedupe_holder(again); });
        return;
      }
      case features::DedupeAction::kCallProvider:
        take_over_dedupe(*j);
        return;
    }
  });
}

void Pipeline::Impl::take_over_dedupe(Job& job) {
  // Later duplicates follow this request instead of the failed or vanished one.
  const std::string window = std::to_string(streams_[job.stream].config.dedupe_window->count());
  redis_->command({"SET", job.dedupe_key, job.request->request_id, "PX", window}, [](redis::RedisReply&&) {});
  job.dedupe_holder.clear();
  dispatch(job);
}

void Pipeline::Impl::serve_deduplicated(Job& job, format::ResultRecord earlier) {
  const auto& request = *job.request;
  job.dedupe_of = std::move(job.dedupe_holder);
  job.dedupe_holder.clear();
  format::ResultRecord record = std::move(earlier);
  record.status = format::ResultStatus::kDone;
  record.request_id = request.request_id;
  record.error = std::nullopt;
  record.status_code = 200;
  record.attempts = 0;
  record.latency_ms = 0.0;
  record.created_ms = job.created_ms;
  record.updated_ms = now_ms();
  record.prompt_version =
      job.prompt_version.empty() ? std::nullopt : std::optional<std::string>(job.prompt_version);
  record.prompt_hash = prompt_hash_of(job);
  auto serialized = format::serialize_result(record);
  store_result(job.id, format::result_key(config_.redis.key_prefix, request.request_id),
               std::move(serialized),
               [this, record = std::move(record)](Job& j, const format::ResultRecord* already_done) {
                 publish_stored(j, already_done != nullptr ? *already_done : record);
               });
  metrics_.cache_hit();
  metrics_.request_finished(streams_[job.stream].config.requests_topic, job.provider->name, request.model,
                            "deduplicated", micros_since(job.produced));
  job.finished = true;
  if (job.outputs_pending == 0) finish(job);
}

void Pipeline::Impl::report_circuit(ProviderState& state) {
  const auto now_state = state.breaker.state();
  if (now_state == state.reported) return;
  state.reported = now_state;
  metrics_.circuit_state(state.config->name, policy::to_string(now_state));
  if (now_state == policy::CircuitState::kHalfOpen) return;
  // The probe decided: the parked jobs ask again now (closed: they go; open: they wait for the
  // new cool-down). Re-arming a job's timer cancels its probe-timeout fallback.
  for (const auto id : std::exchange(state.breaker_waiters, {})) {
    if (Job* waiter = find_job(id); waiter != nullptr && waiter->awaiting_breaker) {
      after(*waiter, std::chrono::milliseconds(0), [this](Job& j) { dispatch(j); });
    }
  }
}

void Pipeline::Impl::dispatch(Job& job) {
  auto& state = provider_state(job.provider);
  const auto now = SteadyClock::now();
  job.awaiting_breaker = false;
  const auto admission = state.breaker.allow(now);
  report_circuit(state);
  if (!admission.allowed) {
    if (state.breaker.state() == policy::CircuitState::kHalfOpen) {
      job.awaiting_breaker = true;
      state.breaker_waiters.push_back(job.id);
    }
    const auto wait =
        std::max(std::chrono::duration_cast<std::chrono::milliseconds>(admission.retry_at - now),
                 std::chrono::milliseconds(1));
    after(job, wait, [this](Job& j) { dispatch(j); });
    return;
  }
  if (job.provider->shared_limits && (job.provider->rpm > 0 || job.provider->tpm > 0)) {
    shared_take(job);
    return;
  }
  if (state.limiter) {
    if (job.estimated_tokens == 0)
      job.estimated_tokens = static_cast<std::int64_t>(format::estimate_tokens(*job.request));
    auto take = state.limiter->acquire(job.estimated_tokens, now);
    if (take.status == policy::TakeStatus::kMustWait) {
      metrics_.rate_limited();
      after(job, take.wait, [this](Job& j) { dispatch(j); });
      return;
    }
  }
  start_attempt(job);
}

void Pipeline::Impl::start_attempt(Job& job) {
  const auto now = SteadyClock::now();
  if (job.attempts == 0) {
    job.first_attempt = now;
    job.first_attempt_ms = now_ms();
  }
  ++job.attempts;
  const auto deadline = retry_.deadline(job.first_attempt);
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  const std::uint64_t id = job.id;
  auto& state = provider_state(job.provider);

  if (job.provider->kind == ProviderKind::kEmbedded) {
    const auto started = SteadyClock::now();
    asio::post(*embedded_pool_, [this, id, fn = state.embedded, path = std::string(job.request->path),
                                 body = job.request->body.dump(), started] {
      ProviderCall call;
      try {
        auto result = fn(path, body);
        call.status = result.status_code;
        call.body = std::move(result.body_json);
      } catch (const std::exception& e) {
        call.status = 500;
        call.transport_message = e.what();
        call.final_error = true;
      }
      call.latency = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);
      asio::post(io_, [this, id, call = std::move(call)]() mutable { on_attempt_done(id, std::move(call)); });
    });
    return;
  }

  auto built = build_provider_request(*job.provider, *job.request, remaining, job.trace);
  if (auto* error = std::get_if<std::string>(&built)) {
    fail(job, ErrorClass::kNonRetryable, 400, *error);
    return;
  }
  auto request = std::move(std::get<http::Request>(built));
  http::Client::DataHandler on_data;
  if (job.request->stream) {
    job.sse = std::make_unique<format::SseParser>();
    on_data = [this, id](std::string_view data) {
      if (Job* j = find_job(id)) on_stream_data(*j, data);
    };
  }
  job.http_id = http_->start(std::move(request), std::move(on_data), [this, id](http::Response&& response) {
    on_attempt_done(id, ProviderCall::from(std::move(response)));
  });
}

void Pipeline::Impl::on_attempt_done(std::uint64_t job_id, ProviderCall&& call) {
  Job* found = find_job(job_id);
  if (found == nullptr) return;
  Job& job = *found;
  job.http_id = 0;
  metrics_.provider_call(static_cast<std::uint64_t>(call.latency.count()));
  auto& state = provider_state(job.provider);
  const auto now = SteadyClock::now();
  const bool ok_status =
      call.error == policy::TransportError::kNone && call.status >= 200 && call.status < 300;

  if (job.request->stream) {
    if (job.sse) (void)job.sse->finish();
    // Frames already went out: a retry would duplicate tokens, so the stream ends here,
    // successfully or with a final error frame.
    if (job.seq > 0) {
      if (ok_status && job.stream_done && job.stream_error.empty()) {
        state.breaker.on_success(now);
        report_circuit(state);
        succeed(job, nlohmann::json());
        return;
      }
      state.breaker.on_failure(now);
      report_circuit(state);
      std::string why = !job.stream_error.empty() ? job.stream_error
                        : !call.transport_message.empty()
                            ? call.transport_message
                            : std::string("the provider stream ended before it was complete");
      fail(job, ErrorClass::kNonRetryable, call.status >= 400 ? static_cast<int>(call.status) : 502,
           "stream failed after " + std::to_string(job.seq) + " chunks: " + why);
      return;
    }
    if (ok_status && !job.stream_done) {
      call.error = policy::TransportError::kMalformedResponse;
      call.transport_message =
          job.stream_error.empty() ? "the provider's response is not an event stream" : job.stream_error;
      ++job.malformed;
    }
    call.body = std::move(job.stream_prefix);  // what arrived, for error messages
    job.stream_prefix.clear();
  }

  // Anthropic bodies are parsed whole (they are mapped to OpenAI's shape); others are scanned for
  // the few members read from them and passed on as the provider's bytes.
  nlohmann::json body;
  if (ok_status && !job.request->stream) {
    bool is_object = false;
    if (job.provider->kind == ProviderKind::kAnthropic) {
      body = nlohmann::json::parse(call.body, nullptr, false);
      is_object = !body.is_discarded() && body.is_object();
    } else {
      auto scanned = format::scan_provider_body(call.body);
      is_object = scanned.is_object;
      body = std::move(scanned.members);
      if (is_object && !scanned.compact) call.body = format::compact_json(call.body);
    }
    if (!is_object) {
      call.error = policy::TransportError::kMalformedResponse;
      call.transport_message = "the provider's response is not a JSON object";
      ++job.malformed;
    }
  }
  if (call.final_error) {
    state.breaker.on_failure(now);
    report_circuit(state);
    fail(job, ErrorClass::kNonRetryable, static_cast<int>(call.status), call.transport_message);
    return;
  }
  const auto classification = policy::classify(call.error, static_cast<int>(call.status), call.headers);
  if (classification.kind == policy::FailureKind::kRateLimited) {
    // A 429 proves the provider is up and pacing us (Retry-After and the rate limiter handle
    // that): it closes a half-open circuit instead of holding it half-open on a neutral outcome.
    state.breaker.on_success(now);
    report_circuit(state);
  } else {
    state.breaker.on_outcome(classification, now);
    report_circuit(state);
  }
  policy::AttemptContext context{job.attempts - 1, job.malformed, job.first_attempt};
  const auto decision = retry_.decide(context, classification, call.headers, now, SystemClock::now(), rng_);
  switch (decision.action) {
    case policy::RetryAction::kSucceed:
      if (job.provider->kind == ProviderKind::kAnthropic && !job.request->stream) {
        const auto created_s =
            std::chrono::duration_cast<std::chrono::seconds>(SystemClock::now().time_since_epoch()).count();
        auto mapped = format::to_openai_chat_completion(body, created_s);
        if (auto* converted = std::get_if<nlohmann::json>(&mapped)) body = std::move(*converted);
        succeed(job, std::move(body));
        return;
      }
      succeed(job, std::move(body), job.request->stream ? std::string() : std::move(call.body));
      return;
    case policy::RetryAction::kRetry:
      metrics_.retry(std::string(decision.reason_label));
      if (state.limiter && job.estimated_tokens > 0) state.limiter->refund(job.estimated_tokens, now);
      if (job.provider->shared_limits && job.estimated_tokens > 0) {
        shared_charge(*job.provider, -1, -job.estimated_tokens);
      }
      if (job.request->stream) {
        job.sse.reset();
        job.stream_done = false;
        job.stream_error.clear();
      }
      after(job, decision.delay, [this](Job& j) { dispatch(j); });
      return;
    case policy::RetryAction::kFail: {
      std::string message = decision.reason;
      const auto error_body = nlohmann::json::parse(call.body, nullptr, false);
      if (auto provider_message =
              error_body.is_discarded() ? std::nullopt : format::provider_error_message(error_body)) {
        message += ": " + *provider_message;
      } else if (!call.transport_message.empty()) {
        message += ": " + call.transport_message;
      }
      int status = static_cast<int>(call.status);
      if (status < 400) status = decision.error_class == ErrorClass::kTimeout ? 504 : 502;
      fail(job, decision.error_class, status, message);
      return;
    }
  }
}

void Pipeline::Impl::on_stream_data(Job& job, std::string_view data) {
  static constexpr std::size_t kPrefixBytes = 4096;
  if (job.seq == 0 && job.stream_prefix.size() < kPrefixBytes) {
    job.stream_prefix.append(data.substr(0, kPrefixBytes - job.stream_prefix.size()));
  }
  if (!job.sse) job.sse = std::make_unique<format::SseParser>();
  std::vector<format::SseEvent> events;
  if (auto error = job.sse->feed(data, events)) job.stream_error = error->message;
  const bool anthropic = job.provider->kind == ProviderKind::kAnthropic;
  const Stream& stream = streams_[job.stream];
  for (const auto& event : events) {
    if (job.stream_done) break;
    if (anthropic) {
      auto read = format::read_anthropic_stream_event(event);
      if (auto* error = std::get_if<format::FormatError>(&read)) {
        job.stream_error = error->message;
        continue;
      }
      const auto& e = std::get<format::AnthropicStreamEvent>(read);
      if (e.kind == format::AnthropicStreamKind::kPing) continue;
      if (e.kind == format::AnthropicStreamKind::kError) {
        job.stream_error = e.error_message.value_or("the provider reported an error mid-stream");
        continue;
      }
      job.stream_text += e.delta_text;
      if (e.finish_reason) job.finish_reason = e.finish_reason;
      if (e.input_tokens || e.output_tokens) {
        if (!job.usage) job.usage = format::TokenUsage{};
        if (e.input_tokens) job.usage->prompt_tokens = *e.input_tokens;
        if (e.output_tokens) job.usage->completion_tokens = *e.output_tokens;
        job.usage->total_tokens = job.usage->prompt_tokens + job.usage->completion_tokens;
      }
      if (e.kind == format::AnthropicStreamKind::kMessageStop) job.stream_done = true;
    } else {
      auto read = format::read_openai_stream_event(event);
      if (auto* error = std::get_if<format::FormatError>(&read)) {
        job.stream_error = error->message;
        continue;
      }
      const auto& chunk = std::get<format::OpenAiStreamChunk>(read);
      if (chunk.kind == format::OpenAiStreamKind::kDone) {
        job.stream_done = true;
        continue;
      }
      if (chunk.kind == format::OpenAiStreamKind::kError) {
        job.stream_error = chunk.error_message.value_or("the provider reported an error mid-stream");
        continue;
      }
      job.stream_text += chunk.delta_text;
      if (chunk.finish_reason) job.finish_reason = chunk.finish_reason;
      if (chunk.usage) job.usage = chunk.usage;
    }
    if (job.seq == 0) metrics_.first_token(micros_since(job.produced));
    produce_output(job.id, stream.config.responses_topic, job.request->request_id,
                   format::serialize_chunk_frame_raw(job.request->request_id, job.seq, event.data),
                   output_headers(job, job.request->request_id, job.model_version, job.request->prompt_hash));
    ++job.seq;
  }
}

void Pipeline::Impl::succeed(Job& job, nlohmann::json body, std::string body_text) {
  const auto& request = *job.request;
  const Stream& stream = streams_[job.stream];
  const double latency_ms = static_cast<double>(micros_since(job.first_attempt)) / 1000.0;
  format::ResultRecord record;
  record.status = format::ResultStatus::kDone;
  record.request_id = request.request_id;
  record.provider = job.provider->name;
  record.model = request.model;
  record.attempts = job.attempts;
  record.latency_ms = latency_ms;
  record.created_ms = job.created_ms;
  record.updated_ms = now_ms();
  record.status_code = 200;
  if (request.stream) {
    record.output = job.stream_text;
    record.usage = job.usage;
    record.body = {{"object", "chat.completion"},
                   {"model", request.model},
                   {"choices",
                    {{{"index", 0},
                      {"message", {{"role", "assistant"}, {"content", job.stream_text}}},
                      {"finish_reason",
                       job.finish_reason ? nlohmann::json(*job.finish_reason) : nlohmann::json(nullptr)}}}}};
    if (job.usage) record.body["usage"] = *job.usage;
  } else {
    // Anthropic bodies were mapped to OpenAI's shape already.
    auto read = format::read_provider_response(body, format::ProviderApi::kOpenAi, request.endpoint);
    if (auto* output = std::get_if<format::ProviderOutput>(&read)) {
      record.output = output->text;
      record.usage = output->usage;
      if (output->model && config_.model_version.empty()) job.model_version = *output->model;
    }
    if (body_text.empty()) {
      record.body = std::move(body);
    } else {
      record.body_text = std::move(body_text);
    }
  }
  if (record.usage) {
    metrics_.tokens(job.provider->name, request.model, static_cast<std::int64_t>(record.usage->prompt_tokens),
                    static_cast<std::int64_t>(record.usage->completion_tokens));
    auto& state = provider_state(job.provider);
    const auto delta = static_cast<std::int64_t>(record.usage->total_tokens) - job.estimated_tokens;
    if (state.limiter && job.estimated_tokens > 0) state.limiter->settle(delta, SteadyClock::now());
    if (job.provider->shared_limits && job.estimated_tokens > 0 && delta != 0) {
      shared_charge(*job.provider, 0, delta);
    }
  }
  if (const auto& schema = stream.config.output_schema;
      schema && request.endpoint != format::Endpoint::kEmbeddings) {
    if (auto violation = features::check_output(*schema, record.output)) {
      job.rejected_output = record.output.value_or("");
      fail(job, ErrorClass::kSchemaViolation, 422, *violation);
      return;
    }
  }
  if (!job.prompt_version.empty()) record.prompt_version = job.prompt_version;
  record.prompt_hash = prompt_hash_of(job);
  auto serialized = format::serialize_result(record);
  // The response envelope (also what the review topic gets for a streamed request, whose
  // response topic has the frames instead).
  std::string response = format::serialize_response(format::ResponseEnvelope{
      request.metadata, 200, std::move(record.body), request.request_id, job.provider->name, request.model,
      job.attempts, latency_ms, record.prompt_version, std::move(record.body_text)});
  store_result(
      job.id, format::result_key(config_.redis.key_prefix, request.request_id), std::move(serialized),
      [this, response = std::move(response)](Job& j, const format::ResultRecord* already_done) {
        if (already_done != nullptr) {
          publish_stored(j, *already_done);
          return;
        }
        const auto& req = *j.request;
        const auto& topic = streams_[j.stream].config.responses_topic;
        HeaderList headers = output_headers(j, req.request_id, j.model_version, req.prompt_hash);
        send_for_review(j, response, headers);
        if (req.stream) {
          format::StreamFinalFrame frame{req.request_id, j.seq, 200, j.finish_reason, j.usage, std::nullopt};
          produce_output(j.id, topic, req.request_id, format::serialize_final_frame(frame),
                         std::move(headers));
        } else {
          produce_output(j.id, topic, req.request_id, response, std::move(headers));
        }
      });
  metrics_.request_finished(stream.config.requests_topic, job.provider->name, request.model, "ok",
                            micros_since(job.produced));
  job.finished = true;
  if (job.outputs_pending == 0) finish(job);
}

void Pipeline::Impl::fail(Job& job, ErrorClass error_class, int http_status, const std::string& message) {
  const Stream& stream = streams_[job.stream];
  const std::string clean = redact(message);
  const auto& request = *job.request;
  // The provider that served the request, else the one it named (an unknown provider is still
  // worth recording: it is what the dead letter's reader has to fix).
  const std::string provider =
      job.provider != nullptr ? job.provider->name : request.provider.value_or(std::string());
  const double latency_ms =
      job.attempts > 0 ? static_cast<double>(micros_since(job.first_attempt)) / 1000.0 : 0.0;

  format::ResultRecord record;
  record.status = format::ResultStatus::kError;
  record.request_id = request.request_id;
  if (!provider.empty()) record.provider = provider;
  record.model = request.model;
  record.error = clean;
  record.status_code = http_status;
  record.attempts = job.attempts;
  record.latency_ms = latency_ms;
  record.created_ms = job.created_ms;
  record.updated_ms = now_ms();
  if (!job.prompt_version.empty()) record.prompt_version = job.prompt_version;
  record.prompt_hash = prompt_hash_of(job);
  format::DeadLetterFacts facts;
  facts.error_class = error_class;
  facts.error = clean;
  facts.http_status = http_status;
  facts.attempts = job.attempts;
  facts.request_id = request.request_id;
  facts.provider = provider;
  facts.model = request.model;
  facts.origin = job.origin;
  if (job.attempts > 0) facts.first_attempt_ms = job.first_attempt_ms;
  facts.failed_at_ms = now_ms();
  store_result(
      job.id, format::result_key(config_.redis.key_prefix, request.request_id),
      format::serialize_result(record),
      [this, facts = std::move(facts), clean, latency_ms](Job& j, const format::ResultRecord* already_done) {
        if (already_done != nullptr) {
          // Another attempt of this request (an earlier owner of the partition) succeeded.
          publish_stored(j, *already_done);
          return;
        }
        const auto& req = *j.request;
        const auto& stream_config = streams_[j.stream].config;
        const int status = facts.http_status.value_or(500);
        HeaderList headers = output_headers(j, req.request_id, j.model_version, req.prompt_hash);
        if (req.stream) {
          format::StreamFinalFrame frame{req.request_id, j.seq, status, j.finish_reason, j.usage, clean};
          produce_output(j.id, stream_config.responses_topic, req.request_id,
                         format::serialize_final_frame(frame), std::move(headers));
        } else {
          auto body = format::error_body(status, clean);
          if (facts.error_class == ErrorClass::kSchemaViolation) body["error"]["type"] = "schema_violation";
          format::ResponseEnvelope response{
              req.metadata,
              status,
              std::move(body),
              req.request_id,
              facts.provider.empty() ? std::nullopt : std::optional<std::string>(facts.provider),
              req.model,
              j.attempts,
              latency_ms,
              j.prompt_version.empty() ? std::nullopt : std::optional<std::string>(j.prompt_version)};
          produce_output(j.id, stream_config.responses_topic, req.request_id,
                         format::serialize_response(response), std::move(headers));
        }
        produce_output(j.id, stream_config.dlq_topic, j.key, j.value, dead_letter_headers(j, facts));
        metrics_.dead_letter(facts.error_class);
      });
  metrics_.request_finished(stream.config.requests_topic, provider, request.model,
                            std::string(to_string(error_class)), micros_since(job.produced));
  job.finished = true;
  if (job.outputs_pending == 0) finish(job);
}

void Pipeline::Impl::publish_stored(Job& job, const format::ResultRecord& record) {
  const auto& request = *job.request;
  const Stream& stream = streams_[job.stream];
  HeaderList headers = output_headers(job, request.request_id, job.model_version, request.prompt_hash);
  format::ResponseEnvelope response{request.metadata,     record.status_code.value_or(200),
                                    record.body,          request.request_id,
                                    record.provider,      record.model,
                                    record.attempts,      record.latency_ms.value_or(0.0),
                                    record.prompt_version};
  std::string value = format::serialize_response(response);
  if (record.status == format::ResultStatus::kDone) send_for_review(job, value, headers);
  if (request.stream) {
    format::StreamFinalFrame frame{request.request_id, job.seq,      record.status_code.value_or(200),
                                   std::nullopt,       record.usage, std::nullopt};
    value = format::serialize_final_frame(frame);
  }
  produce_output(job.id, stream.config.responses_topic, request.request_id, std::move(value),
                 std::move(headers));
}

void Pipeline::Impl::send_for_review(Job& job, const std::string& response, const HeaderList& headers) {
  const StreamConfig& stream = streams_[job.stream].config;
  if (!stream.human_review ||
      !features::sampled_for_review(job.request->request_id, stream.human_review->sample_rate)) {
    return;
  }
  produce_output(job.id, stream.human_review->topic, job.request->request_id, response, headers);
  metrics_.human_review(stream.requests_topic);
}

void Pipeline::Impl::republish_done(Job& job, const format::ResultRecord& record) {
  publish_stored(job, record);
  metrics_.request_finished(streams_[job.stream].config.requests_topic, record.provider.value_or(""),
                            job.request->model, "replayed", micros_since(job.produced));
  job.finished = true;
  if (job.outputs_pending == 0) finish(job);
}

void Pipeline::Impl::reject_poison(Job& job, const format::PoisonRecord& poison) {
  const Stream& stream = streams_[job.stream];
  const std::string clean = redact(poison.message);
  if (poison.reply == format::ErrorReply::kSend) {
    format::ResultRecord record;
    record.status = format::ResultStatus::kError;
    record.request_id = poison.request_id;
    record.provider = poison.provider;
    record.model = poison.model;
    record.error = clean;
    record.status_code = poison.http_status;
    record.created_ms = job.created_ms;
    record.updated_ms = now_ms();
    store_result(job.id, format::result_key(config_.redis.key_prefix, poison.request_id),
                 format::serialize_result(record), [](Job&, const format::ResultRecord*) {});
    format::ResponseEnvelope response{poison.metadata,
                                      poison.http_status,
                                      format::error_body(poison.http_status, clean),
                                      poison.request_id,
                                      poison.provider,
                                      poison.model,
                                      0,
                                      0.0};
    produce_output(job.id, stream.config.responses_topic, poison.request_id,
                   format::serialize_response(response),
                   output_headers(job, poison.request_id, poison.model.value_or(""), ""));
  }
  format::DeadLetterFacts facts;
  facts.error_class = poison.error_class;
  facts.error = clean;
  facts.http_status = poison.http_status;
  facts.request_id = poison.request_id;
  facts.provider = poison.provider.value_or("");
  facts.model = poison.model.value_or("");
  facts.origin = job.origin;
  facts.failed_at_ms = now_ms();
  produce_output(job.id, stream.config.dlq_topic, job.key, job.value,
                 format::dead_letter_headers(job.headers, facts, secrets_));
  metrics_.dead_letter(poison.error_class);
  metrics_.request_finished(stream.config.requests_topic, facts.provider, facts.model,
                            std::string(to_string(poison.error_class)), micros_since(job.produced));
  job.finished = true;
  if (job.outputs_pending == 0) finish(job);
}

// ---------------------------------------------------------------------------------------------
// Outputs and completion

void Pipeline::Impl::store_result(std::uint64_t job_id, std::string key, std::string value, AfterStore then) {
  Job* job = find_job(job_id);
  if (job == nullptr) return;
  ++job->outputs_pending;
  const std::string ttl = std::to_string(config_.redis.result_ttl.count());
  // Sent before the strings move on.
  const std::vector<std::string_view> args = {"1", key, value, ttl,
                                              job->request ? job->request->prompt_hash : std::string_view()};
  auto data = std::make_shared<std::pair<std::string, std::string>>();
  auto on_reply = [this, job_id, data, then = std::move(then)](redis::RedisReply&& reply) mutable {
    Job* j = find_job(job_id);
    if (j == nullptr) return;
    if (!reply.ok()) {
      // Keep the record unfinished (and its offset uncommitted) until Redis has it.
      --j->outputs_pending;
      after(*j, std::chrono::milliseconds(200), [this, data, then = std::move(then)](Job& again) mutable {
        store_result(again.id, data->first, data->second, std::move(then));
      });
      return;
    }
    std::optional<format::ResultRecord> done;
    if (reply.type == redis::RedisReply::Type::kString) {
      auto stored = format::parse_result(reply.str);
      if (auto* record = std::get_if<format::ResultRecord>(&stored)) done = std::move(*record);
    }
    then(*j, done ? &*done : nullptr);  // may add outputs before this one counts as done
    output_done(job_id);
  };
  redis_->eval(store_unless_done_script_, args, std::move(on_reply));
  *data = {std::move(key), std::move(value)};  // kept for a retry
}

void Pipeline::Impl::produce_output(std::uint64_t job_id, std::string topic, std::optional<std::string> key,
                                    std::string value, HeaderList headers) {
  send_output(job_id, std::make_shared<const Output>(
                          Output{std::move(topic), std::move(key), std::move(value), std::move(headers)}));
}

void Pipeline::Impl::send_output(std::uint64_t job_id, const std::shared_ptr<const Output>& output) {
  Job* job = find_job(job_id);
  if (job == nullptr) return;
  ++job->outputs_pending;
  // Until the broker acknowledges it, the record is unfinished and its offset uncommitted; a failed
  // delivery is sent again (the idempotent producer keeps retries of one attempt in order).
  auto resend = [this, job_id, output] {
    Job* j = find_job(job_id);
    if (j == nullptr) return;
    --j->outputs_pending;
    after(*j, std::chrono::milliseconds(100), [this, output](Job& again) { send_output(again.id, output); });
  };
  const auto err = producer_->produce(
      output->topic, output->key, output->value, output->headers,
      [this, job_id, resend](const kafka::DeliveryReport& report) {
        if (report.ok()) {
          output_done(job_id);
        } else {
          log(LogLevel::kWarning, "delivery failed, retrying: " + redact(report.error_message));
          resend();
        }
      });
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) resend();
}

void Pipeline::Impl::output_done(std::uint64_t job_id) {
  Job* job = find_job(job_id);
  if (job == nullptr) return;
  if (--job->outputs_pending == 0 && job->finished) finish(*job);
}

void Pipeline::Impl::finish(Job& job) {
  offsets_.finish(job.ticket);
  Stream& stream = streams_[job.stream];
  --stream.inflight;
  jobs_.erase(job.id);  // `job` is gone from here on
  start_backlog(stream);
  update_flow(stream);
}

void Pipeline::Impl::after(Job& job, std::chrono::milliseconds delay, std::function<void(Job&)> then) {
  if (!job.timer) job.timer = std::make_unique<asio::steady_timer>(io_);
  job.timer->expires_after(delay);
  job.timer->async_wait([this, id = job.id, then = std::move(then)](boost::system::error_code ec) {
    if (ec) return;
    if (Job* j = find_job(id)) then(*j);
  });
}

Job* Pipeline::Impl::find_job(std::uint64_t id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

Pipeline::Impl::ProviderState& Pipeline::Impl::provider_state(const ProviderConfig* config) {
  return providers_.at(config->name);
}

std::vector<std::string> Pipeline::Impl::shared_keys(const ProviderConfig& provider) const {
  // One hash tag per provider keeps the keys of a call in one Redis Cluster slot.
  const std::string base = config_.redis.key_prefix + ":rl:{" + provider.name + "}:";
  std::vector<std::string> keys;
  if (provider.rpm > 0) keys.push_back(base + "rpm");
  if (provider.tpm > 0) keys.push_back(base + "tpm");
  return keys;
}

std::vector<policy::SharedBucketOp> Pipeline::Impl::shared_ops(const ProviderConfig& provider,
                                                               std::int64_t requests,
                                                               std::int64_t tokens) const {
  std::vector<policy::SharedBucketOp> ops;
  if (provider.rpm > 0) {
    ops.push_back({policy::TokenBucketConfig::per_minute(static_cast<std::int64_t>(provider.rpm)), requests});
  }
  if (provider.tpm > 0) {
    ops.push_back({policy::TokenBucketConfig::per_minute(static_cast<std::int64_t>(provider.tpm)), tokens});
  }
  return ops;
}

void Pipeline::Impl::shared_take(Job& job) {
  if (job.estimated_tokens == 0) {
    job.estimated_tokens = static_cast<std::int64_t>(format::estimate_tokens(*job.request));
  }
  auto keys = shared_keys(*job.provider);
  const auto ops = shared_ops(*job.provider, 1, job.estimated_tokens);
  std::vector<std::string> args = {std::to_string(keys.size())};
  args.insert(args.end(), keys.begin(), keys.end());
  for (auto& a :
       policy::shared_rate_limit_argv(SystemClock::now(), policy::SharedRateLimitMode::kTake, ops)) {
    args.push_back(std::move(a));
  }
  const std::vector<std::string_view> views(args.begin(), args.end());
  redis_->eval(shared_rate_limit_script_, views, [this, id = job.id](redis::RedisReply&& reply) {
    Job* j = find_job(id);
    if (j == nullptr) return;
    if (!reply.ok() || reply.type != redis::RedisReply::Type::kInteger) {
      after(*j, std::chrono::milliseconds(200), [this](Job& again) { dispatch(again); });
      return;
    }
    if (reply.integer > 0) {
      metrics_.rate_limited();
      after(*j, std::chrono::milliseconds(reply.integer), [this](Job& again) { dispatch(again); });
      return;
    }
    start_attempt(*j);
  });
}

void Pipeline::Impl::shared_charge(const ProviderConfig& provider, std::int64_t requests,
                                   std::int64_t tokens) {
  auto keys = shared_keys(provider);
  const auto ops = shared_ops(provider, requests, tokens);
  std::vector<std::string> args = {std::to_string(keys.size())};
  args.insert(args.end(), keys.begin(), keys.end());
  for (auto& a :
       policy::shared_rate_limit_argv(SystemClock::now(), policy::SharedRateLimitMode::kCharge, ops)) {
    args.push_back(std::move(a));
  }
  // A lost correction leaves the shared limit slightly off until the buckets refill.
  const std::vector<std::string_view> views(args.begin(), args.end());
  redis_->eval(shared_rate_limit_script_, views, [](redis::RedisReply&&) {});
}

HeaderList Pipeline::Impl::output_headers(const Job& job, std::string_view request_id,
                                          std::string_view model_version, std::string_view prompt_hash) {
  HeaderList headers = format::response_headers(request_id, model_version, prompt_hash);
  if (!job.prompt_version.empty()) headers.emplace_back("prompt_version", job.prompt_version);
  if (!job.dedupe_of.empty()) headers.emplace_back("x-dedupe-of", job.dedupe_of);
  headers.insert(headers.end(), job.trace.begin(), job.trace.end());
  return headers;
}

HeaderList Pipeline::Impl::dead_letter_headers(const Job& job, const format::DeadLetterFacts& facts) const {
  // The original headers (stale dead-letter headers of a re-driven record dropped), the twelve of
  // DESIGN 3.4, then the output tags as x- headers, so that a re-drive can strip everything added.
  HeaderList headers = format::dead_letter_headers(job.headers, facts, secrets_);
  headers.emplace_back("x-model-version", job.model_version);
  headers.emplace_back("x-prompt-hash", job.request ? job.request->prompt_hash : std::string());
  if (!job.prompt_version.empty()) headers.emplace_back("x-prompt-version", job.prompt_version);
  if (job.rejected_output) {
    for (auto& header : features::model_output_headers(*job.rejected_output))
      headers.push_back(std::move(header));
  }
  return headers;
}

std::string Pipeline::Impl::redact(std::string_view text) const {
  return format::redact_secrets(text, secrets_);
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
