#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka_llm/metrics/pipeline_metrics.hpp"
#include "kafka_llm/tracing/span.hpp"

namespace kafka_llm::tracing {

struct ExporterOptions {
  std::string endpoint;                       ///< OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces
  std::string service_name;                   ///< resource attribute service.name
  std::chrono::milliseconds interval{1'000};  ///< a batch goes out at least this often
  std::size_t max_queue = 2'048;              ///< spans waiting; more are dropped (queue_full)
  std::size_t max_batch = 512;                ///< spans per export request
  std::chrono::milliseconds timeout{5'000};   ///< per export request, connection included
};

/// Sends finished spans to an OTLP/HTTP endpoint in batches, in OTLP's JSON encoding, from a
/// thread of its own (libcurl easy transfers). add() never waits for the network: when the bounded
/// queue is full the spans are dropped and counted (kafka_llm_spans_dropped_total{reason="queue_full"});
/// a batch the endpoint does not accept is dropped too (reason export_failed), never retried.
/// `metrics` must outlive the exporter.
class SpanExporter {
 public:
  /// The thread starts at once. Throws std::runtime_error when libcurl cannot be initialised.
  SpanExporter(ExporterOptions options, metrics::PipelineMetrics& metrics);
  /// Calls stop().
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;
  SpanExporter(SpanExporter&&) = delete;
  SpanExporter& operator=(SpanExporter&&) = delete;

  /// Queues `spans` for export (any thread); those that do not fit are dropped and counted.
  void add(std::vector<Span> spans);
  /// Exports what is queued (each request bounded by the options' timeout), then stops and joins
  /// the thread; idempotent. Spans added afterwards are dropped.
  void stop();

 private:
  void run();
  /// POSTs one batch; whether the endpoint answered 2xx.
  bool send(const std::string& body, std::string& error);

  ExporterOptions options_;
  metrics::PipelineMetrics& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Span> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kafka_llm::tracing
