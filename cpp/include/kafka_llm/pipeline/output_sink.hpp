#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kafka_llm/kafka/producer.hpp"
#include "kafka_llm/pipeline/outputs.hpp"

namespace kafka_llm::pipeline {

/// Produces a request's outputs and reports each once the broker acknowledged it. A failed delivery
/// is sent again after a short delay (the idempotent producer keeps the retries of one attempt in
/// order) for as long as `wanted(job)` says the request still exists. Runs on the io thread.
class OutputSink {
 public:
  using Wanted = std::function<bool(std::uint64_t job)>;
  using Delivered = std::function<void(std::uint64_t job)>;

  /// `producer` and `io` must outlive the sink; `secrets` are scrubbed from logged errors.
  OutputSink(boost::asio::io_context& io, kafka::Producer& producer, const std::vector<std::string>& secrets,
             Wanted wanted, Delivered delivered);

  void send(std::uint64_t job, Output output);

 private:
  void send_shared(std::uint64_t job, const std::shared_ptr<const Output>& output);
  void resend_later(std::uint64_t job, const std::shared_ptr<const Output>& output);

  boost::asio::io_context& io_;
  kafka::Producer& producer_;
  const std::vector<std::string>& secrets_;
  Wanted wanted_;
  Delivered delivered_;
};

}  // namespace kafka_llm::pipeline
