#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/format/result_record.hpp"
#include "kafka_llm/format/sse_parser.hpp"
#include "kafka_llm/format/token_usage.hpp"
#include "kafka_llm/http/request.hpp"
#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/pipeline/clock.hpp"
#include "kafka_llm/pipeline/outputs.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"
#include "kafka_llm/pipeline/provider_call.hpp"
#include "kafka_llm/policy/cancel_registry.hpp"
#include "kafka_llm/policy/classify.hpp"
#include "kafka_llm/policy/random_source.hpp"
#include "kafka_llm/policy/retry_policy.hpp"

namespace kafka_llm::pipeline {

/// Where a request is in its life (docs/architecture.md, "One request's path").
enum class RequestState : std::uint8_t {
  kNew,                ///< consumed, waiting for start()
  kClaiming,           ///< the pending record is being stored unless a done one is there
  kDeduplicating,      ///< asking who holds this prompt, or reading the holder's result
  kAwaitingEarlier,    ///< the holder is still pending: looking again after a delay
  kAdmitting,          ///< asking the breaker and the rate limits for a provider call
  kAwaitingAdmission,  ///< turned away for now: asking again after a delay
  kCalling,            ///< a provider call is out (tokens may be streaming)
  kBackingOff,         ///< the attempt failed retryably: the next one starts after a delay
  kStoring,            ///< the outcome's result record is being stored unless a done one is there
  kPublishing,         ///< outputs produced, waiting for their delivery reports
  kFinished,           ///< every output delivered: the record counts as finished
  kAbandoned,          ///< given up without an outcome (its partition was revoked); nothing committed
};

std::string_view to_string(RequestState state) noexcept;

/// How Redis answered a store (the claim on receipt, or the outcome at the end).
enum class StoreOutcome : std::uint8_t {
  kStored,       ///< written
  kAlreadyDone,  ///< a done record for the same prompt was there and stays: `done` holds it
  kUnavailable,  ///< Redis is down or slow: nothing known to be written
};

struct StoreReply {
  StoreOutcome outcome = StoreOutcome::kUnavailable;
  std::optional<format::ResultRecord> done;  ///< with kAlreadyDone
};

/// What the breaker is told about an attempt.
enum class BreakerReport : std::uint8_t {
  kSuccess,     ///< the provider answered (a success, or a 429: it is up and pacing us)
  kFailure,     ///< a failure the breaker counts whatever it was (a stream cut, an embedded raise)
  kClassified,  ///< the classification decides (policy::CircuitBreaker::on_outcome)
};

/// The actions a request asks the I/O layer to carry out, in the order given.
namespace action {
/// Store `record` as the pending result unless a done one (for the same prompt) is there; answer
/// with RequestMachine::on_claim.
struct Claim {
  format::ResultRecord pending;
};
/// Claim the dedupe key for this request for `window`; answer with on_dedupe_holder.
struct DedupeClaim {
  std::string key;
  Millis window;
};
/// Read the result of the request holding the prompt; answer with on_dedupe_result.
struct DedupeLookUp {
  std::string holder;
};
/// Make this request the dedupe key's holder (no answer needed).
struct DedupeTakeOver {
  std::string key;
  Millis window;
};
/// Ask the breaker and the rate limits for a call; answer with on_admission.
struct Admit {};
/// Start provider attempt `attempt` (1-based): send `http`, or call the embedded provider with the
/// request's path and body when it is empty. Answer with on_provider_data (streamed bytes, HTTP
/// only) and then on_provider_answer.
struct CallProvider {
  int attempt = 0;
  std::optional<http::Request> http;
};
/// Tell the provider's circuit breaker how the attempt went.
struct ReportToBreaker {
  BreakerReport report = BreakerReport::kClassified;
  policy::Classification classification;
};
/// Give the rate limits back what the failed attempt took (it is retried).
struct RefundAdmission {};
/// Correct the token limits by what the call really used.
struct SettleTokens {
  std::int64_t total_tokens = 0;
};
/// Call on_timer at `at`; replaces any earlier wait.
struct WaitUntil {
  std::chrono::steady_clock::time_point at;
};
/// Store the outcome's record unless a done one is there; answer with on_store. `record` is the
/// machine's own, valid while the machine lives (carry the action out before the next event).
struct StoreResult {
  const format::ResultRecord* record = nullptr;
};
/// Produce `output`; answer with on_delivered once the broker acknowledged it (the I/O layer sends
/// it again until it does).
struct Produce {
  Output output;
};
/// Every output is delivered: finish the record's offset and free its slot in the window.
struct Finish {};
/// Give the request up: cancel what is out, free its slot, finish no offset.
struct Abandon {};
/// Stop the provider call that is out (remove its transfer; an embedded call runs to its end and
/// its answer is ignored). No answer follows.
struct AbortCall {};
}  // namespace action

using Action =
    std::variant<action::Claim, action::DedupeClaim, action::DedupeLookUp, action::DedupeTakeOver,
                 action::Admit, action::CallProvider, action::ReportToBreaker, action::RefundAdmission,
                 action::SettleTokens, action::WaitUntil, action::StoreResult, action::Produce,
                 action::Finish, action::Abandon, action::AbortCall>;
using Actions = std::vector<Action>;

/// What every request of one stream shares: configuration, policy, clocks and counters. Outlives
/// the machines.
struct MachineEnv {
  const PipelineConfig& config;
  const StreamConfig& stream;
  const policy::RetryPolicy& retry;
  policy::RandomSource& rng;
  const Clock& clock;
  metrics::PipelineMetrics& metrics;
  const std::vector<std::string>& secrets;
  /// The stream's remembered cancellations (`cancelURL`); null when it has none. Read at start().
  const policy::CancelRegistry* cancels = nullptr;
};

/// What a cancellation did to a request (docs/guarantees.md, "Cancellation").
enum class CancelEffect : std::uint8_t {
  kNotStarted,  ///< not taken up yet: it is skipped at start() when the registry remembers its id
  kSkipped,     ///< ended before any provider call of the moment (waiting, backing off, claiming)
  kAborted,     ///< its provider call was removed mid-flight
  kTooLate,     ///< its outcome was already being stored or published: it stands
};

/// "not_started", "skipped", "aborted" or "too_late" (the `result` label of kafka_llm_cancels_total).
std::string_view to_string(CancelEffect effect) noexcept;

/// The life of one request record, from consumed to finished, without any I/O (docs/architecture.md).
///
/// Events come in through the on_* methods, each appending the actions it decides to `out`;
/// the I/O layer carries them out and reports back. Owns no sockets, threads or handles; reads the
/// time only through MachineEnv::clock. Not thread-safe: one thread drives a machine. An event
/// that does not fit the current state (a late answer after an abandon, a duplicate report) is
/// ignored.
class RequestMachine {
 public:
  RequestMachine(const MachineEnv& env, ConsumedRecord record);

