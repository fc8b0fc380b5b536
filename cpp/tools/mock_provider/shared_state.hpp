#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "options.hpp"
#include "request_stats.hpp"

namespace kafka_llm::mock_provider {

/// The runtime knobs, changed by `POST /admin/config`. Readers keep a copy and compare
/// version() with the version of their copy, so the per-request cost is one atomic load.
class ConfigStore {
 public:
  explicit ConfigStore(const ProviderConfig& config) : config_(config) {}

  ProviderConfig get() const {
    std::lock_guard lock(mutex_);
    return config_;
  }

  void set(const ProviderConfig& config) {
    std::lock_guard lock(mutex_);
    config_ = config;
    version_.fetch_add(1, std::memory_order_release);
  }

  /// Changes whenever set() is called; starts at 1.
  std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  ProviderConfig config_;
  std::atomic<std::uint64_t> version_{1};
};

/// What all I/O threads share. Owned by the server; outlives every connection.
struct SharedState {
  explicit SharedState(const ProviderConfig& initial) : config(initial) {}

  ConfigStore config;
  RequestStats stats;
  std::atomic<std::uint64_t> sequence{0};  ///< numbers the response ids
};

}  // namespace kafka_llm::mock_provider
