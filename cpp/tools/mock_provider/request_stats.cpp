#include "request_stats.hpp"

#include "json_writer.hpp"

namespace kafka_llm::mock_provider {

std::uint64_t RequestStats::record_request(std::string_view request_id) {
  std::lock_guard lock(mutex_);
  ++total_;
  auto it = by_request_id_.find(request_id);
  if (it == by_request_id_.end()) it = by_request_id_.emplace(std::string(request_id), 0).first;
  return ++it->second;
}

void RequestStats::record_status(unsigned status) {
  std::lock_guard lock(mutex_);
  ++by_status_[status];
}

void RequestStats::record_fault(std::string_view fault) {
  std::lock_guard lock(mutex_);
  auto it = by_fault_.find(fault);
  if (it == by_fault_.end()) it = by_fault_.emplace(std::string(fault), 0).first;
  ++it->second;
}

std::string RequestStats::to_json() const {
  std::string out;
  JsonWriter writer(out);
  std::lock_guard lock(mutex_);
  writer.begin_object()
      .key("total")
      .integer(static_cast<std::int64_t>(total_))
      .key("by_status")
      .begin_object();
  for (const auto& [status, count] : by_status_) {
    writer.key(std::to_string(status)).integer(static_cast<std::int64_t>(count));
  }
  writer.end_object().key("by_request_id").begin_object();
  for (const auto& [id, count] : by_request_id_) writer.key(id).integer(static_cast<std::int64_t>(count));
  writer.end_object().key("by_fault").begin_object();
  for (const auto& [fault, count] : by_fault_) writer.key(fault).integer(static_cast<std::int64_t>(count));
  writer.end_object().end_object();
  return out;
}

void RequestStats::record_body(std::string_view request_id, std::string_view body) {
  std::lock_guard lock(mutex_);
  auto it = bodies_.find(request_id);
  if (it == bodies_.end()) it = bodies_.emplace(std::string(request_id), std::vector<std::string>{}).first;
  if (it->second.size() == kMaxBodiesPerId) it->second.erase(it->second.begin());
  it->second.emplace_back(body.substr(0, kMaxBodyBytes));
}

std::string RequestStats::request_json(std::string_view request_id) const {
  std::string out;
  JsonWriter writer(out);
  std::lock_guard lock(mutex_);
  std::uint64_t count = 0;
  if (auto it = by_request_id_.find(request_id); it != by_request_id_.end()) count = it->second;
  writer.begin_object()
      .key("request_id")
      .string(request_id)
      .key("count")
      .integer(static_cast<std::int64_t>(count))
      .key("bodies")
      .begin_array();
  if (auto it = bodies_.find(request_id); it != bodies_.end()) {
    for (const auto& body : it->second) writer.string(body);
  }
  writer.end_array().end_object();
  return out;
}

void RequestStats::reset() {
  std::lock_guard lock(mutex_);
  total_ = 0;
  by_request_id_.clear();
  bodies_.clear();
  by_status_.clear();
  by_fault_.clear();
}

}  // namespace kafka_llm::mock_provider
