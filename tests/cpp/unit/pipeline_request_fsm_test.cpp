// The request state machine, every transition, without sockets: events in, actions out, a manual clock.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kafka_llm/features/json_schema.hpp"
#include "kafka_llm/features/prompt_template.hpp"
#include "kafka_llm/features/redactor.hpp"
#include "kafka_llm/pipeline/request_fsm.hpp"
#include "kafka_llm/pipeline/result_store.hpp"

namespace kafka_llm::pipeline {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady() const override { return steady_; }
  std::chrono::system_clock::time_point system() const override { return system_; }
  void advance(milliseconds by) {
    steady_ += by;
    system_ += by;
  }

 private:
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::chrono::system_clock::time_point system_{std::chrono::milliseconds(1'800'000'000'000)};
};

/// Always the same draw: full jitter then waits exactly half of the backoff ceiling.
class HalfRandom final : public policy::RandomSource {
 public:
  std::uint64_t next_u64() override { return std::uint64_t{1} << 63U; }
};

PipelineConfig base_config() {
  PipelineConfig config;
  config.kafka = {{"bootstrap.servers", "127.0.0.1:9092"}};
  StreamConfig stream;
  stream.group = "g";
  stream.requests_topic = "req";
  stream.responses_topic = "resp";
  stream.dlq_topic = "dlq";
  config.streams.push_back(stream);
  ProviderConfig provider;
  provider.name = "mock";
  provider.base_url = "http://127.0.0.1:9/v1";
  provider.api_key = "sk-secret-key";
  config.providers.push_back(provider);
  config.default_provider = "mock";
  config.retry.max_attempts = 4;
  config.retry.initial_backoff = 400ms;
  config.retry.request_timeout = 10s;
  return config;
}

std::string chat(bool stream = false, const std::string& extra = "") {
  return R"({"request_id":"r1","metadata":{"m":1},"path":"/v1/chat/completions","body":{"model":"gpt-x",)" +
         std::string(stream ? R"("stream":true,)" : "") + R"("messages":[{"role":"user","content":"hi"}]})" +
         extra + "}";
}

std::string completion_body(const std::string& text) {
  return json{{"id", "c1"},
              {"object", "chat.completion"},
              {"model", "gpt-x-2024"},
              {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}}}},
              {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}}}
      .dump();
}

ProviderCall answer(long status, std::string body = {}, HeaderList headers = {}) {
  ProviderCall call;
  call.status = status;
  call.body = std::move(body);
  call.headers = std::move(headers);
  call.latency = 1000us;
  return call;
}

ProviderCall transport_failure(policy::TransportError error, std::string message) {
  ProviderCall call;
  call.error = error;
  call.transport_message = std::move(message);
  return call;
}

/// One stream's environment and a machine under test, with helpers to read its actions.
class Fsm : public ::testing::Test {
 protected:
  void make(std::string value, std::optional<std::string> key = std::nullopt, HeaderList extra = {}) {
    retry_ = std::make_unique<policy::RetryPolicy>(config_.retry);
    secrets_ = config_.secrets();
    env_ = std::make_unique<MachineEnv>(
        MachineEnv{config_, config_.streams.front(), *retry_, rng_, clock_, metrics_, secrets_});
    ConsumedRecord record;
    record.origin = {"req", 3, 41};
    record.key = std::move(key);
    record.value = std::move(value);
    record.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, {"h", "v"}};
    record.headers.insert(record.headers.end(), extra.begin(), extra.end());
    record.timestamp_ms = clock_.system_ms();
    machine_ = std::make_unique<RequestMachine>(*env_, std::move(record));
  }

  /// The names of the actions of the last event, in order.
  std::vector<std::string> kinds() const {
    static constexpr const char* kNames[] = {
        "Claim",        "DedupeClaim",     "DedupeLookUp",    "DedupeTakeOver", "Admit",
        "CallProvider", "ReportToBreaker", "RefundAdmission", "SettleTokens",   "WaitUntil",
        "StoreResult",  "Produce",         "Finish",          "Abandon",        "AbortCall"};
    std::vector<std::string> out;
    for (const auto& a : out_) out.emplace_back(kNames[a.index()]);
    return out;
  }
  template <class A>
  A& only() {
    A* found = nullptr;
    for (auto& a : out_) {
      if (auto* p = std::get_if<A>(&a)) {
        EXPECT_EQ(found, nullptr) << "more than one";
        found = p;
      }
    }
    if (found == nullptr) throw std::runtime_error("no such action in " + ::testing::PrintToString(kinds()));
    return *found;
  }
  std::vector<Output> produced() const {
    std::vector<Output> outputs;
    for (const auto& a : out_) {
      if (const auto* p = std::get_if<action::Produce>(&a)) outputs.push_back(p->output);
    }
    return outputs;
  }
  template <class Fn>
  void event(Fn&& fn) {
    out_.clear();
    fn(*machine_, out_);
  }

  // The common paths, each ending with the actions of its last event in out_.
  void start() {
    event([](RequestMachine& m, Actions& out) { m.start(out); });
  }
  void claimed() {
    event([](RequestMachine& m, Actions& out) { m.on_claim({StoreOutcome::kStored, std::nullopt}, out); });
  }
  void admitted() {
    event([](RequestMachine& m, Actions& out) { m.on_admission(0ms, false, out); });
  }
  void answered(ProviderCall call) {
    event([&call](RequestMachine& m, Actions& out) { m.on_provider_answer(std::move(call), out); });
  }
  void stored() {
    event([](RequestMachine& m, Actions& out) { m.on_store({StoreOutcome::kStored, std::nullopt}, out); });
  }
  void timer() {
    event([](RequestMachine& m, Actions& out) { m.on_timer(out); });
  }
  void delivered() {
    event([](RequestMachine& m, Actions& out) { m.on_delivered(out); });
  }
  void data(std::string_view bytes) {
    event([bytes](RequestMachine& m, Actions& out) { m.on_provider_data(bytes, out); });
  }
  void revoked() {
    event([](RequestMachine& m, Actions& out) { m.on_revoked(out); });
  }
  /// Started, claimed and admitted: the first provider call is out.
  void to_calling(std::string value = chat()) {
    make(std::move(value));
    start();
    claimed();
    admitted();
  }
  std::uint64_t finished(const std::string& outcome) const {
    const auto snapshot = metrics_.snapshot();
    std::uint64_t n = 0;
    for (const auto& row : snapshot["requests"]) {
      if (row["outcome"] == outcome) n += row["count"].get<std::uint64_t>();
    }
    return n;
  }

  PipelineConfig config_ = base_config();
  ManualClock clock_;
  HalfRandom rng_;
  metrics::PipelineMetrics metrics_;
  std::vector<std::string> secrets_;
  std::unique_ptr<policy::RetryPolicy> retry_;
  std::unique_ptr<MachineEnv> env_;
  std::unique_ptr<RequestMachine> machine_;
  Actions out_;
};

