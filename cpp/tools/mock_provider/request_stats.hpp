#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kafka_llm::mock_provider {

/// Counts the `/v1/*` requests the mock has seen. Thread-safe; shared by all I/O threads.
/// Memory grows with the number of distinct request ids until reset().
class RequestStats {
 public:
  /// Counts a request and returns how many requests, this one included, carried `request_id`
  /// since the last reset ("" for requests without an id).
  std::uint64_t record_request(std::string_view request_id);

  /// Counts a response status that was sent (or started, for streams).
  void record_status(unsigned status);

  /// Counts an injected fault by name ("429", "hang", "reset", ...).
  void record_fault(std::string_view fault);

  /// `{"total", "by_status", "by_request_id", "by_fault"}`.
  std::string to_json() const;

  /// Keeps a request body (the last kMaxBodiesPerId per id, each cut to kMaxBodyBytes) for
  /// request_json; only requests that ask for it (`mock.record_body`) are kept.
  void record_body(std::string_view request_id, std::string_view body);

  /// `{"request_id", "count", "bodies"}` for one id (count 0 and no bodies when never seen);
  /// `bodies` lists the recorded request bodies as strings, oldest first.
  std::string request_json(std::string_view request_id) const;

  static constexpr std::size_t kMaxBodiesPerId = 16;
  static constexpr std::size_t kMaxBodyBytes = std::size_t{64} * 1024;

  void reset();

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };

  mutable std::mutex mutex_;
  std::uint64_t total_ = 0;
  std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>> by_request_id_;
  std::map<unsigned, std::uint64_t> by_status_;
  std::unordered_map<std::string, std::vector<std::string>, StringHash, std::equal_to<>> bodies_;
  std::map<std::string, std::uint64_t, std::less<>> by_fault_;
};

}  // namespace kafka_llm::mock_provider