  /// The record got a slot in the window: parse it, prepare it, claim it.
  void start(Actions& out);
  void on_claim(StoreReply reply, Actions& out);
  /// `ok` false: Redis did not answer. `holder`: the request holding the prompt, nullopt when this
  /// one does now.
  void on_dedupe_holder(bool ok, std::optional<std::string> holder, Actions& out);
  /// `ok` false: Redis did not answer. `earlier`: the holder's stored result, if any.
  void on_dedupe_result(bool ok, std::optional<format::ResultRecord> earlier, Actions& out);
  /// `wait` zero: admitted, else ask again after it. `rate_limited`: a limit (not the breaker) said wait.
  void on_admission(std::chrono::milliseconds wait, bool rate_limited, Actions& out);
  void on_provider_data(std::string_view data, Actions& out);
  void on_provider_answer(ProviderCall call, Actions& out);
  void on_timer(Actions& out);
  void on_store(StoreReply reply, Actions& out);
  void on_delivered(Actions& out);
  /// A cancel record named this request: it ends as `cancelled` (a 499 response or final frame, a
  /// cancelled result record, no dead letter) unless its outcome is already decided.
  CancelEffect on_cancel(const std::string& reason, Actions& out);
  /// The record's partition was revoked or lost: a request that is not calling the provider or
  /// finishing is abandoned (the partition's next owner runs it); the others go on, but their
  /// finish no longer moves a committed offset.
  void on_revoked(Actions& out);

