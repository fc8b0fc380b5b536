#include "kafka_llm/pipeline/request_fsm.hpp"

#include <algorithm>
#include <limits>

#include "kafka_llm/features/dedupe.hpp"
#include "kafka_llm/features/output_check.hpp"
#include "kafka_llm/features/request_preparation.hpp"
#include "kafka_llm/features/review_sampling.hpp"
#include "kafka_llm/format/anthropic_mapping.hpp"
#include "kafka_llm/format/anthropic_stream.hpp"
#include "kafka_llm/format/openai_stream.hpp"
#include "kafka_llm/format/provider_response.hpp"

namespace kafka_llm::pipeline {

using SteadyTime = std::chrono::steady_clock::time_point;

namespace {
/// A Redis store that did not answer is tried again after this long.
constexpr std::chrono::milliseconds kStoreRetryDelay{200};
/// Bytes of a streamed body kept for error messages.
constexpr std::size_t kStreamPrefixBytes = 4096;
/// Bytes of a cancel record's reason kept in the outputs.
constexpr std::size_t kCancelReasonBytes = 200;
}  // namespace

std::string_view to_string(RequestState state) noexcept {
  switch (state) {
    case RequestState::kNew:
      return "new";
    case RequestState::kClaiming:
      return "claiming";
    case RequestState::kDeduplicating:
      return "deduplicating";
    case RequestState::kAwaitingEarlier:
      return "awaiting_earlier";
    case RequestState::kAdmitting:
      return "admitting";
    case RequestState::kAwaitingAdmission:
      return "awaiting_admission";
    case RequestState::kCalling:
      return "calling";
    case RequestState::kBackingOff:
      return "backing_off";
    case RequestState::kStoring:
      return "storing";
    case RequestState::kPublishing:
      return "publishing";
    case RequestState::kFinished:
      return "finished";
    case RequestState::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

std::string_view to_string(CancelEffect effect) noexcept {
  switch (effect) {
    case CancelEffect::kNotStarted:
      return "not_started";
    case CancelEffect::kSkipped:
      return "skipped";
    case CancelEffect::kAborted:
      return "aborted";
    case CancelEffect::kTooLate:
      return "too_late";
  }
  return "unknown";
}

RequestMachine::RequestMachine(const MachineEnv& env, ConsumedRecord record) : env_(env) {
  facts_.record = std::move(record);
  for (std::string_view name : {"traceparent", "tracestate"}) {
    if (const std::string* value = find_header(facts_.record.headers, name))
      facts_.trace.emplace_back(name, *value);
  }
  facts_.received = env_.clock.steady();
  facts_.created_ms = env_.clock.system_ms();
  if (env_.config.tracing.enabled()) {
    const auto received_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(env_.clock.system().time_since_epoch()).count();
    facts_.tracing = begin_request_trace(facts_.record.headers, env_.config.tracing, env_.rng, received_ns);
    // Outputs (token frames included) carry the consumer span's context from here on.
    if (facts_.tracing) facts_.trace = trace_headers(*facts_.tracing, facts_.tracing->consumer_span_id);
  }
  facts_.produced = facts_.received;
  const std::int64_t timestamp = facts_.record.timestamp_ms;
  if (timestamp > 0 && facts_.created_ms > timestamp) {
    facts_.produced -= std::chrono::milliseconds(facts_.created_ms - timestamp);
  }
}

// ---------------------------------------------------------------------------------------------
// Receipt: parse, route, prepare, claim

void RequestMachine::start(Actions& out) {
  if (state_ != RequestState::kNew) return;
  format::RequestParseOptions options;
  options.max_request_bytes = env_.config.max_request_bytes;
  const auto& record = facts_.record;
  auto parsed = format::parse_request(record.value, record.key, record.origin, options);
  if (auto* poison = std::get_if<format::PoisonRecord>(&parsed)) {
    facts_.poison = std::make_unique<const format::PoisonRecord>(std::move(*poison));
    reject_poison(out);
    return;
  }
  facts_.request = std::move(std::get<format::RequestEnvelope>(parsed));
  auto& request = *facts_.request;
  if (request.provider) {
    facts_.provider = *request.provider;  // named even when unknown: what a dead letter's reader fixes
    provider_ = env_.config.find_provider(*request.provider);
    if (provider_ == nullptr) {
      fail(ErrorClass::kNonRetryable, 400, "unknown provider \"" + *request.provider + "\"", out);
      return;
    }
  } else {
    provider_ = env_.config.route_model(request.model);
  }
  facts_.provider = provider_->name;
  facts_.model_version = env_.config.model_version.empty() ? request.model : env_.config.model_version;
  if (env_.cancels != nullptr) {
    if (const std::string* reason = env_.cancels->find(request.request_id, env_.clock.system_ms())) {
      // Cancelled while it was queued: never sent.
      env_.metrics.cancel("skipped");
      cancel(*reason, out);
      return;
    }
  }
  if (auto error = resolve_deadline()) {
    fail(ErrorClass::kPoison, 400, *error, out);
    return;
  }
  if (past_deadline(env_.clock.steady())) {
    expire("the deadline passed " + std::to_string(env_.clock.system_ms() - *facts_.deadline_ms) +
               " ms before the request was taken up",
           out);
    return;
  }
  const StreamConfig& stream = env_.stream;
  if (stream.prompt || stream.redactor) {
    features::RedactionCounts redactions;
    if (auto error =
            features::prepare_request(request, stream.prompt.get(), stream.redactor.get(), redactions)) {
      fail(ErrorClass::kNonRetryable, 400, *error, out);
      return;
    }
    for (const auto& [rule, count] : redactions) env_.metrics.redactions(stream.requests_topic, rule, count);
    if (stream.prompt) facts_.prompt_version = stream.prompt->version();
  }
  claim(out);
}

// ---------------------------------------------------------------------------------------------
// Deadlines: the earliest the request carries (`deadline_ms`, `timeout_ms` from the record's
// timestamp, header `x-deadline-ms`), else the stream's `deadline` from the record's timestamp.

namespace {
std::optional<std::int64_t> header_millis(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::int64_t add_millis(std::int64_t at, std::int64_t ms) {
  return ms > std::numeric_limits<std::int64_t>::max() - at ? std::numeric_limits<std::int64_t>::max()
                                                            : at + ms;
}
}  // namespace

std::optional<std::string> RequestMachine::resolve_deadline() {
  const auto& request = *facts_.request;
  const std::int64_t timestamp =
      facts_.record.timestamp_ms > 0 ? facts_.record.timestamp_ms : facts_.created_ms;
  std::optional<std::int64_t> deadline;
  const auto earliest = [&deadline](std::int64_t at) { deadline = deadline ? std::min(*deadline, at) : at; };
  if (request.deadline_ms) earliest(*request.deadline_ms);
  if (request.timeout_ms) earliest(add_millis(timestamp, *request.timeout_ms));
  if (const std::string* header = find_header(facts_.record.headers, "x-deadline-ms")) {
    const auto at = header_millis(*header);
    if (!at) {
      return "header x-deadline-ms must be a non-negative integer of milliseconds since the epoch (got \"" +
             header->substr(0, 40) + "\")";
    }
    earliest(*at);
  }
  if (!deadline && env_.stream.deadline) deadline = add_millis(timestamp, env_.stream.deadline->count());
  facts_.deadline_ms = deadline;
  return std::nullopt;
}

bool RequestMachine::past_deadline(SteadyTime at) const {
  if (!facts_.deadline_ms) return false;
  // On the steady clock, from the wall-clock time the record was received at.
  const auto left = std::chrono::milliseconds(*facts_.deadline_ms - facts_.created_ms);
  return at >= facts_.received + left;
}

std::string RequestMachine::after_attempts() const {
  if (facts_.attempts == 0) return "";
  return ", after " + std::to_string(facts_.attempts) + (facts_.attempts == 1 ? " attempt" : " attempts");
}

void RequestMachine::expire(const std::string& why, Actions& out) {
  fail(ErrorClass::kExpired, 504, "deadline exceeded: " + why, out);
}

void RequestMachine::claim(Actions& out) {
  state_ = RequestState::kClaiming;
  auto pending = outputs::result_record(facts_, format::ResultStatus::kPending, facts_.created_ms);
  pending.prompt_version = std::nullopt;
  out.emplace_back(action::Claim{std::move(pending)});
}

void RequestMachine::on_claim(StoreReply reply, Actions& out) {
  if (state_ != RequestState::kClaiming) return;
  switch (reply.outcome) {
    case StoreOutcome::kUnavailable:
      // Redis is down or slow: the in-flight window turns the wait into backpressure.
      wait(env_.clock.steady() + kStoreRetryDelay, Resume::kClaim, RequestState::kClaiming, out);
      return;
    case StoreOutcome::kAlreadyDone:
      // Answered (or cancelled) before: a redelivery after a crash, or a replay of the same prompt.
      facts_.provider = reply.done->provider.value_or("");
      if (reply.done->status == format::ResultStatus::kCancelled) {
        count_finished("cancelled");
      } else {
        env_.metrics.cache_hit();
        count_finished("replayed");
      }
      publish_done(*reply.done, out);
      return;
    case StoreOutcome::kStored:
      deduplicate(out);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Dedupe: one provider call per prompt within the stream's window

void RequestMachine::deduplicate(Actions& out) {
  // Streamed requests want their tokens: they are never served from another request's result.
  if (!env_.stream.dedupe_window || facts_.request->stream) {
    admit(out);
    return;
  }
  const auto& request = *facts_.request;
  dedupe_key_ = features::dedupe_key(env_.config.redis.key_prefix, env_.stream.group, request.prompt_hash,
                                     request.model, provider_->name);
  state_ = RequestState::kDeduplicating;
  out.emplace_back(action::DedupeClaim{dedupe_key_, *env_.stream.dedupe_window});
}

void RequestMachine::on_dedupe_holder(bool ok, std::optional<std::string> holder, Actions& out) {
  if (state_ != RequestState::kDeduplicating || !dedupe_holder_.empty()) return;
  // Dedupe saves cost but is not needed for correctness: without Redis, call.
  if (!ok || !holder) {
    admit(out);
    return;
  }
  dedupe_holder_ = std::move(*holder);
  out.emplace_back(action::DedupeLookUp{dedupe_holder_});
}

void RequestMachine::on_dedupe_result(bool ok, std::optional<format::ResultRecord> earlier, Actions& out) {
  if (state_ != RequestState::kDeduplicating || dedupe_holder_.empty()) return;
  if (!ok) {
    admit(out);
    return;
  }
  switch (features::decide_dedupe(earlier ? &*earlier : nullptr)) {
    case features::DedupeAction::kServe:
      serve_deduplicated(std::move(*earlier), out);
      return;
    case features::DedupeAction::kWait: {
      // Bounded by the request's deadline; then the provider is called after all.
      const auto at = env_.clock.steady() + features::dedupe_poll_delay(dedupe_polls_++);
      if (at >= facts_.received + env_.config.retry.request_timeout || past_deadline(at)) {
        take_over_dedupe(out);
        return;
      }
      wait(at, Resume::kDedupeLookUp, RequestState::kAwaitingEarlier, out);
      return;
    }
    case features::DedupeAction::kCallProvider:
      take_over_dedupe(out);
      return;
  }
}

void RequestMachine::take_over_dedupe(Actions& out) {
  // Later duplicates follow this request instead of the failed or vanished one.
  out.emplace_back(action::DedupeTakeOver{dedupe_key_, *env_.stream.dedupe_window});
  dedupe_holder_.clear();
  admit(out);
}

void RequestMachine::serve_deduplicated(format::ResultRecord earlier, Actions& out) {
  facts_.dedupe_of = std::exchange(dedupe_holder_, {});
  format::ResultRecord record =
      outputs::result_record(facts_, format::ResultStatus::kDone, env_.clock.system_ms());
  record.provider = std::move(earlier.provider);
  record.model = std::move(earlier.model);
  record.output = std::move(earlier.output);
  record.body = std::move(earlier.body);
  record.body_text = std::move(earlier.body_text);
  record.usage = earlier.usage;
  record.status_code = 200;
  record.attempts = 0;
  record.latency_ms = 0.0;
  env_.metrics.cache_hit();
  count_finished("deduplicated");
  store_outcome(std::move(record), out);
}

// ---------------------------------------------------------------------------------------------
// Admission and attempts

void RequestMachine::admit(Actions& out) {
  state_ = RequestState::kAdmitting;
  out.emplace_back(action::Admit{});
}

void RequestMachine::on_admission(std::chrono::milliseconds wait_for, bool rate_limited, Actions& out) {
  if (state_ != RequestState::kAdmitting) return;
  if (cancel_reason_) {
    if (wait_for.count() == 0) out.emplace_back(action::RefundAdmission{});  // admitted: give it back
    const std::string reason = std::move(*cancel_reason_);
    cancel(reason, out);
    return;
  }
  if (wait_for.count() > 0) {
    if (rate_limited) env_.metrics.rate_limited();
    const auto at = env_.clock.steady() + wait_for;
    if (past_deadline(at)) {
      expire("it falls within a wait of " + std::to_string(wait_for.count()) + " ms for " +
                 (rate_limited ? "the rate limits" : "the provider's circuit breaker") + after_attempts(),
             out);
      return;
    }
    wait(at, Resume::kAdmit, RequestState::kAwaitingAdmission, out);
    return;
  }
  start_attempt(out);
}

void RequestMachine::start_attempt(Actions& out) {
  const auto now = env_.clock.steady();
  if (past_deadline(now)) {
    expire("it passed before attempt " + std::to_string(facts_.attempts + 1) + after_attempts(), out);
    return;
  }
  if (facts_.attempts == 0) {
    facts_.first_attempt = now;
    facts_.first_attempt_ms = env_.clock.system_ms();
    env_.metrics.queued(micros_since(facts_.produced));
  }
  ++facts_.attempts;
  action::CallProvider call{facts_.attempts, std::nullopt};
  // The attempt's CLIENT span: its context goes to the provider.
  const std::string span_id = facts_.tracing ? tracing::new_span_id(env_.rng) : std::string();
  if (provider_->kind != ProviderKind::kEmbedded) {
    auto until = env_.retry.deadline(facts_.first_attempt);
    if (facts_.deadline_ms) {
      until = std::min(until,
                       facts_.received + std::chrono::milliseconds(*facts_.deadline_ms - facts_.created_ms));
    }
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
    auto built =
        build_provider_request(*provider_, *facts_.request, remaining,
                               facts_.tracing ? trace_headers(*facts_.tracing, span_id) : facts_.trace);
    if (auto* error = std::get_if<std::string>(&built)) {
      fail(ErrorClass::kNonRetryable, 400, *error, out);
      return;
    }
    call.http = std::move(std::get<http::Request>(built));
  }
  if (facts_.tracing)
    facts_.tracing->attempts.push_back({facts_.attempts, span_id, now, std::nullopt, 0, "", ""});
  state_ = RequestState::kCalling;
  if (facts_.request->stream) stream_.sse = std::make_unique<format::SseParser>();
  out.emplace_back(std::move(call));
}

void RequestMachine::on_provider_data(std::string_view data, Actions& out) {
  if (state_ != RequestState::kCalling || !facts_.request->stream) return;
  if (stream_.seq == 0 && stream_.prefix.size() < kStreamPrefixBytes) {
    stream_.prefix.append(data.substr(0, kStreamPrefixBytes - stream_.prefix.size()));
  }
  if (!stream_.sse) stream_.sse = std::make_unique<format::SseParser>();
  std::vector<format::SseEvent> events;
  if (auto error = stream_.sse->feed(data, events)) stream_.error = error->message;
  for (const auto& event : events) {
    if (stream_.done) break;
    const std::uint64_t seq_before = stream_.seq;
    read_stream_event(event);
    if (stream_.seq == seq_before) continue;  // not a chunk
    if (seq_before == 0) env_.metrics.first_token(micros_since(facts_.produced));
    const auto& id = facts_.request_id();
    produce(env_.stream.responses_topic, id, format::serialize_chunk_frame_raw(id, seq_before, event.data),
            outputs::output_headers(facts_), out);
  }
}

// Folds one event into the assembly; a chunk to publish advances `seq`.
void RequestMachine::read_stream_event(const format::SseEvent& event) {
  if (provider_->kind == ProviderKind::kAnthropic) {
    auto read = format::read_anthropic_stream_event(event);
    if (auto* error = std::get_if<format::FormatError>(&read)) {
      stream_.error = error->message;
      return;
    }
    const auto& e = std::get<format::AnthropicStreamEvent>(read);
    if (e.kind == format::AnthropicStreamKind::kPing) return;
    if (e.kind == format::AnthropicStreamKind::kError) {
      stream_.error = e.error_message.value_or("the provider reported an error mid-stream");
      return;
    }
    stream_.text += e.delta_text;
    if (e.finish_reason) stream_.finish_reason = e.finish_reason;
    if (e.input_tokens || e.output_tokens) {
      if (!stream_.usage) stream_.usage = format::TokenUsage{};
      if (e.input_tokens) stream_.usage->prompt_tokens = *e.input_tokens;
      if (e.output_tokens) stream_.usage->completion_tokens = *e.output_tokens;
      stream_.usage->total_tokens = stream_.usage->prompt_tokens + stream_.usage->completion_tokens;
    }
    if (e.kind == format::AnthropicStreamKind::kMessageStop) stream_.done = true;
    ++stream_.seq;
    return;
  }
  auto read = format::read_openai_stream_event(event);
  if (auto* error = std::get_if<format::FormatError>(&read)) {
    stream_.error = error->message;
    return;
  }
  const auto& chunk = std::get<format::OpenAiStreamChunk>(read);
  if (chunk.kind == format::OpenAiStreamKind::kDone) {
    stream_.done = true;
    return;
  }
  if (chunk.kind == format::OpenAiStreamKind::kError) {
    stream_.error = chunk.error_message.value_or("the provider reported an error mid-stream");
    return;
  }
  stream_.text += chunk.delta_text;
  if (chunk.finish_reason) stream_.finish_reason = chunk.finish_reason;
  if (chunk.usage) stream_.usage = chunk.usage;
  ++stream_.seq;
}

void RequestMachine::on_provider_answer(ProviderCall call, Actions& out) {
  if (state_ != RequestState::kCalling) return;
  env_.metrics.provider_call(static_cast<std::uint64_t>(call.latency.count()));
  if (call.error != policy::TransportError::kNone) {
    end_attempt_span(call.status, std::string(policy::to_string(call.error)), call.transport_message);
  } else if (call.status >= 400 || call.final_error) {
    end_attempt_span(
        call.status, call.status >= 400 ? std::to_string(call.status) : "provider_error",
        call.transport_message.empty() ? "HTTP " + std::to_string(call.status) : call.transport_message);
  } else {
    end_attempt_span(call.status, "", "");
  }
  if (facts_.request->stream && stream_outcome(call, out)) return;
  nlohmann::json body;
  if (call.error == policy::TransportError::kNone && call.status >= 200 && call.status < 300 &&
      !facts_.request->stream && !body_is_object(call, body)) {
    call.error = policy::TransportError::kMalformedResponse;
    call.transport_message = "the provider's response is not a JSON object";
    ++malformed_;
  }
  if (call.final_error) {
    out.emplace_back(action::ReportToBreaker{BreakerReport::kFailure, {}});
    fail(ErrorClass::kNonRetryable, static_cast<int>(call.status), call.transport_message, out);
    return;
  }
  decide_after_attempt(std::move(call), std::move(body), out);
}

// A streamed attempt: true when its outcome is decided here. Once frames went out a retry would
// duplicate tokens, so the stream ends, successfully or with a final error frame.
bool RequestMachine::stream_outcome(ProviderCall& call, Actions& out) {
  if (stream_.sse) (void)stream_.sse->finish();
  const bool ok_status =
      call.error == policy::TransportError::kNone && call.status >= 200 && call.status < 300;
  if (stream_.seq > 0) {
    if (ok_status && stream_.done && stream_.error.empty()) {
      out.emplace_back(action::ReportToBreaker{BreakerReport::kSuccess, {}});
      succeed(nlohmann::json(), {}, out);
      return true;
    }
    out.emplace_back(action::ReportToBreaker{BreakerReport::kFailure, {}});
    const std::string why = !stream_.error.empty() ? stream_.error
                            : !call.transport_message.empty()
                                ? call.transport_message
                                : "the provider stream ended before it was complete";
    fail(ErrorClass::kNonRetryable, call.status >= 400 ? static_cast<int>(call.status) : 502,
         "stream failed after " + std::to_string(stream_.seq) + " chunks: " + why, out);
    return true;
  }
  if (ok_status && !stream_.done) {
    call.error = policy::TransportError::kMalformedResponse;
    call.transport_message =
        stream_.error.empty() ? "the provider's response is not an event stream" : stream_.error;
    ++malformed_;
  }
  call.body = std::exchange(stream_.prefix, {});  // what arrived, for error messages
  return false;
}

// Anthropic bodies are parsed whole (they are mapped to OpenAI's shape); others are scanned for the
// few members read from them and passed on as the provider's bytes.
bool RequestMachine::body_is_object(ProviderCall& call, nlohmann::json& body) {
  if (provider_->kind == ProviderKind::kAnthropic) {
    body = nlohmann::json::parse(call.body, nullptr, false);
    return !body.is_discarded() && body.is_object();
  }
  auto scanned = format::scan_provider_body(call.body);
  body = std::move(scanned.members);
  if (scanned.is_object && !scanned.compact) call.body = format::compact_json(call.body);
  return scanned.is_object;
}

void RequestMachine::decide_after_attempt(ProviderCall call, nlohmann::json body, Actions& out) {
  const auto classification = policy::classify(call.error, static_cast<int>(call.status), call.headers);
  // A 429 proves the provider is up and pacing us (Retry-After and the rate limiter handle that):
  // it closes a half-open circuit instead of holding it half-open on a neutral outcome.
  out.emplace_back(action::ReportToBreaker{classification.kind == policy::FailureKind::kRateLimited
                                               ? BreakerReport::kSuccess
                                               : BreakerReport::kClassified,
                                           classification});
  const auto now = env_.clock.steady();
  const policy::AttemptContext context{facts_.attempts - 1, malformed_, facts_.first_attempt};
  const auto decision =
      env_.retry.decide(context, classification, call.headers, now, env_.clock.system(), env_.rng);
  switch (decision.action) {
    case policy::RetryAction::kSucceed:
      if (facts_.request->stream) {
        succeed(std::move(body), {}, out);
      } else if (provider_->kind == ProviderKind::kAnthropic) {
        const auto created_s =
            std::chrono::duration_cast<std::chrono::seconds>(env_.clock.system().time_since_epoch()).count();
        auto mapped = format::to_openai_chat_completion(body, created_s);
        if (auto* converted = std::get_if<nlohmann::json>(&mapped)) body = std::move(*converted);
        succeed(std::move(body), {}, out);
      } else {
        succeed(std::move(body), std::move(call.body), out);
      }
      return;
    case policy::RetryAction::kRetry:
      if (past_deadline(now + decision.delay)) {
        expire("it falls before attempt " + std::to_string(facts_.attempts + 1) + " could start" +
                   after_attempts() + " (last: " + std::string(decision.reason_label) + ")",
               out);
        return;
      }
      env_.metrics.retry(std::string(decision.reason_label));
      out.emplace_back(action::RefundAdmission{});
      if (facts_.request->stream) stream_ = StreamAssembly{};
      wait(now + decision.delay, Resume::kAdmit, RequestState::kBackingOff, out);
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
      fail(decision.error_class, status, message, out);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Outcomes

void RequestMachine::succeed(nlohmann::json body, std::string body_text, Actions& out) {
  const auto& request = *facts_.request;
  auto record = outputs::result_record(facts_, format::ResultStatus::kDone, env_.clock.system_ms());
  record.attempts = facts_.attempts;
  record.latency_ms = static_cast<double>(micros_since(facts_.first_attempt)) / 1000.0;
  record.status_code = 200;
  if (request.stream) {
    record.output = stream_.text;
    record.usage = stream_.usage;
    record.body = {{"object", "chat.completion"},
                   {"model", request.model},
                   {"choices",
                    {{{"index", 0},
                      {"message", {{"role", "assistant"}, {"content", stream_.text}}},
                      {"finish_reason", stream_.finish_reason ? nlohmann::json(*stream_.finish_reason)
                                                              : nlohmann::json(nullptr)}}}}};
    if (stream_.usage) record.body["usage"] = *stream_.usage;
  } else {
    // Anthropic bodies were mapped to OpenAI's shape already.
    auto read = format::read_provider_response(body, format::ProviderApi::kOpenAi, request.endpoint);
    if (auto* output = std::get_if<format::ProviderOutput>(&read)) {
      record.output = output->text;
      record.usage = output->usage;
      if (output->model && env_.config.model_version.empty()) facts_.model_version = *output->model;
    }
    if (body_text.empty()) {
      record.body = std::move(body);
    } else {
      record.body_text = std::move(body_text);
    }
  }
  if (record.usage) {
    const auto [provider_label, model_label] = env_.config.metric_labels(provider_->name, request.model);
    env_.metrics.tokens(provider_label, model_label, static_cast<std::int64_t>(record.usage->prompt_tokens),
                        static_cast<std::int64_t>(record.usage->completion_tokens));
    out.emplace_back(action::SettleTokens{static_cast<std::int64_t>(record.usage->total_tokens)});
  }
  if (const auto& schema = env_.stream.output_schema;
      schema && request.endpoint != format::Endpoint::kEmbeddings) {
    if (auto violation = features::check_output(*schema, record.output)) {
      facts_.rejected_output = record.output.value_or("");
      fail(ErrorClass::kSchemaViolation, 422, *violation, out);
      return;
    }
  }
  count_finished("ok");
  store_outcome(std::move(record), out);
}

void RequestMachine::fail(ErrorClass error_class, int http_status, const std::string& message, Actions& out) {
  const std::string clean = redact(message);
  auto record = outputs::result_record(facts_, format::ResultStatus::kError, env_.clock.system_ms());
  record.error = clean;
  record.status_code = http_status;
  record.attempts = facts_.attempts;
  record.latency_ms =
      facts_.attempts > 0 ? static_cast<double>(micros_since(facts_.first_attempt)) / 1000.0 : 0.0;
  format::DeadLetterFacts facts;
  facts.error_class = error_class;
  facts.error = clean;
  facts.http_status = http_status;
  facts.attempts = facts_.attempts;
  facts.request_id = facts_.request_id();
  facts.provider = facts_.provider;
  facts.model = facts_.model();
  facts.origin = facts_.record.origin;
  if (facts_.attempts > 0) facts.first_attempt_ms = facts_.first_attempt_ms;
  facts.failed_at_ms = record.updated_ms;
  outcome().dead_letter = std::move(facts);
  count_finished(to_string(error_class));
  store_outcome(std::move(record), out);
}

void RequestMachine::reject_poison(Actions& out) {
  const auto& poison = *facts_.poison;
  facts_.provider = poison.provider.value_or("");
  facts_.model_version = poison.model.value_or("");
  const std::string clean = redact(poison.message);
  auto record = outputs::result_record(facts_, format::ResultStatus::kError, env_.clock.system_ms());
  record.error = clean;
  record.status_code = poison.http_status;
  format::DeadLetterFacts facts;
  facts.error_class = poison.error_class;
  facts.error = clean;
  facts.http_status = poison.http_status;
  facts.request_id = poison.request_id;
  facts.provider = facts_.provider;
  facts.model = facts_.model_version;
  facts.origin = facts_.record.origin;
  facts.failed_at_ms = record.updated_ms;
  outcome().dead_letter = std::move(facts);
  count_finished(to_string(poison.error_class));
  outcome().publish_response = poison.reply == format::ErrorReply::kSend;
  if (!outcome().publish_response) {
    outcome().record = std::move(record);
    publish(out);
    return;
  }
  store_outcome(std::move(record), out);
}

void RequestMachine::cancel(const std::string& reason, Actions& out) {
  resume_ = Resume::kNone;
  cancel_reason_.reset();
  std::string message = "cancelled";
  if (!reason.empty()) message += ": " + redact(reason.substr(0, kCancelReasonBytes));
  auto record = outputs::result_record(facts_, format::ResultStatus::kCancelled, env_.clock.system_ms());
  record.error = std::move(message);
  record.status_code = 499;
  record.attempts = facts_.attempts;
  record.latency_ms =
      facts_.attempts > 0 ? static_cast<double>(micros_since(facts_.first_attempt)) / 1000.0 : 0.0;
  count_finished("cancelled");
  store_outcome(std::move(record), out);
}

void RequestMachine::store_outcome(format::ResultRecord record, Actions& out) {
  outcome().record = std::move(record);
  state_ = RequestState::kStoring;
  out.emplace_back(action::StoreResult{&outcome_->record});
}

void RequestMachine::on_store(StoreReply reply, Actions& out) {
  if (state_ != RequestState::kStoring) return;
  switch (reply.outcome) {
    case StoreOutcome::kUnavailable:
      // Keep the record unfinished (and its offset uncommitted) until Redis has it.
      wait(env_.clock.steady() + kStoreRetryDelay, Resume::kStore, RequestState::kStoring, out);
      return;
    case StoreOutcome::kAlreadyDone:
      if (!facts_.poison) {
        // Another attempt of this request (an earlier owner of the partition) succeeded: its
        // result stands, and is what readers get.
        publish_done(*reply.done, out);
        return;
      }
      break;
    case StoreOutcome::kStored:
      break;
  }
  publish(out);
}

// ---------------------------------------------------------------------------------------------
// Publication and completion

void RequestMachine::publish(Actions& out) {
  state_ = RequestState::kPublishing;
  Outcome& outcome = *outcome_;
  format::ResultRecord& record = outcome.record;  // published once: its body moves into the response
  begin_publish_span(record);
  const auto& topic = env_.stream.responses_topic;
  const std::string& id = facts_.request_id();
  HeaderList headers = outputs::output_headers(facts_);
  const bool streamed = facts_.request && facts_.request->stream;
  if (record.status == format::ResultStatus::kDone) {
    std::string frame = streamed ? format::serialize_final_frame(outputs::final_frame(
                                       facts_, record, stream_.seq, stream_.finish_reason))
                                 : std::string();
    std::string response = format::serialize_response(outputs::response(facts_, std::move(record)));
    send_for_review(response, headers, out);
    produce(topic, id, streamed ? std::move(frame) : std::move(response), std::move(headers), out);
  } else if (outcome.publish_response) {
    if (streamed) {
      auto frame = outputs::final_frame(facts_, record, stream_.seq, stream_.finish_reason);
      frame.usage = stream_.usage;
      produce(topic, id, format::serialize_final_frame(frame), std::move(headers), out);
    } else {
      auto response = outputs::response(facts_, record);
      if (outcome.dead_letter && outcome.dead_letter->error_class == ErrorClass::kSchemaViolation)
        response.body["error"]["type"] = "schema_violation";
      produce(topic, id, format::serialize_response(response), std::move(headers), out);
    }
  }
  if (outcome.dead_letter) {
    produce(env_.stream.dlq_topic, facts_.record.key, facts_.record.value,
            outputs::dead_letter_headers(facts_, *outcome.dead_letter, env_.secrets), out);
    env_.metrics.dead_letter(outcome.dead_letter->error_class);
  }
  finish_if_delivered(out);
}

// Publishes a stored done result (this request's from an earlier attempt, or the one it was
// deduplicated against) as this request's response.
void RequestMachine::publish_done(const format::ResultRecord& record, Actions& out) {
  state_ = RequestState::kPublishing;
  begin_publish_span(record);
  HeaderList headers = outputs::output_headers(facts_);
  std::string value = format::serialize_response(outputs::response(facts_, record));
  if (record.status == format::ResultStatus::kDone) send_for_review(value, headers, out);
  if (facts_.request->stream) {
    value = format::serialize_final_frame(outputs::final_frame(facts_, record, stream_.seq, std::nullopt));
  }
  produce(env_.stream.responses_topic, facts_.request_id(), std::move(value), std::move(headers), out);
  finish_if_delivered(out);
}

// A successful output whose request id is sampled also goes to the review topic (an output like the
// response: it holds the record unfinished until acknowledged).
void RequestMachine::send_for_review(const std::string& response, const HeaderList& headers, Actions& out) {
  const auto& review = env_.stream.human_review;
  if (!review || !features::sampled_for_review(facts_.request_id(), review->sample_rate)) return;
  produce(review->topic, facts_.request_id(), response, headers, out);
  env_.metrics.human_review(env_.stream.requests_topic);
}

void RequestMachine::produce(std::string topic, std::optional<std::string> key, std::string value,
                             HeaderList headers, Actions& out) {
  // Under per-key ordering an entity's outputs share its key, so they land in one partition in order.
  if (env_.stream.ordering == Ordering::kKey && facts_.record.key) key = facts_.record.key;
  if (facts_.tracing && state_ == RequestState::kPublishing)
    facts_.tracing->published_topics.push_back(topic);
  ++outputs_pending_;
  out.emplace_back(
      action::Produce{Output{std::move(topic), std::move(key), std::move(value), std::move(headers)}});
}

void RequestMachine::on_delivered(Actions& out) {
  if (outputs_pending_ == 0 || state_ == RequestState::kFinished || state_ == RequestState::kAbandoned)
    return;
  --outputs_pending_;
  finish_if_delivered(out);
}

void RequestMachine::finish_if_delivered(Actions& out) {
  if (state_ != RequestState::kPublishing || outputs_pending_ > 0) return;
  state_ = RequestState::kFinished;
  out.emplace_back(action::Finish{});
}

// ---------------------------------------------------------------------------------------------
// Timers and revocation

void RequestMachine::wait(SteadyTime at, Resume resume, RequestState state, Actions& out) {
  state_ = state;
  resume_ = resume;
  out.emplace_back(action::WaitUntil{at});
}

void RequestMachine::on_timer(Actions& out) {
  switch (std::exchange(resume_, Resume::kNone)) {
    case Resume::kNone:
      return;
    case Resume::kClaim:
      claim(out);
      return;
    case Resume::kDedupeLookUp:
      state_ = RequestState::kDeduplicating;
      out.emplace_back(action::DedupeLookUp{dedupe_holder_});
      return;
    case Resume::kAdmit:
      admit(out);
      return;
    case Resume::kStore:
      out.emplace_back(action::StoreResult{&outcome_->record});
      return;
  }
}

CancelEffect RequestMachine::on_cancel(const std::string& reason, Actions& out) {
  switch (state_) {
    case RequestState::kNew:
      return CancelEffect::kNotStarted;
    case RequestState::kAdmitting:
      // The admission's answer comes next; what it took is given back then.
      if (!cancel_reason_) cancel_reason_ = std::make_unique<std::string>(reason);
      return CancelEffect::kSkipped;
    case RequestState::kClaiming:
    case RequestState::kDeduplicating:
    case RequestState::kAwaitingEarlier:
    case RequestState::kAwaitingAdmission:
    case RequestState::kBackingOff:
      // Answers still on their way (a claim, a dedupe look-up) find the machine in another state
      // and are ignored; the cancelled record is stored after the claim on the same connection.
      cancel(reason, out);
      return CancelEffect::kSkipped;
    case RequestState::kCalling:
      out.emplace_back(action::AbortCall{});
      end_attempt_span(0, "cancelled", "cancelled");
      cancel(reason, out);
      return CancelEffect::kAborted;
    case RequestState::kStoring:
    case RequestState::kPublishing:
    case RequestState::kFinished:
    case RequestState::kAbandoned:
      return CancelEffect::kTooLate;
  }
  return CancelEffect::kTooLate;
}

void RequestMachine::on_revoked(Actions& out) {
  switch (state_) {
    case RequestState::kNew:
    case RequestState::kClaiming:
    case RequestState::kDeduplicating:
    case RequestState::kAwaitingEarlier:
    case RequestState::kAdmitting:
    case RequestState::kAwaitingAdmission:
    case RequestState::kBackingOff:
      state_ = RequestState::kAbandoned;
      resume_ = Resume::kNone;
      out.emplace_back(action::Abandon{});
      return;
    case RequestState::kCalling:
    case RequestState::kStoring:
    case RequestState::kPublishing:
    case RequestState::kFinished:
    case RequestState::kAbandoned:
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Spans (docs/operations.md, "Tracing"): the times and outcomes request_spans() builds them from

void RequestMachine::end_attempt_span(long status, std::string error, const std::string& message) {
  if (!facts_.tracing || facts_.tracing->attempts.empty()) return;
  AttemptTrace& attempt = facts_.tracing->attempts.back();
  if (attempt.end) return;
  attempt.end = env_.clock.steady();
  attempt.status = status;
  attempt.error = std::move(error);
  attempt.message = redact(message);
}

// The outputs published from here on carry the PRODUCER span's context.
void RequestMachine::begin_publish_span(const format::ResultRecord& record) {
  if (!facts_.tracing) return;
  RequestTrace& trace = *facts_.tracing;
  trace.publish_start = env_.clock.steady();
  trace.producer_span_id = tracing::new_span_id(env_.rng);
  trace.status_code = record.status_code.value_or(200);
  if (record.status != format::ResultStatus::kDone) trace.error = record.error.value_or("failed");
  facts_.trace = trace_headers(trace, trace.producer_span_id);
}

RequestMachine::Outcome& RequestMachine::outcome() {
  if (!outcome_) outcome_ = std::make_unique<Outcome>();
  return *outcome_;
}

void RequestMachine::count_finished(std::string_view outcome) {
  // Bounded labels: the model (and provider) a record names may be anything.
  auto [provider_label, model_label] = env_.config.metric_labels(facts_.provider, facts_.model());
  env_.metrics.request_finished(env_.stream.requests_topic, provider_label, model_label, std::string(outcome),
                                micros_since(facts_.produced));
}

std::uint64_t RequestMachine::micros_since(SteadyTime start) const {
  const auto d = std::chrono::duration_cast<std::chrono::microseconds>(env_.clock.steady() - start).count();
  return d > 0 ? static_cast<std::uint64_t>(d) : 0;
}

std::string RequestMachine::redact(std::string_view text) const {
  return format::redact_secrets(text, env_.secrets);
}

}  // namespace kafka_llm::pipeline