// ---------------------------------------------------------------------------------------------
// Receipt and claim

TEST_F(Fsm, StartClaimsThePendingRecord) {
  make(chat());
  EXPECT_EQ(machine_->state(), RequestState::kNew);
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Claim"});
  const auto& pending = only<action::Claim>().pending;
  EXPECT_EQ(pending.status, format::ResultStatus::kPending);
  EXPECT_EQ(pending.request_id, "r1");
  EXPECT_EQ(pending.provider, "mock");
  EXPECT_EQ(pending.model, "gpt-x");
  EXPECT_FALSE(pending.prompt_hash.value_or("").empty());
  EXPECT_EQ(machine_->state(), RequestState::kClaiming);
}

TEST_F(Fsm, ClaimWonAdmitsThenCalls) {
  make(chat());
  start();
  claimed();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
  EXPECT_EQ(machine_->state(), RequestState::kAdmitting);
  admitted();
  EXPECT_EQ(kinds(), std::vector<std::string>{"CallProvider"});
  auto& call = only<action::CallProvider>();
  EXPECT_EQ(call.attempt, 1);
  ASSERT_TRUE(call.http.has_value());
  EXPECT_EQ(call.http->url, "http://127.0.0.1:9/v1/chat/completions");
  // The attempt is bounded by the request's deadline.
  EXPECT_LE(call.http->timeouts.total, 10s);
  EXPECT_EQ(machine_->state(), RequestState::kCalling);
}

