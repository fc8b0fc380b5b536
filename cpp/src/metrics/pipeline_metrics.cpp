#include "kafka_llm/metrics/pipeline_metrics.hpp"

#include <array>
#include <sstream>

namespace kafka_llm::metrics {

namespace {
/// Counts one more `key` without building a string when the key is already there.
void count_one(std::map<std::string, std::uint64_t, std::less<>>& counts, std::string_view key) {
  auto it = counts.find(key);
  if (it == counts.end()) it = counts.emplace(std::string(key), 0).first;
  ++it->second;
}

nlohmann::json summary(const Histogram& h) {
  auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return {{"count", h.count()},
          {"mean_ms", h.count() ? h.sum() / static_cast<double>(h.count()) / 1000.0 : 0.0},
          {"p50_ms", ms(h.quantile(0.50))},
          {"p95_ms", ms(h.quantile(0.95))},
          {"p99_ms", ms(h.quantile(0.99))},
          {"max_ms", ms(h.max())}};
}

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void histogram_text(std::ostringstream& out, const std::string& name, const std::string& help,
                    const Histogram& h) {
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  for (double le : kBounds) {
    out << name << "_bucket{le=\"" << le << "\"} " << h.count_at_most(static_cast<std::uint64_t>(le * 1e6))
        << "\n";
  }
  out << name << "_bucket{le=\"+Inf\"} " << h.count() << "\n";
  out << name << "_sum " << h.sum() / 1e6 << "\n" << name << "_count " << h.count() << "\n";
}

}  // namespace

void PipelineMetrics::request_finished(const std::string& stream, const std::string& provider,
                                       const std::string& model, const std::string& outcome,
                                       std::uint64_t end_to_end_us) {
  std::lock_guard lock(mutex_);
  ++requests_[{stream, provider, model, outcome}];
  end_to_end_.record(end_to_end_us);
}

void PipelineMetrics::provider_call(std::uint64_t latency_us) {
  std::lock_guard lock(mutex_);
  provider_latency_.record(latency_us);
}

void PipelineMetrics::first_token(std::uint64_t micros) {
  std::lock_guard lock(mutex_);
  first_token_.record(micros);
}

void PipelineMetrics::queued(std::uint64_t micros) {
  std::lock_guard lock(mutex_);
  queue_.record(micros);
}

void PipelineMetrics::retry(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++retries_[reason];
}

void PipelineMetrics::cancel(std::string_view result) {
  std::lock_guard lock(mutex_);
  count_one(cancels_, result);
}

void PipelineMetrics::transaction(std::string_view result, std::size_t records) {
  std::lock_guard lock(mutex_);
  count_one(transactions_, result);
  if (result == "committed") transaction_records_ += records;
}

void PipelineMetrics::dead_letter(ErrorClass error_class) {
  std::lock_guard lock(mutex_);
  ++dlq_[std::string(to_string(error_class))];
}

void PipelineMetrics::tokens(const std::string& provider, const std::string& model, std::int64_t prompt,
                             std::int64_t completion) {
  std::lock_guard lock(mutex_);
  if (prompt > 0) tokens_[{provider, model, "input"}] += static_cast<std::uint64_t>(prompt);
  if (completion > 0) tokens_[{provider, model, "output"}] += static_cast<std::uint64_t>(completion);
}

void PipelineMetrics::rate_limited() {
  std::lock_guard lock(mutex_);
  ++rate_limited_;
}

void PipelineMetrics::cache_hit() {
  std::lock_guard lock(mutex_);
  ++cache_hits_;
}

void PipelineMetrics::redactions(const std::string& stream, const std::string& rule, std::uint64_t count) {
  std::lock_guard lock(mutex_);
  redactions_[{stream, rule}] += count;
}

void PipelineMetrics::human_review(const std::string& stream) {
  std::lock_guard lock(mutex_);
  ++human_review_[stream];
}

void PipelineMetrics::circuit_state(const std::string& provider, std::string_view state) {
  std::lock_guard lock(mutex_);
  auto& current = circuit_state_[provider];
  auto& trips = circuit_trips_[provider];  // 0 until the first trip, reported from the start
  if (current == state) return;
  current = state;
  if (current == "open") ++trips;
}

void PipelineMetrics::spans_exported(std::uint64_t count) {
  std::lock_guard lock(mutex_);
  spans_exported_ += count;
}

void PipelineMetrics::spans_dropped(std::string_view reason, std::uint64_t count) {
  std::lock_guard lock(mutex_);
  auto it = spans_dropped_.find(reason);
  if (it == spans_dropped_.end()) it = spans_dropped_.emplace(std::string(reason), 0).first;
  it->second += count;
}

void PipelineMetrics::rebalance() {
  std::lock_guard lock(mutex_);
  ++rebalances_;
}

void PipelineMetrics::consumed() {
  std::lock_guard lock(mutex_);
  ++consumed_;
}

void PipelineMetrics::set_inflight(std::int64_t value) {
  std::lock_guard lock(mutex_);
  inflight_ = value;
}

void PipelineMetrics::set_paused_partitions(std::int64_t value) {
  std::lock_guard lock(mutex_);
  paused_partitions_ = value;
}

void PipelineMetrics::set_backlog(std::int64_t value) {
  std::lock_guard lock(mutex_);
  backlog_ = value;
}

void PipelineMetrics::set_lag(const std::string& topic, std::int32_t partition, std::int64_t lag) {
  std::lock_guard lock(mutex_);
  lag_[{topic, partition}] = lag;
}

void PipelineMetrics::forget_lag(const std::string& topic, std::int32_t partition) {
  std::lock_guard lock(mutex_);
  lag_.erase({topic, partition});
}

void PipelineMetrics::set_assignment(std::vector<std::string> partitions) {
  std::lock_guard lock(mutex_);
  assignment_ = std::move(partitions);
}

nlohmann::json PipelineMetrics::snapshot() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out;
  std::map<std::string, std::uint64_t> outcomes;
  nlohmann::json requests = nlohmann::json::array();
  std::uint64_t total = 0;
  for (const auto& [key, count] : requests_) {
    const auto& [stream, provider, model, outcome] = key;
    requests.push_back({{"stream", stream},
                        {"provider", provider},
                        {"model", model},
                        {"outcome", outcome},
                        {"count", count}});
    outcomes[outcome] += count;
    total += count;
  }
  out["requests_total"] = total;
  out["requests_by_outcome"] = outcomes;
  out["requests"] = std::move(requests);
  out["retries"] = retries_;
  out["dlq"] = dlq_;
  out["transactions"] = nlohmann::json::object();
  for (const auto& [result, count] : transactions_) out["transactions"][result] = count;
  out["transaction_records"] = transaction_records_;
  out["cancels"] = nlohmann::json::object();
  for (const auto& [result, count] : cancels_) out["cancels"][result] = count;
  std::uint64_t in = 0;
  std::uint64_t out_tokens = 0;
  for (const auto& [key, count] : tokens_) (std::get<2>(key) == "input" ? in : out_tokens) += count;
  out["tokens"] = {{"input", in}, {"output", out_tokens}};
  out["rate_limited"] = rate_limited_;
  out["cache_hits"] = cache_hits_;
  nlohmann::json redactions = nlohmann::json::object();
  for (const auto& [key, count] : redactions_) redactions[key.first][key.second] = count;
  out["redactions"] = std::move(redactions);
  out["human_review"] = human_review_;
  nlohmann::json circuits = nlohmann::json::object();
  for (const auto& [provider, state] : circuit_state_) {
    circuits[provider] = {{"state", state}, {"trips", circuit_trips_.at(provider)}};
  }
  out["circuits"] = std::move(circuits);
  out["rebalances"] = rebalances_;
  out["spans"] = {{"exported", spans_exported_}, {"dropped", nlohmann::json::object()}};
  for (const auto& [reason, count] : spans_dropped_) out["spans"]["dropped"][reason] = count;
  out["consumed"] = consumed_;
  out["inflight"] = inflight_;
  out["backlog"] = backlog_;
  out["paused_partitions"] = paused_partitions_;
  out["assignment"] = assignment_;
  nlohmann::json lag = nlohmann::json::object();
  for (const auto& [key, value] : lag_) lag[key.first + "/" + std::to_string(key.second)] = value;
  out["consumer_lag"] = std::move(lag);
  out["latency"] = {{"provider", summary(provider_latency_)},
                    {"end_to_end", summary(end_to_end_)},
                    {"time_to_first_token", summary(first_token_)},
                    {"queue", summary(queue_)}};
  return out;
}

