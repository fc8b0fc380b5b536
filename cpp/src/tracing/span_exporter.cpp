#include "kafka_llm/tracing/span_exporter.hpp"

#include <algorithm>

#include "kafka_llm/common/log.hpp"
#include "kafka_llm/http/curl_handles.hpp"
#include "kafka_llm/tracing/otlp_json.hpp"

namespace kafka_llm::tracing {

namespace {
std::size_t discard_body(char* /*data*/, std::size_t size, std::size_t count, void* /*user*/) {
  return size * count;
}
}  // namespace

SpanExporter::SpanExporter(ExporterOptions options, metrics::PipelineMetrics& metrics)
    : options_(std::move(options)), metrics_(metrics) {
  options_.max_batch = std::max<std::size_t>(1, options_.max_batch);
  http::ensure_curl_global_init();
  thread_ = std::thread([this] { run(); });
}

SpanExporter::~SpanExporter() {
  stop();
}

void SpanExporter::add(std::vector<Span> spans) {
  std::size_t dropped = 0;
  bool batch_ready = false;
  {
    std::lock_guard lock(mutex_);
    for (auto& span : spans) {
      if (stopping_ || queue_.size() >= options_.max_queue) {
        ++dropped;
        continue;
      }
      queue_.push_back(std::move(span));
    }
    batch_ready = queue_.size() >= options_.max_batch;
  }
  if (dropped > 0) metrics_.spans_dropped("queue_full", dropped);
  if (batch_ready) wake_.notify_one();
}

void SpanExporter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpanExporter::run() {
  bool failing = false;
  std::vector<Span> batch;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, options_.interval,
                   [this] { return stopping_ || queue_.size() >= options_.max_batch; });
    // Once stopping, what is queued still goes out, batch after batch.
    while (!queue_.empty()) {
      const std::size_t n = std::min(queue_.size(), options_.max_batch);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      lock.unlock();
      std::string error;
      if (send(encode_otlp_json(batch, options_.service_name), error)) {
        metrics_.spans_exported(batch.size());
        if (failing) log(LogLevel::kInfo, "trace spans are exported again");
        failing = false;
      } else {
        metrics_.spans_dropped("export_failed", batch.size());
        if (!failing)
          log(LogLevel::kWarning, "trace span export to " + options_.endpoint + " failed: " + error);
        failing = true;
      }
      batch.clear();
      lock.lock();
      if (!stopping_ && queue_.size() < options_.max_batch) break;
    }
    if (stopping_ && queue_.empty()) return;
  }
}

bool SpanExporter::send(const std::string& body, std::string& error) {
  const http::EasyHandle easy = http::make_easy_handle();
  http::SlistHandle headers;
  http::append(headers, "Content-Type: application/json");
  http::append(headers, "Expect:");
  CURL* e = easy.get();
  curl_easy_setopt(e, CURLOPT_URL, options_.endpoint.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard_body);
  const CURLcode code = curl_easy_perform(e);
  if (code != CURLE_OK) {
    error = curl_easy_strerror(code);
    return false;
  }
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    error = "HTTP status " + std::to_string(status);
    return false;
  }
  return true;
}

}  // namespace kafka_llm::tracing