TEST_F(Fsm, ClaimLostToADoneRecordRepublishesIt) {
  make(chat());
  start();
  format::ResultRecord done;
  done.status = format::ResultStatus::kDone;
  done.request_id = "r1";
  done.provider = "mock";
  done.model = "gpt-x";
  done.status_code = 200;
  done.body = {{"answer", 42}};
  done.attempts = 2;
  event([&done](RequestMachine& m, Actions& out) { m.on_claim({StoreOutcome::kAlreadyDone, done}, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});
  const auto outputs = produced();
  EXPECT_EQ(outputs[0].topic, "resp");
  EXPECT_EQ(outputs[0].key, "r1");
  const auto response = json::parse(outputs[0].value);
  EXPECT_EQ(response["body"]["answer"], 42);
  EXPECT_EQ(response["attempts"], 2);
  EXPECT_EQ(response["metadata"]["m"], 1);
  EXPECT_EQ(finished("replayed"), 1U);
  EXPECT_EQ(machine_->state(), RequestState::kPublishing);
  delivered();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
  EXPECT_EQ(machine_->state(), RequestState::kFinished);
}

TEST_F(Fsm, ADoneRecordCountsOnlyForTheSamePromptHash) {
  // The store's check: a done record of another prompt (a replay under a new template version) is
  // replaced, so the machine sees the claim as won and calls the provider.
  const std::string record = R"({"status":"done","request_id":"r1","prompt_hash":"aaa"})";
  EXPECT_TRUE(is_done_record(record, "aaa"));
  EXPECT_FALSE(is_done_record(record, "bbb"));
  EXPECT_TRUE(is_done_record(record, ""));
  EXPECT_FALSE(is_done_record(R"({"status":"pending","prompt_hash":"aaa"})", "aaa"));
  EXPECT_FALSE(is_done_record(R"({"status":"error","prompt_hash":"aaa"})", "aaa"));
  // A cancelled request is final like a done one: a redelivery does not run it again.
  EXPECT_TRUE(is_done_record(R"({"status":"cancelled","request_id":"r1","prompt_hash":"aaa"})", "aaa"));
  EXPECT_FALSE(is_done_record(R"({"status":"cancelled","request_id":"r1","prompt_hash":"aaa"})", "bbb"));
}

TEST_F(Fsm, ClaimWithRedisDownWaitsAndClaimsAgain) {
  make(chat());
  start();
  event([](RequestMachine& m, Actions& out) { m.on_claim({}, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"WaitUntil"});
  EXPECT_EQ(only<action::WaitUntil>().at, clock_.steady() + 200ms);
  clock_.advance(200ms);
  timer();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Claim"});
}

TEST_F(Fsm, UnknownProviderFailsWithoutACall) {
  make(chat(false, R"(,"provider":"nope")"));
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.status, format::ResultStatus::kError);
  EXPECT_EQ(record.status_code, 400);
  EXPECT_EQ(record.error, "unknown provider \"nope\"");
  EXPECT_EQ(record.provider, "nope");
  stored();
  EXPECT_EQ(kinds(), (std::vector<std::string>{"Produce", "Produce"}));
  const auto outputs = produced();
  EXPECT_EQ(outputs[1].topic, "dlq");
  EXPECT_EQ(*find_header(outputs[1].headers, "x-error-class"), "non_retryable");
  EXPECT_EQ(*find_header(outputs[1].headers, "x-provider"), "nope");
}

TEST_F(Fsm, LateAnswersAreIgnored) {
  to_calling();
  event([](RequestMachine& m, Actions& out) { m.on_claim({StoreOutcome::kStored, std::nullopt}, out); });
  EXPECT_TRUE(out_.empty());
  event([](RequestMachine& m, Actions& out) { m.on_admission(0ms, false, out); });
  EXPECT_TRUE(out_.empty());
  timer();
  EXPECT_TRUE(out_.empty());
  delivered();
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(machine_->state(), RequestState::kCalling);
}

// ---------------------------------------------------------------------------------------------
// Success and publication

TEST_F(Fsm, SuccessStoresThenPublishesThenFinishes) {
  to_calling();
  clock_.advance(30ms);
  answered(answer(200, completion_body("hello")));
  EXPECT_EQ(kinds(), (std::vector<std::string>{"ReportToBreaker", "SettleTokens", "StoreResult"}));
  EXPECT_EQ(only<action::ReportToBreaker>().report, BreakerReport::kClassified);
  EXPECT_EQ(only<action::SettleTokens>().total_tokens, 5);
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.status, format::ResultStatus::kDone);
  EXPECT_EQ(record.output, "hello");
  EXPECT_EQ(record.attempts, 1);
  EXPECT_DOUBLE_EQ(*record.latency_ms, 30.0);
  EXPECT_EQ(json::parse(record.body_text)["id"], "c1");  // the provider's bytes, not re-serialized
  EXPECT_EQ(machine_->state(), RequestState::kStoring);
  stored();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});
  const auto outputs = produced();
  const auto response = json::parse(outputs[0].value);
  EXPECT_EQ(response["status_code"], 200);
  EXPECT_EQ(response["body"]["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(*find_header(outputs[0].headers, "request_message_id"), "r1");
  EXPECT_EQ(*find_header(outputs[0].headers, "model_version"), "gpt-x-2024");  // the provider's model
  EXPECT_NE(find_header(outputs[0].headers, "traceparent"), nullptr);
  EXPECT_EQ(finished("ok"), 1U);
  delivered();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
}

TEST_F(Fsm, AnEarlierOwnersDoneResultWinsOverThisOutcome) {
  // Redelivery after a crash: the earlier owner stored done while this attempt ran.
  to_calling();
  answered(answer(500, R"({"error":{"message":"boom"}})"));
  clock_.advance(std::chrono::duration_cast<milliseconds>(only<action::WaitUntil>().at - clock_.steady()));
  timer();
  admitted();
  answered(answer(400, R"({"error":{"message":"bad"}})"));
  ASSERT_EQ(only<action::StoreResult>().record->status, format::ResultStatus::kError);
  format::ResultRecord done;
  done.status = format::ResultStatus::kDone;
  done.request_id = "r1";
  done.status_code = 200;
  done.body = {{"earlier", true}};
  event([&done](RequestMachine& m, Actions& out) { m.on_store({StoreOutcome::kAlreadyDone, done}, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});  // no dead letter
  EXPECT_EQ(json::parse(produced()[0].value)["body"]["earlier"], true);
}

TEST_F(Fsm, StoreUnavailableAtTheEndIsRetried) {
  to_calling();
  answered(answer(200, completion_body("x")));
  event([](RequestMachine& m, Actions& out) { m.on_store({}, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"WaitUntil"});
  EXPECT_EQ(machine_->state(), RequestState::kStoring);
  timer();
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
  stored();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});
}

TEST_F(Fsm, SampledSuccessesAlsoGoToReview) {
  config_.streams[0].human_review = HumanReviewConfig{"review", 1.0};
  to_calling();
  answered(answer(200, completion_body("x")));
  stored();
  const auto outputs = produced();
  ASSERT_EQ(outputs.size(), 2U);
  EXPECT_EQ(outputs[0].topic, "review");
  EXPECT_EQ(outputs[0].value, outputs[1].value);
  EXPECT_EQ(outputs[1].topic, "resp");
  delivered();
  EXPECT_TRUE(out_.empty());  // one of two
  delivered();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
}

TEST_F(Fsm, UnsampledSuccessesDoNotGoToReview) {
  config_.streams[0].human_review = HumanReviewConfig{"review", 0.0};
  to_calling();
  answered(answer(200, completion_body("x")));
  stored();
  ASSERT_EQ(produced().size(), 1U);
  EXPECT_EQ(produced()[0].topic, "resp");
}

TEST_F(Fsm, SchemaViolationFailsWith422AndTheRawOutput) {
  config_.streams[0].output_schema = std::make_shared<const features::JsonSchema>(
      features::JsonSchema::compile(json{{"type", "object"}, {"required", {"label"}}}));
  to_calling();
  answered(answer(200, completion_body(R"({"other":1})")));
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.status, format::ResultStatus::kError);
  EXPECT_EQ(record.status_code, 422);
  stored();
  const auto outputs = produced();
  ASSERT_EQ(outputs.size(), 2U);
  EXPECT_EQ(json::parse(outputs[0].value)["body"]["error"]["type"], "schema_violation");
  EXPECT_EQ(*find_header(outputs[1].headers, "x-error-class"), "schema_violation");
  EXPECT_EQ(*find_header(outputs[1].headers, "x-model-output"), R"({"other":1})");
  EXPECT_EQ(finished("schema_violation"), 1U);
}

TEST_F(Fsm, PromptTemplateVersionTagsEveryOutput) {
  config_.streams[0].prompt = std::make_shared<const features::PromptTemplate>(
      features::PromptTemplate::compile("v2", "Be terse.", "Summarize: {{input}}"));
  to_calling();
  answered(answer(200, completion_body("x")));
  EXPECT_EQ(only<action::StoreResult>().record->prompt_version, "v2");
  stored();
  const auto outputs = produced();
  EXPECT_EQ(*find_header(outputs[0].headers, "prompt_version"), "v2");
  EXPECT_EQ(json::parse(outputs[0].value)["prompt_version"], "v2");
}

