#pragma once

#include <chrono>
#include <cstdint>

namespace kafka_llm::pipeline {

/// The two clocks a request's life is measured by: the steady clock for deadlines, waits and
/// latencies, the system clock for the epoch times written into records (and HTTP-date
/// Retry-After hints). Injected so that tests drive time.
class Clock {
 public:
  Clock() = default;
  virtual ~Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  Clock(Clock&&) = delete;
  Clock& operator=(Clock&&) = delete;

  virtual std::chrono::steady_clock::time_point steady() const = 0;
  virtual std::chrono::system_clock::time_point system() const = 0;
  /// system() as milliseconds since the epoch.
  std::int64_t system_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(system().time_since_epoch()).count();
  }
};

/// The machine's clocks.
class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point steady() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point system() const override { return std::chrono::system_clock::now(); }
};

}  // namespace kafka_llm::pipeline