  RequestState state() const noexcept { return state_; }
  const RequestFacts& facts() const noexcept { return facts_; }
  /// The parsed request (once started and not poison).
  const format::RequestEnvelope* request() const noexcept {
    return facts_.request ? &*facts_.request : nullptr;
  }
  /// The provider serving the request (once resolved).
  const ProviderConfig* provider() const noexcept { return provider_; }
  /// Outputs produced and not yet acknowledged.
  int outputs_pending() const noexcept { return outputs_pending_; }
  /// Chunks published so far for a streamed request.
  std::uint64_t chunks() const noexcept { return stream_.seq; }

 private:
  /// The assembly of a streamed response.
  struct StreamAssembly {
    std::unique_ptr<format::SseParser> sse;
    std::uint64_t seq = 0;
    std::string text;
    std::optional<std::string> finish_reason;
    std::optional<format::TokenUsage> usage;
    bool done = false;
    std::string error;
    std::string prefix;  ///< the first bytes of a streamed body, for error messages
  };
  /// What on_timer resumes.
  enum class Resume : std::uint8_t { kNone, kClaim, kDedupeLookUp, kAdmit, kStore };

  /// Sets facts_.deadline_ms from the request, its headers and the stream; the error of a bad header.
  std::optional<std::string> resolve_deadline();
  /// Whether the deadline falls at or before `at`.
  bool past_deadline(std::chrono::steady_clock::time_point at) const;
  /// Fails the request as expired (no more attempts).
  void expire(const std::string& why, Actions& out);
  /// ", after N attempts" once an attempt was made, else "".
  std::string after_attempts() const;
  void claim(Actions& out);
  void deduplicate(Actions& out);
  void serve_deduplicated(format::ResultRecord earlier, Actions& out);
  void take_over_dedupe(Actions& out);
  void admit(Actions& out);
  void start_attempt(Actions& out);
  void read_stream_event(const format::SseEvent& event);
  bool stream_outcome(ProviderCall& call, Actions& out);
  bool body_is_object(ProviderCall& call, nlohmann::json& body);
  void decide_after_attempt(ProviderCall call, nlohmann::json body, Actions& out);
  void succeed(nlohmann::json body, std::string body_text, Actions& out);
  void fail(ErrorClass error_class, int http_status, const std::string& message, Actions& out);
  void reject_poison(Actions& out);
  void cancel(const std::string& reason, Actions& out);
  /// Stores `record` as the outcome (state kStoring); `on_store` then publishes.
  void store_outcome(format::ResultRecord record, Actions& out);
  void publish(Actions& out);
  void publish_done(const format::ResultRecord& record, Actions& out);
  void produce(std::string topic, std::optional<std::string> key, std::string value, HeaderList headers,
               Actions& out);
  void send_for_review(const std::string& response, const HeaderList& headers, Actions& out);
  void wait(std::chrono::steady_clock::time_point at, Resume resume, RequestState state, Actions& out);
  void finish_if_delivered(Actions& out);
  void count_finished(std::string_view outcome);
  /// Ends the open attempt's span (no-op when spans are not recorded); `error` "" when it succeeded.
  void end_attempt_span(long status, std::string error, const std::string& message);
  /// Starts the PRODUCER span of the outcome `record` (no-op when spans are not recorded).
  void begin_publish_span(const format::ResultRecord& record);
  std::uint64_t micros_since(std::chrono::steady_clock::time_point start) const;
  std::string redact(std::string_view text) const;

  const MachineEnv& env_;
  RequestFacts facts_;
  const ProviderConfig* provider_ = nullptr;
  RequestState state_ = RequestState::kNew;
  Resume resume_ = Resume::kNone;
  int malformed_ = 0;
  std::string dedupe_key_;
  std::string dedupe_holder_;
  int dedupe_polls_ = 0;
  StreamAssembly stream_;
  /// The outcome being stored, and what its publication needs; allocated once it is decided, so a
  /// request in flight costs only what it uses (docs/architecture.md: memory per in-flight request).
  struct Outcome {
    format::ResultRecord record;
    std::optional<format::DeadLetterFacts> dead_letter;
    bool publish_response = true;  ///< false for a poison record no client can correlate
  };
  Outcome& outcome();
  std::unique_ptr<Outcome> outcome_;
  int outputs_pending_ = 0;
  /// A cancellation that arrived while admission was asked: carried out on its answer.
  std::unique_ptr<std::string> cancel_reason_;
};

}  // namespace kafka_llm::pipeline