// ---------------------------------------------------------------------------------------------
// Retries, deadlines, admission

TEST_F(Fsm, RetryAfterSetsTheDelay) {
  to_calling();
  answered(answer(429, "{}", {{"Retry-After", "2"}}));
  EXPECT_EQ(kinds(), (std::vector<std::string>{"ReportToBreaker", "RefundAdmission", "WaitUntil"}));
  EXPECT_EQ(only<action::ReportToBreaker>().report, BreakerReport::kSuccess);  // up, pacing us
  EXPECT_EQ(only<action::WaitUntil>().at, clock_.steady() + 2s);
  EXPECT_EQ(machine_->state(), RequestState::kBackingOff);
  clock_.advance(2s);
  timer();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
  admitted();
  EXPECT_EQ(only<action::CallProvider>().attempt, 2);
}

TEST_F(Fsm, BackoffWithoutAHintIsJittered) {
  to_calling();
  answered(answer(503));
  // Full jitter over [0, 400 ms].
  const auto at = only<action::WaitUntil>().at;
  EXPECT_GE(at, clock_.steady());
  EXPECT_LE(at, clock_.steady() + 400ms);
  EXPECT_EQ(only<action::ReportToBreaker>().report, BreakerReport::kClassified);
}

TEST_F(Fsm, RetriesExhaustedGoToTheDeadLetterTopic) {
  to_calling();
  for (int attempt = 1; attempt < config_.retry.max_attempts; ++attempt) {
    answered(answer(503));
    clock_.advance(std::chrono::duration_cast<milliseconds>(only<action::WaitUntil>().at - clock_.steady()));
    timer();
    admitted();
  }
  answered(answer(503, R"({"error":{"message":"overloaded"}})"));
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.attempts, 4);
  EXPECT_NE(record.error->find("overloaded"), std::string::npos);
  stored();
  const auto outputs = produced();
  EXPECT_EQ(*find_header(outputs[1].headers, "x-error-class"), "retries_exhausted");
  EXPECT_EQ(*find_header(outputs[1].headers, "x-attempts"), "4");
  EXPECT_EQ(outputs[1].value, chat());  // the original record, byte for byte
  EXPECT_EQ(*find_header(outputs[1].headers, "h"), "v");
}

TEST_F(Fsm, DeadlineReachedMidRetryFailsAsTimeout) {
  to_calling();
  answered(answer(503));
  clock_.advance(11s);  // past the 10 s request timeout while backing off
  timer();
  admitted();
  answered(answer(503));
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.status_code, 503);
  stored();
  EXPECT_EQ(*find_header(produced()[1].headers, "x-error-class"), "timeout");
}

// Deadlines (docs/guarantees.md, "Deadlines"): expired before the call, not sent; reached during
// retries, no more attempts. Both end as class `expired`, status 504.
class FsmDeadline : public Fsm {
 protected:
  std::string at(milliseconds from_now) const {
    return std::to_string(clock_.system_ms() + from_now.count());
  }
  void expect_expired(const std::string& why) {
    EXPECT_EQ(kinds().back(), "StoreResult");
    const auto& record = *only<action::StoreResult>().record;
    EXPECT_EQ(record.status, format::ResultStatus::kError);
    EXPECT_EQ(record.status_code, 504);
    EXPECT_EQ(record.error, "deadline exceeded: " + why);
    stored();
    const auto outputs = produced();
    ASSERT_EQ(outputs.size(), 2U);
    EXPECT_EQ(json::parse(outputs[0].value)["status_code"], 504);
    EXPECT_EQ(outputs[1].topic, "dlq");
    EXPECT_EQ(*find_header(outputs[1].headers, "x-error-class"), "expired");
    EXPECT_EQ(finished("expired"), 1U);
  }
};

TEST_F(FsmDeadline, DeadlineMsAlreadyPastIsNotSent) {
  make(chat(false, R"(,"deadline_ms":)" + at(-250ms)));
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});  // no claim, no admission, no call
  expect_expired("the deadline passed 250 ms before the request was taken up");
  EXPECT_EQ(metrics_.snapshot()["latency"]["queue"]["count"], 0);
}

TEST_F(FsmDeadline, TimeoutMsCountsFromTheRecordTimestamp) {
  make(chat(false, R"(,"timeout_ms":500)"));
  clock_.advance(499ms);  // queued in Kafka
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Claim"});

  make(chat(false, R"(,"timeout_ms":500)"));
  clock_.advance(500ms);
  start();
  expect_expired("the deadline passed 0 ms before the request was taken up");
}

TEST_F(FsmDeadline, HeaderDeadlineAndTheEarliestOfAllWins) {
  make(chat(false, R"(,"deadline_ms":)" + at(60s)), std::nullopt, {{"x-deadline-ms", at(-1ms)}});
  start();
  expect_expired("the deadline passed 1 ms before the request was taken up");

  make(chat(false, R"(,"deadline_ms":)" + at(60s) + R"(,"timeout_ms":10)"), std::nullopt,
       {{"X-Deadline-Ms", at(30s)}});
  clock_.advance(20ms);
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
  EXPECT_EQ(only<action::StoreResult>().record->status_code, 504);
}

TEST_F(FsmDeadline, ABadHeaderIsAClearErrorNotAStall) {
  for (const std::string bad : {"soon", "-5", "", "12.5", "99999999999999999999"}) {
    make(chat(), std::nullopt, {{"x-deadline-ms", bad}});
    start();
    ASSERT_EQ(kinds(), std::vector<std::string>{"StoreResult"}) << bad;
    const auto& record = *only<action::StoreResult>().record;
    EXPECT_EQ(record.status_code, 400);
    EXPECT_EQ(record.error,
              "header x-deadline-ms must be a non-negative integer of milliseconds since the "
              "epoch (got \"" +
                  bad + "\")");
    stored();
    EXPECT_EQ(*find_header(produced()[1].headers, "x-error-class"), "poison");
  }
}

