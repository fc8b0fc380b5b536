#include "kafka_llm/pipeline/output_sink.hpp"

#include <boost/asio/steady_timer.hpp>

#include "kafka_llm/common/log.hpp"
#include "kafka_llm/format/dead_letter.hpp"

namespace kafka_llm::pipeline {

namespace {
constexpr std::chrono::milliseconds kResendDelay{100};
}

OutputSink::OutputSink(boost::asio::io_context& io, kafka::Producer& producer,
                       const std::vector<std::string>& secrets, Wanted wanted, Delivered delivered)
    : io_(io),
      producer_(producer),
      secrets_(secrets),
      wanted_(std::move(wanted)),
      delivered_(std::move(delivered)) {}

void OutputSink::send(std::uint64_t job, Output output) {
  send_shared(job, std::make_shared<const Output>(std::move(output)));
}

void OutputSink::send_shared(std::uint64_t job, const std::shared_ptr<const Output>& output) {
  const auto err =
      producer_.produce(output->topic, output->key, output->value, output->headers,
                        [this, job, output](const kafka::DeliveryReport& report) {
                          if (report.ok()) {
                            delivered_(job);
                            return;
                          }
                          log(LogLevel::kWarning, "delivery failed, retrying: " +
                                                      format::redact_secrets(report.error_message, secrets_));
                          resend_later(job, output);
                        });
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) resend_later(job, output);
}

void OutputSink::resend_later(std::uint64_t job, const std::shared_ptr<const Output>& output) {
  if (!wanted_(job)) return;
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, kResendDelay);
  timer->async_wait([this, job, output, timer](boost::system::error_code ec) {
    if (!ec && wanted_(job)) send_shared(job, output);
  });
}

}  // namespace kafka_llm::pipeline
