#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/pipeline/pipeline_config.hpp"

namespace kafka_llm::pipeline {

/// The result of one call to an embedded (in-process) provider.
struct EmbeddedResult {
  int status_code = 200;
  std::string body_json;  ///< the provider's response body, OpenAI-shaped JSON
};

/// An in-process provider ("embedded", docs/architecture.md): called on one of the pipeline's provider
/// threads with the request path and body JSON; may block. Throwing fails the attempt as a
/// non-retryable 500 with the exception's message.
using EmbeddedProvider = std::function<EmbeddedResult(std::string_view path, const std::string& body_json)>;

/// The native pipeline (docs/architecture.md, docs/guarantees.md): consumes requests, calls providers
/// asynchronously with retries and rate limits, stores results in Redis, publishes responses, token frames
/// and dead letters, and commits offsets only over finished records.
///
/// Threads: start() runs one io thread (Kafka polling, HTTP, Redis, timers) plus librdkafka's own
/// threads and, for embedded providers, a small pool. Every public method may be called from any
/// thread, concurrently: start(), stop() and register_embedded_provider() are serialized by a mutex,
/// stats() and prometheus() read the metrics under theirs, submit() serializes on its own producer,
/// and config() is immutable. Except: stop() (and the destructor) must not be called from an
/// embedded provider's callable, since it joins the thread that runs it.
/// The destructor stops the pipeline (bounded by the drain timeout) and joins every thread.
class Pipeline {
 public:
  /// Validates the configuration and creates the Kafka and Redis clients (nothing is consumed
  /// yet). Throws ConfigError naming the key, or KafkaError.
  explicit Pipeline(PipelineConfig config);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  Pipeline(Pipeline&&) = delete;
  Pipeline& operator=(Pipeline&&) = delete;

  /// Registers the callable behind a provider of kind "python"/"embedded". Before start() only;
  /// throws ConfigError when no such embedded provider is configured.
  void register_embedded_provider(const std::string& name, EmbeddedProvider provider);
  /// Subscribes and starts processing. Throws Error when already started or stopped, and
  /// ConfigError when an embedded provider has no registered callable.
  void start();
  /// Stops consuming, lets in-flight requests finish for up to the drain timeout, commits what
  /// finished, leaves the group and joins the threads. Idempotent.
  void stop();
  bool running() const noexcept;

  /// Counters, gauges and latency percentiles (see metrics::PipelineMetrics::snapshot).
  nlohmann::json stats() const;
  /// The same figures in Prometheus text format.
  std::string prometheus() const;

  /// Produces a request envelope to the first stream's request topic, keyed by its request_id
  /// (generated when absent), and waits for the broker's acknowledgement. Returns the request_id.
  /// Throws KafkaError on failure or timeout.
  std::string submit(nlohmann::json envelope, int timeout_ms = 10'000);

  const PipelineConfig& config() const noexcept;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kafka_llm::pipeline
