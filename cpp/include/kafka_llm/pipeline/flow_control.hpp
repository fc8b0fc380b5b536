#pragma once

#include <cstddef>
#include <cstdint>

namespace kafka_llm::pipeline {

/// What the consumer of a stream should do with its partitions.
enum class FlowDecision : std::uint8_t { kKeep, kPause, kResume };

/// Backpressure of one stream as a pure policy (docs/architecture.md, "Partition flow"): records
/// beyond the in-flight window (`maxHandlers`) wait in a backlog, and the partitions are paused only
/// when the backlog reaches max(maxHandlers, min_backlog) records and resumed when half of that is
/// left. Pausing is expensive: librdkafka drops what it prefetched for the paused partitions, and after
/// the resume their next fetch may wait behind a long-poll fetch already in flight, so the backlog
/// keeps enough work to cover that round trip even with a small window.
class FlowControl {
 public:
  /// A record in the backlog costs its payload plus about 300 bytes.
  static constexpr std::size_t kMinBacklog = 1024;

  explicit FlowControl(std::size_t max_handlers, std::size_t min_backlog = kMinBacklog) noexcept;

  /// Whether a consumed record may start now (else it joins the backlog): a slot is free in the
  /// window and no earlier record is waiting.
  bool may_start(std::size_t in_flight, std::size_t backlog) const noexcept {
    return in_flight < max_handlers_ && backlog == 0;
  }
  /// Whether the next backlog record may take a slot.
  bool has_slot(std::size_t in_flight) const noexcept { return in_flight < max_handlers_; }
  /// The change the consumer should make given whether it is `paused` and the backlog's size.
  FlowDecision decide(bool paused, std::size_t backlog) const noexcept;

  std::size_t high_water() const noexcept { return high_; }
  std::size_t low_water() const noexcept { return low_; }

 private:
  std::size_t max_handlers_;
  std::size_t high_;
  std::size_t low_;
};

}  // namespace kafka_llm::pipeline