TEST_F(FsmDeadline, TheStreamDefaultAppliesOnlyWithoutTheRequestsOwn) {
  config_.streams.front().deadline = 1s;
  make(chat());
  clock_.advance(1s);
  start();
  expect_expired("the deadline passed 0 ms before the request was taken up");

  make(chat(false, R"(,"deadline_ms":)" + at(1min)));
  clock_.advance(5s);
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Claim"});
}

TEST_F(FsmDeadline, ARetryThatWouldStartAfterTheDeadlineIsNotMade) {
  make(chat(false, R"(,"deadline_ms":)" + at(3s)));
  start();
  claimed();
  admitted();
  answered(answer(429, "{}", {{"Retry-After", "5"}}));
  EXPECT_EQ(kinds(), (std::vector<std::string>{"ReportToBreaker", "StoreResult"}));
  expect_expired("it falls before attempt 2 could start, after 1 attempt (last: http_429)");
}

TEST_F(FsmDeadline, ABackoffThatEndsAfterTheDeadlineEndsTheRequest) {
  make(chat(false, R"(,"deadline_ms":)" + at(300ms)));
  start();
  claimed();
  admitted();
  const auto taken_up = clock_.steady();
  answered(answer(503));  // full-jitter backoff within [0, 400 ms]: this draw waits less than 300
  const auto wake = only<action::WaitUntil>().at;
  ASSERT_LT(wake, taken_up + 300ms);
  clock_.advance(std::chrono::duration_cast<milliseconds>(wake - clock_.steady()));
  timer();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
  clock_.advance(
      std::chrono::duration_cast<milliseconds>(taken_up + 300ms - clock_.steady()));  // admitted late
  admitted();
  expect_expired("it passed before attempt 2, after 1 attempt");
}

