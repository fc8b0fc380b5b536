#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kafka_llm::policy {

/// The cancellations a worker remembers (docs/guarantees.md, "Cancellation"), as a pure policy: a
/// request id cancelled at some time stays cancelled for `retention`, so that a request consumed
/// later (it was queued, or it is redelivered) is skipped instead of run. Times are epoch ms passed
/// in by the caller (the cancel record's timestamp, and now).
///
/// Memory is bounded: past `max_entries` the oldest entries are forgotten first. Complexity: O(1)
/// amortized per call. Not thread-safe.
class CancelRegistry {
 public:
  /// One million ids of 36 bytes cost about 150 MB; a worker rarely needs a fraction of that.
  static constexpr std::size_t kDefaultMaxEntries = 200'000;

  explicit CancelRegistry(std::chrono::milliseconds retention,
                          std::size_t max_entries = kDefaultMaxEntries) noexcept;

  /// Remembers that `request_id` was cancelled at `at_ms` for `reason`. Returns false (and changes
  /// nothing) when it is already remembered, or when `at_ms` is older than the retention at `now_ms`.
  bool add(const std::string& request_id, std::string reason, std::int64_t at_ms, std::int64_t now_ms);

  /// The reason `request_id` was cancelled, or null when it is not (or no longer) remembered at
  /// `now_ms`. The pointer is valid until the next add() or expire().
  const std::string* find(std::string_view request_id, std::int64_t now_ms) const;

  /// Forgets the entries older than the retention at `now_ms`.
  void expire(std::int64_t now_ms);

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    std::string reason;
    std::int64_t at_ms = 0;
  };
  bool expired(std::int64_t at_ms, std::int64_t now_ms) const noexcept;
  void forget_oldest();

  std::chrono::milliseconds retention_;
  std::size_t max_entries_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> order_;  ///< ids in the order they were added (oldest first)
};

}  // namespace kafka_llm::policy