std::string PipelineMetrics::prometheus() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP kafka_llm_requests_total Requests finished, by outcome.\n# TYPE kafka_llm_requests_total "
         "counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [stream, provider, model, outcome] = key;
    out << "kafka_llm_requests_total{stream=\"" << escape_label(stream) << "\",provider=\""
        << escape_label(provider) << "\",model=\"" << escape_label(model) << "\",outcome=\""
        << escape_label(outcome) << "\"} " << count << "\n";
  }
  out << "# HELP kafka_llm_inflight Requests in flight.\n# TYPE kafka_llm_inflight gauge\nkafka_llm_inflight "
      << inflight_ << "\n";
  out << "# HELP kafka_llm_backlog Records consumed and not started yet.\n# TYPE kafka_llm_backlog gauge\n"
         "kafka_llm_backlog "
      << backlog_ << "\n";
  histogram_text(out, "kafka_llm_provider_latency_seconds", "Provider call latency.", provider_latency_);
  histogram_text(out, "kafka_llm_end_to_end_seconds", "Record timestamp to finished result.", end_to_end_);
  histogram_text(out, "kafka_llm_time_to_first_token_seconds", "Time to the first streamed token.",
                 first_token_);
  histogram_text(out, "kafka_llm_queue_seconds", "Record timestamp to the first provider call.", queue_);
  out << "# HELP kafka_llm_retries_total Provider call retries.\n# TYPE kafka_llm_retries_total counter\n";
  for (const auto& [reason, count] : retries_) {
    out << "kafka_llm_retries_total{reason=\"" << escape_label(reason) << "\"} " << count << "\n";
  }
  out << "# HELP kafka_llm_dlq_total Records sent to the dead-letter topic.\n# TYPE kafka_llm_dlq_total "
         "counter\n";
  for (const auto& [cls, count] : dlq_)
    out << "kafka_llm_dlq_total{class=\"" << cls << "\"} " << count << "\n";
  out << "# HELP kafka_llm_transactions_total Exactly-once transactions, by result.\n"
         "# TYPE kafka_llm_transactions_total counter\n";
  for (const auto& [result, count] : transactions_)
    out << "kafka_llm_transactions_total{result=\"" << result << "\"} " << count << "\n";
  out << "# HELP kafka_llm_cancels_total Cancel records acted on, by result.\n# TYPE kafka_llm_cancels_total "
         "counter\n";
  for (const auto& [result, count] : cancels_)
    out << "kafka_llm_cancels_total{result=\"" << result << "\"} " << count << "\n";
  out << "# HELP kafka_llm_tokens_total Tokens used.\n# TYPE kafka_llm_tokens_total counter\n";
  for (const auto& [key, count] : tokens_) {
    out << "kafka_llm_tokens_total{provider=\"" << escape_label(std::get<0>(key)) << "\",model=\""
        << escape_label(std::get<1>(key)) << "\",direction=\"" << std::get<2>(key) << "\"} " << count << "\n";
  }
  out << "# HELP kafka_llm_consumer_lag Records between the group's committed offset and the high watermark, "
         "as the "
         "brokers know them.\n# TYPE kafka_llm_consumer_lag "
         "gauge\n";
  for (const auto& [key, value] : lag_) {
    out << "kafka_llm_consumer_lag{topic=\"" << escape_label(key.first) << "\",partition=\"" << key.second
        << "\"} " << value << "\n";
  }
  out << "# HELP kafka_llm_redactions_total PII replacements before provider calls, by rule.\n"
         "# TYPE kafka_llm_redactions_total counter\n";
  for (const auto& [key, count] : redactions_) {
    out << "kafka_llm_redactions_total{stream=\"" << escape_label(key.first) << "\",rule=\""
        << escape_label(key.second) << "\"} " << count << "\n";
  }
  out << "# HELP kafka_llm_human_review_total Outputs sampled to the human-review topic.\n"
         "# TYPE kafka_llm_human_review_total counter\n";
  for (const auto& [stream, count] : human_review_) {
    out << "kafka_llm_human_review_total{stream=\"" << escape_label(stream) << "\"} " << count << "\n";
  }
  out << "# HELP kafka_llm_circuit_open Whether a provider's circuit breaker is open (1), half-open (0.5) "
         "or closed (0).\n# TYPE kafka_llm_circuit_open gauge\n";
  for (const auto& [provider, state] : circuit_state_) {
    const char* value = state == "open" ? "1" : state == "half_open" ? "0.5" : "0";
    out << "kafka_llm_circuit_open{provider=\"" << escape_label(provider) << "\"} " << value << "\n";
  }
  out << "# HELP kafka_llm_circuit_trips_total Times a provider's circuit breaker opened.\n"
         "# TYPE kafka_llm_circuit_trips_total counter\n";
  for (const auto& [provider, count] : circuit_trips_) {
    out << "kafka_llm_circuit_trips_total{provider=\"" << escape_label(provider) << "\"} " << count << "\n";
  }
  out << "# HELP kafka_llm_spans_exported_total Trace spans accepted by the OTLP endpoint.\n"
         "# TYPE kafka_llm_spans_exported_total counter\nkafka_llm_spans_exported_total "
      << spans_exported_ << "\n";
  out << "# HELP kafka_llm_spans_dropped_total Trace spans dropped, by reason.\n"
         "# TYPE kafka_llm_spans_dropped_total counter\n";
  for (const auto& [reason, count] : spans_dropped_)
    out << "kafka_llm_spans_dropped_total{reason=\"" << reason << "\"} " << count << "\n";
  out << "# TYPE kafka_llm_rebalances_total counter\nkafka_llm_rebalances_total " << rebalances_ << "\n";
  out << "# TYPE kafka_llm_paused_partitions gauge\nkafka_llm_paused_partitions " << paused_partitions_
      << "\n";
  out << "# TYPE kafka_llm_cache_hits_total counter\nkafka_llm_cache_hits_total " << cache_hits_ << "\n";
  out << "# TYPE kafka_llm_rate_limited_total counter\nkafka_llm_rate_limited_total " << rate_limited_
      << "\n";
  return out.str();
}

}  // namespace kafka_llm::metrics
