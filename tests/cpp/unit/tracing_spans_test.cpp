// Worker tracing without sockets: W3C trace context, sampling, the spans a request's facts make
// (driven through the request state machine on a manual clock) and their OTLP JSON encoding.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/pipeline/request_fsm.hpp"
#include "kafka_llm/pipeline/request_trace.hpp"
#include "kafka_llm/tracing/otlp_json.hpp"
#include "kafka_llm/tracing/span.hpp"

namespace kafka_llm {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using pipeline::RequestMachine;
using tracing::SpanKind;
using tracing::StatusCode;

constexpr const char* kApiTrace = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kApiSpan = "b7ad6b7169203331";
constexpr std::int64_t kEpochMs = 1'800'000'000'000;

/// Draws 1, 2, 3, ...: distinct span ids.
class CountingRandom final : public policy::RandomSource {
 public:
  std::uint64_t next_u64() override { return ++n_; }

 private:
  std::uint64_t n_ = 0;
};

class ManualClock final : public pipeline::Clock {
 public:
  std::chrono::steady_clock::time_point steady() const override { return steady_; }
  std::chrono::system_clock::time_point system() const override { return system_; }
  void advance(std::chrono::milliseconds by) {
    steady_ += by;
    system_ += by;
  }

 private:
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::chrono::system_clock::time_point system_{std::chrono::milliseconds(kEpochMs)};
};

// ---------------------------------------------------------------------------------------------
// Trace context and sampling

TEST(TraceContext, ParsesAndFormatsTraceparent) {
  const std::string header = std::string("00-") + kApiTrace + "-" + kApiSpan + "-01";
  const auto context = tracing::parse_traceparent(header);
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(context->trace_id, kApiTrace);
  EXPECT_EQ(context->span_id, kApiSpan);
  EXPECT_TRUE(context->sampled());
  EXPECT_EQ(tracing::format_traceparent(*context), header);
  EXPECT_FALSE(
      tracing::parse_traceparent(std::string("00-") + kApiTrace + "-" + kApiSpan + "-00")->sampled());
  // A later version may carry more fields.
  EXPECT_TRUE(tracing::parse_traceparent(std::string("01-") + kApiTrace + "-" + kApiSpan + "-01-extra"));
}

TEST(TraceContext, RejectsMalformedTraceparents) {
  for (const std::string& bad :
       {std::string("00-abc-def-01"), std::string(""),
        std::string("00-") + std::string(32, '0') + "-" + kApiSpan + "-01",      // zero trace id
        std::string("00-") + kApiTrace + "-" + std::string(16, '0') + "-01",     // zero span id
        std::string("00-0AF7651916CD43DD8448EB211C80319C-") + kApiSpan + "-01",  // upper case
        std::string("ff-") + kApiTrace + "-" + kApiSpan + "-01",                 // forbidden version
        std::string("00-") + kApiTrace + "-" + kApiSpan + "-01-extra",           // 00 has 4 fields
        std::string("00-") + kApiTrace + "-" + kApiSpan + "-0x"}) {
    EXPECT_FALSE(tracing::parse_traceparent(bad).has_value()) << bad;
  }
}

TEST(TraceContext, NewIdsAreHexAndNeverZero) {
  CountingRandom rng;
  EXPECT_EQ(tracing::new_span_id(rng), "0000000000000001");
  EXPECT_EQ(tracing::new_trace_id(rng), "00000000000000020000000000000003");
}

TEST(TraceContext, RatioSamplingReadsTheTraceIdsLowHalf) {
  EXPECT_TRUE(tracing::sampled_at_ratio("ffffffffffffffffffffffffffffffff", 1.0));
  EXPECT_FALSE(tracing::sampled_at_ratio("00000000000000000000000000000001", 0.0));
  EXPECT_TRUE(tracing::sampled_at_ratio("ffffffffffffffff3fffffffffffffff", 0.25));
  EXPECT_FALSE(tracing::sampled_at_ratio("00000000000000004000000000000000", 0.25));
}

// ---------------------------------------------------------------------------------------------
// OTLP JSON

TEST(OtlpJson, EncodesSpansAsTheSpecificationAsks) {
  tracing::Span span;
  span.trace_id = kApiTrace;
  span.span_id = "0000000000000001";
  span.parent_span_id = kApiSpan;
  span.trace_state = "k=v";
  span.name = "llm.requests process";
  span.kind = SpanKind::kConsumer;
  span.start_ns = 1'800'000'000'000'000'000;
  span.end_ns = 1'800'000'000'250'000'000;
  span.attributes = {{"s", std::string("text")}, {"i", std::int64_t{42}}, {"d", 0.5}, {"b", true}};
  span.status = StatusCode::kError;
  span.status_message = "failed";
  tracing::Span root;
  root.trace_id = kApiTrace;
  root.span_id = "0000000000000002";
  root.name = "root";
  root.kind = SpanKind::kProducer;

  const auto body = json::parse(tracing::encode_otlp_json(std::vector{span, root}, "kafka-llm-worker"));
  const auto& resource = body["resourceSpans"][0]["resource"]["attributes"];
  EXPECT_EQ(resource[0], (json{{"key", "service.name"}, {"value", {{"stringValue", "kafka-llm-worker"}}}}));
  const auto& scope = body["resourceSpans"][0]["scopeSpans"][0];
  EXPECT_EQ(scope["scope"]["name"], "kafka_llm");
  const auto& s = scope["spans"][0];
  EXPECT_EQ(s["traceId"], kApiTrace);  // hex, not base64
  EXPECT_EQ(s["spanId"], "0000000000000001");
  EXPECT_EQ(s["parentSpanId"], kApiSpan);
  EXPECT_EQ(s["traceState"], "k=v");
  EXPECT_EQ(s["name"], "llm.requests process");
  EXPECT_EQ(s["kind"], 5);
  EXPECT_EQ(s["startTimeUnixNano"], "1800000000000000000");  // 64-bit integers as strings
  EXPECT_EQ(s["endTimeUnixNano"], "1800000000250000000");
  EXPECT_EQ(s["attributes"][0]["value"], (json{{"stringValue", "text"}}));
  EXPECT_EQ(s["attributes"][1]["value"], (json{{"intValue", "42"}}));
  EXPECT_EQ(s["attributes"][2]["value"], (json{{"doubleValue", 0.5}}));
  EXPECT_EQ(s["attributes"][3]["value"], (json{{"boolValue", true}}));
  EXPECT_EQ(s["status"], (json{{"code", 2}, {"message", "failed"}}));
  const auto& r = scope["spans"][1];
  EXPECT_FALSE(r.contains("parentSpanId"));  // a root span
  EXPECT_EQ(r["kind"], 4);
  EXPECT_EQ(r["status"], json::object());  // unset
}

TEST(OtlpJson, InvalidUtf8IsReplacedNotThrown) {
  tracing::Span span;
  span.trace_id = kApiTrace;
  span.span_id = "0000000000000001";
  span.status_message = "bad \xff byte";
  EXPECT_FALSE(json::parse(tracing::encode_otlp_json(std::vector{span}, "w")).is_discarded());
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST(TracingConfig, OffByDefaultAndReadFromTheDocumentOrTheEnvironment) {
  const json base = {{"kafka", {{"bootstrap.servers", "127.0.0.1:9092"}}},
                     {"providers", {{{"name", "mock"}, {"baseURL", "http://127.0.0.1:9/v1"}}}}};
  const auto off = pipeline::PipelineConfig::parse(base);
  EXPECT_FALSE(off.tracing.enabled());
  EXPECT_EQ(off.tracing.service_name, "kafka-llm-worker");
  EXPECT_DOUBLE_EQ(off.tracing.sample_ratio, 1.0);
  EXPECT_EQ(off.tracing.export_interval, 1s);
  EXPECT_EQ(off.tracing.max_queue, 2048U);
  EXPECT_TRUE(off.view()["tracing"]["otlp_endpoint"].is_null());

  json doc = base;
  doc["tracing"] = {{"otlpEndpoint", "http://127.0.0.1:4318/v1/traces"},
                    {"serviceName", "w"},
                    {"sampleRatio", 0.5},
                    {"exportInterval", "200ms"},
                    {"maxQueueSize", 10}};
  const auto on = pipeline::PipelineConfig::parse(doc, {"", {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"}}});
  EXPECT_EQ(on.tracing.otlp_endpoint, "http://127.0.0.1:4318/v1/traces");  // the key wins
  EXPECT_EQ(on.view()["tracing"], (json{{"otlp_endpoint", "http://127.0.0.1:4318/v1/traces"},
                                        {"service_name", "w"},
                                        {"sample_ratio", 0.5},
                                        {"export_interval_ms", 200},
                                        {"max_queue_size", 10}}));

  EXPECT_EQ(pipeline::PipelineConfig::parse(base, {"", {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"}}})
                .tracing.otlp_endpoint,
            "http://c:4318/v1/traces");
  EXPECT_EQ(pipeline::PipelineConfig::parse(base, {"",
                                                   {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                                                    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/v1/x"}}})
                .tracing.otlp_endpoint,
            "http://t/v1/x");
}

TEST(TracingConfig, BadValuesNameTheKey) {
  const json base = {{"kafka", {{"bootstrap.servers", "127.0.0.1:9092"}}},
                     {"providers", {{{"name", "mock"}, {"baseURL", "http://127.0.0.1:9/v1"}}}}};
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"otlpEndpoint", "127.0.0.1:4318"}}, "tracing.otlpEndpoint"},
      {{{"sampleRatio", 1.5}}, "tracing.sampleRatio"},
      {{{"sampleRatio", "all"}}, "tracing.sampleRatio"},
      {{{"exportInterval", "1ms"}}, "tracing.exportInterval"},
      {{{"maxQueueSize", 0}}, "tracing.maxQueueSize"},
      {{{"serviceName", ""}}, "tracing.serviceName"},
      {{{"endpoint", "http://x"}}, "tracing.endpoint"},
  };
  for (const auto& [section, key] : cases) {
    json doc = base;
    doc["tracing"] = section;
    try {
      (void)pipeline::PipelineConfig::parse(doc);
      ADD_FAILURE() << "accepted " << section.dump();
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), key) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A request's spans, from its facts as the state machine records them

std::string chat() {
  return R"({"request_id":"r1","path":"/v1/chat/completions","body":{"model":"gpt-x","messages":[{"role":"user","content":"hi"}]}})";
}

std::string completion() {
  return json{{"object", "chat.completion"},
              {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", "hello"}}}}}}}
      .dump();
}

pipeline::ProviderCall answer(long status, std::string body = {}) {
  pipeline::ProviderCall call;
  call.status = status;
  call.body = std::move(body);
  return call;
}

class TracedRequest : public ::testing::Test {
 protected:
  TracedRequest() {
    config_.kafka = {{"bootstrap.servers", "127.0.0.1:9092"}};
    pipeline::StreamConfig stream;
    stream.group = "g";
    stream.requests_topic = "req";
    stream.responses_topic = "resp";
    stream.dlq_topic = "dlq";
    config_.streams.push_back(stream);
    pipeline::ProviderConfig provider;
    provider.name = "mock";
    provider.base_url = "http://127.0.0.1:9/v1";
    provider.api_key = "sk-secret-key";
    config_.providers.push_back(provider);
    config_.default_provider = "mock";
    config_.retry.max_attempts = 2;
    config_.retry.initial_backoff = 100ms;
    config_.retry.max_backoff = 100ms;
    config_.retry.request_timeout = 10s;
    config_.tracing.otlp_endpoint = "http://127.0.0.1:4318/v1/traces";
  }

  void make(HeaderList headers) {
    retry_ = std::make_unique<policy::RetryPolicy>(config_.retry);
    env_ = std::make_unique<pipeline::MachineEnv>(
        pipeline::MachineEnv{config_, config_.streams.front(), *retry_, rng_, clock_, metrics_, secrets_});
    pipeline::ConsumedRecord record;
    record.origin = {"req", 3, 41};
    record.key = "k1";
    record.value = chat();
    record.headers = std::move(headers);
    record.timestamp_ms = clock_.system_ms();
    machine_ = std::make_unique<RequestMachine>(*env_, std::move(record));
  }
  template <class Fn>
  void event(Fn&& fn) {
    out_.clear();
    fn(*machine_, out_);
  }
  void to_calling() {
    event([](RequestMachine& m, pipeline::Actions& out) { m.start(out); });
    event([](RequestMachine& m, pipeline::Actions& out) {
      m.on_claim({pipeline::StoreOutcome::kStored, std::nullopt}, out);
    });
    event([](RequestMachine& m, pipeline::Actions& out) { m.on_admission(0ms, false, out); });
  }
  /// The traceparent of the provider call just started.
  std::string call_traceparent() {
    for (auto& a : out_) {
      if (auto* call = std::get_if<pipeline::action::CallProvider>(&a))
        return *find_header(call->http->headers, "traceparent");
    }
    throw std::runtime_error("no provider call");
  }
  void answered(pipeline::ProviderCall call) {
    event([&call](RequestMachine& m, pipeline::Actions& out) { m.on_provider_answer(std::move(call), out); });
  }
  void retry_after_wait() {
    const auto& wait = std::get<pipeline::action::WaitUntil>(out_.back());
    clock_.advance(std::chrono::duration_cast<std::chrono::milliseconds>(wait.at - clock_.steady()));
    event([](RequestMachine& m, pipeline::Actions& out) { m.on_timer(out); });
    event([](RequestMachine& m, pipeline::Actions& out) { m.on_admission(0ms, false, out); });
  }
  std::vector<pipeline::Output> stored() {
    event([](RequestMachine& m, pipeline::Actions& out) {
      m.on_store({pipeline::StoreOutcome::kStored, std::nullopt}, out);
    });
    std::vector<pipeline::Output> outputs;
    for (const auto& a : out_) {
      if (const auto* p = std::get_if<pipeline::action::Produce>(&a)) outputs.push_back(p->output);
    }
    return outputs;
  }
  std::vector<tracing::Span> spans(const std::string& outcome = "finished") const {
    return pipeline::request_spans(machine_->facts(), *machine_->facts().tracing, {"req", "resp", "g"},
                                   clock_.steady(), outcome);
  }
  static std::string attribute(const tracing::Span& span, const std::string& key) {
    for (const auto& [name, value] : span.attributes) {
      if (name != key) continue;
      if (const auto* s = std::get_if<std::string>(&value)) return *s;
      if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
    }
    return "<absent>";
  }
  static HeaderList api_headers(const char* flags = "01") {
    return {{"traceparent", std::string("00-") + kApiTrace + "-" + kApiSpan + "-" + flags},
            {"tracestate", "k=v"}};
  }

  pipeline::PipelineConfig config_;
  ManualClock clock_;
  CountingRandom rng_;
  metrics::PipelineMetrics metrics_;
  std::vector<std::string> secrets_{"sk-secret-key"};
  std::unique_ptr<policy::RetryPolicy> retry_;
  std::unique_ptr<pipeline::MachineEnv> env_;
  std::unique_ptr<RequestMachine> machine_;
  pipeline::Actions out_;
};

TEST_F(TracedRequest, ConsumeCallsAndPublishAreSpansOfTheApisTrace) {
  make(api_headers());
  ASSERT_NE(machine_->facts().tracing, nullptr);
  clock_.advance(5ms);
  to_calling();
  const auto first = tracing::parse_traceparent(call_traceparent());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->trace_id, kApiTrace);  // the provider sees the attempt's span
  clock_.advance(20ms);
  answered(answer(503));
  retry_after_wait();
  const auto second = tracing::parse_traceparent(call_traceparent());
  EXPECT_NE(second->span_id, first->span_id);
  clock_.advance(30ms);
  answered(answer(200, completion()));
  clock_.advance(2ms);
  const auto outputs = stored();
  ASSERT_EQ(outputs.size(), 1U);
  const auto response_context = tracing::parse_traceparent(*find_header(outputs[0].headers, "traceparent"));
  EXPECT_EQ(*find_header(outputs[0].headers, "tracestate"), "k=v");
  clock_.advance(3ms);
  event([](RequestMachine& m, pipeline::Actions& out) { m.on_delivered(out); });

  const auto all = spans();
  ASSERT_EQ(all.size(), 4U);
  const auto& consumer = all[0];
  EXPECT_EQ(consumer.name, "req process");
  EXPECT_EQ(consumer.kind, SpanKind::kConsumer);
  EXPECT_EQ(consumer.trace_id, kApiTrace);
  EXPECT_EQ(consumer.parent_span_id, kApiSpan);
  EXPECT_EQ(consumer.trace_state, "k=v");
  EXPECT_EQ(consumer.start_ns, kEpochMs * 1'000'000);
  EXPECT_EQ(consumer.end_ns, clock_.system_ms() * 1'000'000);  // receipt to delivery, on the clock
  EXPECT_EQ(attribute(consumer, "messaging.system"), "kafka");
  EXPECT_EQ(attribute(consumer, "messaging.destination.name"), "req");
  EXPECT_EQ(attribute(consumer, "messaging.destination.partition.id"), "3");
  EXPECT_EQ(attribute(consumer, "messaging.kafka.offset"), "41");
  EXPECT_EQ(attribute(consumer, "messaging.consumer.group.name"), "g");
  EXPECT_EQ(attribute(consumer, "kafka_llm.request_id"), "r1");
  EXPECT_EQ(attribute(consumer, "kafka_llm.attempts"), "2");
  EXPECT_EQ(consumer.status, StatusCode::kUnset);

  const auto& failed = all[1];
  EXPECT_EQ(failed.name, "POST mock");
  EXPECT_EQ(failed.kind, SpanKind::kClient);
  EXPECT_EQ(failed.parent_span_id, consumer.span_id);
  EXPECT_EQ(failed.span_id, first->span_id);
  EXPECT_EQ(failed.start_ns - consumer.start_ns, 5'000'000);
  EXPECT_EQ(failed.end_ns - failed.start_ns, 20'000'000);
  EXPECT_EQ(attribute(failed, "http.response.status_code"), "503");
  EXPECT_EQ(attribute(failed, "kafka_llm.attempt"), "1");
  EXPECT_EQ(attribute(failed, "error.type"), "503");
  EXPECT_EQ(attribute(failed, "gen_ai.request.model"), "gpt-x");
  EXPECT_EQ(failed.status, StatusCode::kError);

  const auto& ok = all[2];
  EXPECT_EQ(ok.span_id, second->span_id);
  EXPECT_EQ(ok.parent_span_id, consumer.span_id);
  EXPECT_EQ(attribute(ok, "http.response.status_code"), "200");
  EXPECT_EQ(attribute(ok, "kafka_llm.attempt"), "2");
  EXPECT_EQ(attribute(ok, "http.request.resend_count"), "1");
  EXPECT_EQ(attribute(ok, "error.type"), "<absent>");
  EXPECT_EQ(ok.end_ns - ok.start_ns, 30'000'000);

  const auto& producer = all[3];
  EXPECT_EQ(producer.name, "resp publish");
  EXPECT_EQ(producer.kind, SpanKind::kProducer);
  EXPECT_EQ(producer.parent_span_id, consumer.span_id);
  EXPECT_EQ(producer.span_id, response_context->span_id);  // the response continues from it
  EXPECT_EQ(producer.end_ns - producer.start_ns, 3'000'000);
  EXPECT_EQ(attribute(producer, "messaging.destination.name"), "resp");
  EXPECT_EQ(attribute(producer, "kafka_llm.output_topics"), "resp");
  // Distinct span ids throughout.
  EXPECT_NE(consumer.span_id, producer.span_id);
  EXPECT_NE(consumer.span_id, ok.span_id);
}

TEST_F(TracedRequest, AFailureMarksTheSpansAndTheDeadLetterContinuesTheTrace) {
  make(api_headers());
  to_calling();
  answered(answer(400, R"({"error":{"message":"bad sk-secret-key"}})"));
  const auto outputs = stored();
  ASSERT_EQ(outputs.size(), 2U);
  const std::string response_parent = *find_header(outputs[0].headers, "traceparent");
  const std::string dead_letter_parent = *find_header(outputs[1].headers, "traceparent");
  EXPECT_EQ(outputs[1].topic, "dlq");
  EXPECT_EQ(dead_letter_parent, response_parent);  // the worker's producer span, not the API's
  EXPECT_EQ(dead_letter_parent.find(kApiSpan), std::string::npos);
  EXPECT_EQ(*find_header(outputs[1].headers, "tracestate"), "k=v");
  const auto all = spans();
  EXPECT_EQ(all[0].status, StatusCode::kError);
  EXPECT_EQ(all[0].status_message.find("sk-secret-key"), std::string::npos);
  EXPECT_EQ(attribute(all[0], "kafka_llm.status_code"), "400");
  EXPECT_EQ(all[1].status, StatusCode::kError);
  EXPECT_EQ(attribute(all[1], "error.type"), "400");
  EXPECT_EQ(attribute(all[2], "kafka_llm.output_topics"), "resp,dlq");
}

TEST_F(TracedRequest, AnUnsampledParentRecordsNothingAndPassesItsContextOn) {
  make(api_headers("00"));
  EXPECT_EQ(machine_->facts().tracing, nullptr);
  to_calling();
  EXPECT_EQ(call_traceparent(), std::string("00-") + kApiTrace + "-" + kApiSpan + "-00");
  answered(answer(200, completion()));
  const auto outputs = stored();
  EXPECT_EQ(*find_header(outputs[0].headers, "traceparent"),
            std::string("00-") + kApiTrace + "-" + kApiSpan + "-00");
}

TEST_F(TracedRequest, WithoutATraceparentANewRootTraceStarts) {
  make({{"traceparent", "00-abc-def-01"}});  // malformed: as if absent
  ASSERT_NE(machine_->facts().tracing, nullptr);
  to_calling();
  answered(answer(200, completion()));
  const auto outputs = stored();
  const auto context = tracing::parse_traceparent(*find_header(outputs[0].headers, "traceparent"));
  ASSERT_TRUE(context);
  const auto all = spans();
  EXPECT_TRUE(all[0].parent_span_id.empty());
  EXPECT_EQ(context->trace_id, all[0].trace_id);
  EXPECT_EQ(context->span_id, all.back().span_id);
}

TEST_F(TracedRequest, RootTracesFollowTheSampleRatio) {
  config_.tracing.sample_ratio = 0.0;
  make({});
  EXPECT_EQ(machine_->facts().tracing, nullptr);
  to_calling();
  answered(answer(200, completion()));
  EXPECT_EQ(find_header(stored()[0].headers, "traceparent"), nullptr);
}

TEST_F(TracedRequest, WithoutAnEndpointHeadersPassThroughAndNoRandomIsDrawn) {
  config_.tracing.otlp_endpoint.clear();
  make(api_headers());
  EXPECT_EQ(machine_->facts().tracing, nullptr);
  to_calling();
  answered(answer(200, completion()));
  const auto outputs = stored();
  EXPECT_EQ(*find_header(outputs[0].headers, "traceparent"),
            std::string("00-") + kApiTrace + "-" + kApiSpan + "-01");
  EXPECT_EQ(rng_.next_u64(), 1U);
}

TEST_F(TracedRequest, AnAbandonedRequestEndsItsOpenAttemptAtTheEnd) {
  make(api_headers());
  to_calling();
  clock_.advance(40ms);
  const auto all = spans("abandoned");
  ASSERT_EQ(all.size(), 2U);  // no publication: no producer span
  EXPECT_EQ(attribute(all[0], "kafka_llm.outcome"), "abandoned");
  EXPECT_EQ(all[1].end_ns, all[0].end_ns);
}

}  // namespace
}  // namespace kafka_llm
