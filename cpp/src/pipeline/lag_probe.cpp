#include "kafka_llm/pipeline/lag_probe.hpp"

#include <algorithm>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/common/log.hpp"

namespace kafka_llm::pipeline {

namespace {
/// Each broker request may take this long; it also bounds how long the destructor waits.
constexpr int kRequestTimeoutMs = 2000;
}  // namespace

std::int64_t committed_lag(std::int64_t low, std::int64_t high, std::int64_t committed) noexcept {
  const std::int64_t from = committed >= 0 ? committed : low;
  return std::max<std::int64_t>(0, high - from);
}

LagProbe::LagProbe(std::chrono::milliseconds interval, Report report)
    : interval_(interval), report_(std::move(report)) {
  thread_ = std::thread([this] {
    std::vector<PartitionLag> lags;
    bool failing = false;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, interval_, [this] { return stopping_; });
      if (stopping_) break;
      const auto targets = targets_;
      lock.unlock();
      lags.clear();
      try {
        for (const auto& target : targets) {
          if (target.partitions.empty() || target.consumer == nullptr) continue;
          const auto committed = target.consumer->committed(target.partitions, kRequestTimeoutMs);
          for (const auto& tp : committed) {
            const auto [low, high] =
                target.consumer->query_watermarks(tp.topic, tp.partition, kRequestTimeoutMs);
            lags.push_back({target.group, {tp.topic, tp.partition, 0}, committed_lag(low, high, tp.offset)});
          }
        }
        if (failing) log(LogLevel::kInfo, "consumer lag queries succeed again");
        failing = false;
        report_(std::move(lags));
      } catch (const Error& e) {
        // The last values stay: a broker that does not answer is no reason to report a lag of zero.
        if (!failing) log(LogLevel::kWarning, std::string("consumer lag query failed: ") + e.what());
        failing = true;
      }
      lock.lock();
    }
  });
}

LagProbe::~LagProbe() {
  stop();
}

void LagProbe::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LagProbe::set_targets(std::vector<Target> targets) {
  std::lock_guard lock(mutex_);
  targets_ = std::move(targets);
}

}  // namespace kafka_llm::pipeline
