#include "kafka_llm/policy/cancel_registry.hpp"

namespace kafka_llm::policy {

CancelRegistry::CancelRegistry(std::chrono::milliseconds retention, std::size_t max_entries) noexcept
    : retention_(retention), max_entries_(max_entries == 0 ? 1 : max_entries) {}

bool CancelRegistry::expired(std::int64_t at_ms, std::int64_t now_ms) const noexcept {
  return now_ms - at_ms >= retention_.count();
}

bool CancelRegistry::add(const std::string& request_id, std::string reason, std::int64_t at_ms,
                         std::int64_t now_ms) {
  if (expired(at_ms, now_ms)) return false;
  auto [it, inserted] = entries_.try_emplace(request_id, Entry{std::move(reason), at_ms});
  if (!inserted) return false;
  order_.push_back(request_id);
  while (entries_.size() > max_entries_) forget_oldest();
  return true;
}

const std::string* CancelRegistry::find(std::string_view request_id, std::int64_t now_ms) const {
  auto it = entries_.find(std::string(request_id));
  if (it == entries_.end() || expired(it->second.at_ms, now_ms)) return nullptr;
  return &it->second.reason;
}

void CancelRegistry::expire(std::int64_t now_ms) {
  // Entries are added roughly in time order (a control topic read back after a restart comes first,
  // oldest first); one out of order waits behind a newer one, and find() hides it meanwhile.
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    if (it != entries_.end() && !expired(it->second.at_ms, now_ms)) break;
    forget_oldest();
  }
}

void CancelRegistry::forget_oldest() {
  entries_.erase(order_.front());
  order_.pop_front();
}

}  // namespace kafka_llm::policy