TEST_F(FsmDeadline, AnAdmissionWaitPastTheDeadlineEndsTheRequest) {
  make(chat(false, R"(,"deadline_ms":)" + at(1s)));
  start();
  claimed();
  event([](RequestMachine& m, Actions& out) { m.on_admission(999ms, true, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"WaitUntil"});
  timer();
  event([](RequestMachine& m, Actions& out) { m.on_admission(2s, true, out); });
  expect_expired("it falls within a wait of 2000 ms for the rate limits");
}

TEST_F(FsmDeadline, EachAttemptIsBoundedByTheDeadlineAndQueueTimeIsMeasured) {
  make(chat(false, R"(,"deadline_ms":)" + at(3s)));
  clock_.advance(1200ms);  // queued
  start();
  claimed();
  admitted();
  const auto& call = only<action::CallProvider>();
  ASSERT_TRUE(call.http);
  EXPECT_EQ(call.http->timeouts.total, 1800ms);  // not the 10 s request timeout
  const auto queue = metrics_.snapshot()["latency"]["queue"];
  EXPECT_EQ(queue["count"], 1);
  EXPECT_NEAR(queue["max_ms"].get<double>(), 1200.0, 30.0);
  EXPECT_NE(metrics_.prometheus().find("kafka_llm_queue_seconds_count 1\n"), std::string::npos);
}

TEST_F(Fsm, TransportTimeoutWithoutStatusIs504) {
  config_.retry.max_attempts = 1;
  to_calling();
  answered(transport_failure(policy::TransportError::kTimeoutTotal, "timed out"));
  EXPECT_EQ(only<action::StoreResult>().record->status_code, 502);  // attempts exhausted, not the deadline
}

TEST_F(Fsm, CircuitOpenWaitsAndAsksAgain) {
  make(chat());
  start();
  claimed();
  event([](RequestMachine& m, Actions& out) { m.on_admission(1500ms, false, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"WaitUntil"});
  EXPECT_EQ(only<action::WaitUntil>().at, clock_.steady() + 1500ms);
  EXPECT_EQ(machine_->state(), RequestState::kAwaitingAdmission);
  EXPECT_EQ(metrics_.snapshot()["rate_limited"], 0);
  timer();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
}

TEST_F(Fsm, RateLimitedWaitsAreCounted) {
  make(chat());
  start();
  claimed();
  event([](RequestMachine& m, Actions& out) { m.on_admission(250ms, true, out); });
  EXPECT_EQ(metrics_.snapshot()["rate_limited"], 1);
}

TEST_F(Fsm, MalformedSuccessIsRetriedOnceThenFails) {
  to_calling();
  answered(answer(200, "not json"));
  EXPECT_EQ(kinds().back(), "WaitUntil");
  timer();
  admitted();
  answered(answer(200, "[1,2]"));
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_NE(record.error->find("not a JSON object"), std::string::npos);
}

TEST_F(Fsm, EmbeddedRaiseFailsAtOnce) {
  config_.providers[0].kind = ProviderKind::kEmbedded;
  to_calling();
  EXPECT_FALSE(only<action::CallProvider>().http.has_value());
  ProviderCall call;
  call.status = 500;
  call.transport_message = "ValueError: nope";
  call.final_error = true;
  answered(std::move(call));
  EXPECT_EQ(only<action::ReportToBreaker>().report, BreakerReport::kFailure);
  EXPECT_EQ(only<action::StoreResult>().record->error, "ValueError: nope");
}

TEST_F(Fsm, SecretsNeverReachOutputs) {
  config_.retry.max_attempts = 1;
  to_calling();
  answered(answer(400, R"({"error":{"message":"bad key sk-secret-key"}})"));
  EXPECT_EQ(only<action::StoreResult>().record->error->find("sk-secret-key"), std::string::npos);
  stored();
  for (const auto& output : produced()) {
    for (const auto& [name, value] : output.headers)
      EXPECT_EQ(value.find("sk-secret-key"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Dedupe

class FsmDedupe : public Fsm {
 protected:
  void SetUp() override { config_.streams[0].dedupe_window = 60s; }
  void to_holder(const std::string& holder = "r0") {
    make(chat());
    start();
    claimed();
    EXPECT_EQ(kinds(), std::vector<std::string>{"DedupeClaim"});
    EXPECT_EQ(only<action::DedupeClaim>().window, 60s);
    event([&holder](RequestMachine& m, Actions& out) { m.on_dedupe_holder(true, holder, out); });
    EXPECT_EQ(kinds(), std::vector<std::string>{"DedupeLookUp"});
    EXPECT_EQ(only<action::DedupeLookUp>().holder, holder);
  }
  void earlier(std::optional<format::ResultRecord> record) {
    event([&record](RequestMachine& m, Actions& out) { m.on_dedupe_result(true, std::move(record), out); });
  }
  static format::ResultRecord record(format::ResultStatus status) {
    format::ResultRecord r;
    r.status = status;
    r.request_id = "r0";
    r.provider = "mock";
    r.model = "gpt-x";
    r.output = "shared";
    r.body = {{"from", "r0"}};
    r.attempts = 1;
    return r;
  }
};

TEST_F(FsmDedupe, FirstOfItsPromptCalls) {
  make(chat());
  start();
  claimed();
  event([](RequestMachine& m, Actions& out) { m.on_dedupe_holder(true, std::nullopt, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
}

TEST_F(FsmDedupe, RedisDownMeansCall) {
  make(chat());
  start();
  claimed();
  event([](RequestMachine& m, Actions& out) { m.on_dedupe_holder(false, std::nullopt, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
}

TEST_F(FsmDedupe, ServedFromTheEarlierResult) {
  to_holder();
  earlier(record(format::ResultStatus::kDone));
  const auto& stored_record = *only<action::StoreResult>().record;
  EXPECT_EQ(stored_record.request_id, "r1");
  EXPECT_EQ(stored_record.output, "shared");
  EXPECT_EQ(stored_record.attempts, 0);
  EXPECT_EQ(finished("deduplicated"), 1U);
  EXPECT_EQ(metrics_.snapshot()["cache_hits"], 1);
  stored();
  const auto outputs = produced();
  EXPECT_EQ(*find_header(outputs[0].headers, "x-dedupe-of"), "r0");
  EXPECT_EQ(json::parse(outputs[0].value)["body"]["from"], "r0");
}

TEST_F(FsmDedupe, AnEarlierErrorIsTakenOver) {
  to_holder();
  earlier(record(format::ResultStatus::kError));
  EXPECT_EQ(kinds(), (std::vector<std::string>{"DedupeTakeOver", "Admit"}));
}

TEST_F(FsmDedupe, AVanishedHolderIsTakenOver) {
  to_holder();
  earlier(std::nullopt);
  EXPECT_EQ(kinds(), (std::vector<std::string>{"DedupeTakeOver", "Admit"}));
}

TEST_F(FsmDedupe, PendingHolderIsPolledThenTakenOverAtTheDeadline) {
  to_holder();
  earlier(record(format::ResultStatus::kPending));
  EXPECT_EQ(kinds(), std::vector<std::string>{"WaitUntil"});
  EXPECT_EQ(only<action::WaitUntil>().at, clock_.steady() + 25ms);
  EXPECT_EQ(machine_->state(), RequestState::kAwaitingEarlier);
  timer();
  EXPECT_EQ(kinds(), std::vector<std::string>{"DedupeLookUp"});
  clock_.advance(9990ms);  // the next poll would end past the 10 s deadline
  earlier(record(format::ResultStatus::kPending));
  EXPECT_EQ(kinds(), (std::vector<std::string>{"DedupeTakeOver", "Admit"}));
}

TEST_F(FsmDedupe, StreamedRequestsAreNeverDeduplicated) {
  make(chat(true));
  start();
  claimed();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
}

// ---------------------------------------------------------------------------------------------
// Streams

std::string sse_chunk(const std::string& content, const std::string& finish = "null") {
  return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + content +
         "\"},\"finish_reason\":" + finish + "}]}\n\n";
}

TEST_F(Fsm, StreamChunksBecomeFramesThenAFinalFrame) {
  to_calling(chat(true));
  data(sse_chunk("Hel"));
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});
  auto frame = json::parse(produced()[0].value);
  EXPECT_EQ(frame["seq"], 0);
  EXPECT_EQ(frame["chunk"]["choices"][0]["delta"]["content"], "Hel");
  data(sse_chunk("lo", "\"stop\"") + "data: [DONE]\n\n");
  EXPECT_EQ(json::parse(produced()[0].value)["seq"], 1);
  EXPECT_EQ(machine_->chunks(), 2U);
  answered(answer(200));
  EXPECT_EQ(only<action::StoreResult>().record->output, "Hello");
  stored();
  const auto final_frame = json::parse(produced()[0].value);
  EXPECT_EQ(final_frame["done"], true);
  EXPECT_EQ(final_frame["seq"], 2);
  EXPECT_EQ(final_frame["finish_reason"], "stop");
  EXPECT_EQ(machine_->outputs_pending(), 3);
  delivered();
  delivered();
  delivered();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
}

TEST_F(Fsm, AStreamThatFailsMidwayEndsWithAnErrorFrame) {
  to_calling(chat(true));
  data(sse_chunk("a") + sse_chunk("b"));
  answered(transport_failure(policy::TransportError::kReset, "connection reset"));
  EXPECT_EQ(only<action::ReportToBreaker>().report, BreakerReport::kFailure);
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.status_code, 502);
  EXPECT_EQ(record.error, "stream failed after 2 chunks: connection reset");
  stored();
  const auto outputs = produced();
  ASSERT_EQ(outputs.size(), 2U);
  const auto frame = json::parse(outputs[0].value);
  EXPECT_EQ(frame["done"], true);
  EXPECT_EQ(frame["seq"], 2);
  EXPECT_TRUE(frame.contains("error"));
  EXPECT_EQ(outputs[1].topic, "dlq");
}

TEST_F(Fsm, AStreamThatFailsBeforeItsFirstChunkIsRetried) {
  to_calling(chat(true));
  answered(answer(503, "upstream busy"));
  EXPECT_EQ(kinds().back(), "WaitUntil");
  timer();
  admitted();
  data(sse_chunk("ok", "\"stop\"") + "data: [DONE]\n\n");
  answered(answer(200));
  EXPECT_EQ(only<action::StoreResult>().record->output, "ok");
}

TEST_F(Fsm, ANonStreamAnswerToAStreamedRequestIsMalformed) {
  config_.retry.max_attempts = 1;
  to_calling(chat(true));
  data(R"({"not":"an event stream"})");
  answered(answer(200));
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_NE(record.error->find("not an event stream"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Poison and revocation

TEST_F(Fsm, PoisonWithoutIdentityGoesToTheDeadLetterTopicOnly) {
  make("{not json");
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});
  const auto outputs = produced();
  EXPECT_EQ(outputs[0].topic, "dlq");
  EXPECT_EQ(outputs[0].value, "{not json");
  EXPECT_EQ(*find_header(outputs[0].headers, "x-error-class"), "poison");
  EXPECT_EQ(*find_header(outputs[0].headers, "x-source-offset"), "41");
  EXPECT_EQ(find_header(outputs[0].headers, "x-model-version"), nullptr);
  EXPECT_EQ(metrics_.snapshot()["dlq"]["poison"], 1);
  delivered();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
}

TEST_F(Fsm, PoisonWithARequestIdIsAnsweredAndDeadLettered) {
  make(R"({"request_id":"p1","body":{"model":"m"}})");
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
  const auto& record = *only<action::StoreResult>().record;
  EXPECT_EQ(record.request_id, "p1");
  EXPECT_EQ(record.status_code, 400);
  stored();
  const auto outputs = produced();
  ASSERT_EQ(outputs.size(), 2U);
  EXPECT_EQ(json::parse(outputs[0].value)["status_code"], 400);
  EXPECT_EQ(*find_header(outputs[0].headers, "model_version"), "m");
  EXPECT_EQ(outputs[1].topic, "dlq");
}

TEST_F(Fsm, RevokedWhileWaitingIsAbandoned) {
  to_calling();
  answered(answer(503));
  revoked();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Abandon"});
  EXPECT_EQ(machine_->state(), RequestState::kAbandoned);
  timer();
  EXPECT_TRUE(out_.empty());
}

TEST_F(Fsm, RevokedBeforeTheClaimAnswersIsAbandoned) {
  make(chat());
  start();
  revoked();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Abandon"});
  claimed();
  EXPECT_TRUE(out_.empty());
}

TEST_F(Fsm, RevokedWhileCallingGoesOn) {
  to_calling();
  revoked();
  EXPECT_TRUE(out_.empty());
  answered(answer(200, completion_body("x")));
  stored();
  revoked();
  EXPECT_TRUE(out_.empty());
  delivered();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
}

// ---------------------------------------------------------------------------------------------
// Cancellation

class FsmCancel : public Fsm {
 protected:
  CancelEffect cancel(const std::string& reason = "user asked") {
    CancelEffect effect = CancelEffect::kTooLate;
    event([&](RequestMachine& m, Actions& out) { effect = m.on_cancel(reason, out); });
    return effect;
  }
  /// The cancelled record is stored, then published as a 499 response with no dead letter.
  void expect_cancelled_outputs(const std::string& reason = "user asked") {
    const auto& record = *only<action::StoreResult>().record;
    EXPECT_EQ(record.status, format::ResultStatus::kCancelled);
    EXPECT_EQ(record.status_code, 499);
    EXPECT_EQ(record.error, "cancelled: " + reason);
    stored();
    const auto outputs = produced();
    ASSERT_EQ(outputs.size(), 1U) << "a cancellation is no dead letter";
    EXPECT_EQ(outputs[0].topic, "resp");
    const auto response = json::parse(outputs[0].value);
    EXPECT_EQ(response["status_code"], 499);
    EXPECT_EQ(response["body"]["error"]["type"], "cancelled");
    EXPECT_EQ(response["body"]["error"]["code"], "cancelled");
    EXPECT_EQ(response["body"]["error"]["message"], "cancelled: " + reason);
    EXPECT_EQ(finished("cancelled"), 1U);
    delivered();
    EXPECT_EQ(kinds(), std::vector<std::string>{"Finish"});
  }
  policy::CancelRegistry registry_{std::chrono::hours(1)};
};

TEST_F(FsmCancel, ARequestCancelledWhileQueuedIsNeverSent) {
  registry_.add("r1", "client disconnected", clock_.system_ms() - 1000, clock_.system_ms());
  make(chat());
  env_->cancels = &registry_;
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});  // no claim, no admission, no call
  expect_cancelled_outputs("client disconnected");
  EXPECT_EQ(metrics_.snapshot()["cancels"]["skipped"], 1);
}

TEST_F(FsmCancel, AnotherRequestsCancellationChangesNothing) {
  registry_.add("r2", "", clock_.system_ms(), clock_.system_ms());
  make(chat());
  env_->cancels = &registry_;
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Claim"});
}

TEST_F(FsmCancel, ACancellationPastItsRetentionIsForgotten) {
  registry_.add("r1", "", clock_.system_ms(), clock_.system_ms());
  clock_.advance(std::chrono::hours(1));
  make(chat());
  env_->cancels = &registry_;
  start();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Claim"});
}

TEST_F(FsmCancel, NotStartedYetIsLeftToTheRegistry) {
  make(chat());
  EXPECT_EQ(cancel(), CancelEffect::kNotStarted);
  EXPECT_TRUE(out_.empty());
}

TEST_F(FsmCancel, WhileCallingTheCallIsAbortedAndItsLateAnswerIgnored) {
  to_calling();
  EXPECT_EQ(cancel(), CancelEffect::kAborted);
  EXPECT_EQ(kinds(), (std::vector<std::string>{"AbortCall", "StoreResult"}));
  answered(answer(200, completion_body("too late")));
  EXPECT_TRUE(out_.empty());
}

TEST_F(FsmCancel, WhileCallingTheOutputsSayCancelled) {
  to_calling();
  cancel();
  expect_cancelled_outputs();
}

TEST_F(FsmCancel, WhileBackingOffNoFurtherAttemptIsMade) {
  to_calling();
  answered(answer(429, "{}", {{"Retry-After", "2"}}));
  EXPECT_EQ(kinds().back(), "WaitUntil");
  EXPECT_EQ(cancel(), CancelEffect::kSkipped);
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
  clock_.advance(2s);
  timer();
  EXPECT_TRUE(out_.empty()) << "the backoff's timer must not start an attempt";
}

TEST_F(FsmCancel, WhileAskingForAdmissionWhatWasTakenIsGivenBack) {
  make(chat());
  start();
  claimed();
  EXPECT_EQ(kinds(), std::vector<std::string>{"Admit"});
  EXPECT_EQ(cancel(), CancelEffect::kSkipped);
  EXPECT_TRUE(out_.empty());  // the admission's answer comes first
  admitted();
  EXPECT_EQ(kinds(), (std::vector<std::string>{"RefundAdmission", "StoreResult"}));
  expect_cancelled_outputs();
}

TEST_F(FsmCancel, WhileAskingForAdmissionATurnedAwayRequestHasNothingToGiveBack) {
  make(chat());
  start();
  claimed();
  cancel();
  event([](RequestMachine& m, Actions& out) { m.on_admission(300ms, true, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
}

TEST_F(FsmCancel, WhileClaimingTheClaimsAnswerIsIgnored) {
  make(chat());
  start();
  EXPECT_EQ(cancel(), CancelEffect::kSkipped);
  EXPECT_EQ(kinds(), std::vector<std::string>{"StoreResult"});
  claimed();
  EXPECT_TRUE(out_.empty());
}

TEST_F(FsmCancel, ADoneRequestStaysDone) {
  // The store found a done record (an earlier run finished it): that result is what is published.
  make(chat());
  start();
  cancel();
  format::ResultRecord done;
  done.status = format::ResultStatus::kDone;
  done.request_id = "r1";
  done.status_code = 200;
  done.body = json::parse(completion_body("earlier"));
  event([&done](RequestMachine& m, Actions& out) { m.on_store({StoreOutcome::kAlreadyDone, done}, out); });
  EXPECT_EQ(json::parse(produced()[0].value)["status_code"], 200);
}

TEST_F(FsmCancel, OnceTheOutcomeIsDecidedItIsTooLate) {
  to_calling();
  answered(answer(200, completion_body("x")));
  EXPECT_EQ(cancel(), CancelEffect::kTooLate);
  EXPECT_TRUE(out_.empty());
  stored();
  EXPECT_EQ(cancel(), CancelEffect::kTooLate);
  delivered();
  EXPECT_EQ(cancel(), CancelEffect::kTooLate);
  EXPECT_EQ(finished("ok"), 1U);
  EXPECT_EQ(finished("cancelled"), 0U);
}

TEST_F(FsmCancel, AStreamEndsWithAFinalFrameSayingCancelled) {
  to_calling(chat(true));
  data(sse_chunk("Hel"));
  EXPECT_EQ(cancel("client disconnected"), CancelEffect::kAborted);
  EXPECT_EQ(kinds(), (std::vector<std::string>{"AbortCall", "StoreResult"}));
  data(sse_chunk("lo"));  // bytes already on their way
  EXPECT_TRUE(out_.empty());
  stored();
  const auto outputs = produced();
  ASSERT_EQ(outputs.size(), 1U);
  const auto frame = json::parse(outputs[0].value);
  EXPECT_EQ(frame["done"], true);
  EXPECT_EQ(frame["seq"], 1);
  EXPECT_EQ(frame["status_code"], 499);
  EXPECT_EQ(frame["finish_reason"], "cancelled");
  EXPECT_EQ(frame["error"]["message"], "cancelled: client disconnected");
}

TEST_F(FsmCancel, ARedeliveredCancelledRequestIsNotRunAgain) {
  make(chat());
  start();
  format::ResultRecord cancelled;
  cancelled.status = format::ResultStatus::kCancelled;
  cancelled.request_id = "r1";
  cancelled.status_code = 499;
  cancelled.error = "cancelled: user asked";
  event([&](RequestMachine& m, Actions& out) { m.on_claim({StoreOutcome::kAlreadyDone, cancelled}, out); });
  EXPECT_EQ(kinds(), std::vector<std::string>{"Produce"});
  EXPECT_EQ(json::parse(produced()[0].value)["status_code"], 499);
  EXPECT_EQ(finished("cancelled"), 1U);
  EXPECT_EQ(finished("replayed"), 0U);
}

TEST_F(FsmCancel, TheReasonIsCutAndCarriesNoSecret) {
  to_calling();
  cancel("because sk-secret-key " + std::string(500, 'x'));
  const auto& error = *only<action::StoreResult>().record->error;
  EXPECT_EQ(error.find("sk-secret-key"), std::string::npos);
  EXPECT_LE(error.size(), 230U);
}

TEST_F(FsmCancel, WithoutAReasonTheMessageIsPlain) {
  to_calling();
  cancel("");
  EXPECT_EQ(*only<action::StoreResult>().record->error, "cancelled");
}

TEST(CancelEffect, EveryEffectHasAName) {
  for (int e = 0; e <= static_cast<int>(CancelEffect::kTooLate); ++e) {
    EXPECT_NE(to_string(static_cast<CancelEffect>(e)), "unknown");
  }
}

TEST(RequestState, EveryStateHasAName) {
  for (int s = 0; s <= static_cast<int>(RequestState::kAbandoned); ++s) {
    EXPECT_NE(to_string(static_cast<RequestState>(s)), "unknown");
  }
}

}  // namespace
}  // namespace kafka_llm::pipeline
