#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/metrics/histogram.hpp"

namespace kafka_llm::metrics {

/// The pipeline's metrics (docs/operations.md, "Metrics"). Thread-safe: the io thread records, any thread
/// reads.
class PipelineMetrics {
 public:
  void request_finished(const std::string& stream, const std::string& provider, const std::string& model,
                        const std::string& outcome, std::uint64_t end_to_end_us);
  void provider_call(std::uint64_t latency_us);
  void first_token(std::uint64_t micros);
  /// Queue time of a request: its record's timestamp to its first provider call.
  void queued(std::uint64_t micros);
  void retry(const std::string& reason);
  void dead_letter(ErrorClass error_class);
  /// A cancel record was acted on; `result` is skipped, aborted, too_late, remembered or invalid
  /// (docs/operations.md, "Metrics").
  void cancel(std::string_view result);
  /// An exactly-once transaction ended; `result` is committed, aborted or fenced.
  void transaction(std::string_view result, std::size_t records);
  void tokens(const std::string& provider, const std::string& model, std::int64_t prompt,
              std::int64_t completion);
  void rate_limited();
  void cache_hit();
  /// `count` replacements by redaction `rule` (e.g. "email", "pattern:employee_id") on `stream`.
  void redactions(const std::string& stream, const std::string& rule, std::uint64_t count);
  /// An output of `stream` produced to its human-review topic.
  void human_review(const std::string& stream);
  /// `provider`'s circuit breaker moved to `state` ("closed", "open", "half_open"); a move to
  /// "open" counts as a trip.
  void circuit_state(const std::string& provider, std::string_view state);
  /// `count` spans reached the OTLP endpoint.
  void spans_exported(std::uint64_t count);
  /// `count` spans were dropped; `reason` is queue_full (the exporter's queue was full) or
  /// export_failed (the endpoint did not accept them).
  void spans_dropped(std::string_view reason, std::uint64_t count);
  void rebalance();
  void consumed();
  void set_inflight(std::int64_t value);
  void set_paused_partitions(std::int64_t value);
  /// Records consumed and not started yet (waiting for a slot or behind an earlier one of their key).
  void set_backlog(std::int64_t value);
  void set_lag(const std::string& topic, std::int32_t partition, std::int64_t lag);
  void forget_lag(const std::string& topic, std::int32_t partition);
  /// The partitions this worker owns now, as "topic/partition".
  void set_assignment(std::vector<std::string> partitions);

  /// A snapshot as JSON: counters, gauges and latency summaries (count, mean, p50, p95, p99, max in ms).
  nlohmann::json snapshot() const;
  /// Prometheus text exposition, names prefixed `kafka_llm_`.
  std::string prometheus() const;

 private:
  using RequestKey = std::tuple<std::string, std::string, std::string, std::string>;
  mutable std::mutex mutex_;
  std::map<RequestKey, std::uint64_t> requests_;
  std::map<std::string, std::uint64_t> retries_;
  std::map<std::string, std::uint64_t> dlq_;
  std::map<std::string, std::uint64_t, std::less<>> cancels_;
  std::map<std::string, std::uint64_t, std::less<>> transactions_;
  std::uint64_t transaction_records_ = 0;
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> tokens_;
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> lag_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> redactions_;
  std::map<std::string, std::uint64_t> human_review_;
  std::map<std::string, std::string> circuit_state_;
  std::map<std::string, std::uint64_t> circuit_trips_;
  std::uint64_t rate_limited_ = 0;
  std::uint64_t cache_hits_ = 0;
  std::uint64_t rebalances_ = 0;
  std::uint64_t spans_exported_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> spans_dropped_;
  std::uint64_t consumed_ = 0;
  std::int64_t inflight_ = 0;
  std::int64_t paused_partitions_ = 0;
  std::int64_t backlog_ = 0;
  std::vector<std::string> assignment_;
  Histogram provider_latency_;
  Histogram end_to_end_;
  Histogram first_token_;
  Histogram queue_;
};

}  // namespace kafka_llm::metrics
