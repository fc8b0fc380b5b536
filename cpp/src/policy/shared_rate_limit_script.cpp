#include "kafka_llm/policy/shared_rate_limit_script.hpp"

#include <algorithm>

namespace kafka_llm::policy {

std::vector<std::string> shared_rate_limit_argv(std::chrono::system_clock::time_point now,
                                                SharedRateLimitMode mode,
                                                std::span<const SharedBucketOp> ops) {
  constexpr std::int64_t kTtlMarginMs = 1000;
  std::int64_t ttl_ms = 0;
  for (const auto& op : ops) {
    validate(op.config);
    ttl_ms = std::max(ttl_ms, bucket_full_refill_ms(op.config));
  }
  std::vector<std::string> argv;
  argv.reserve(3 + 4 * ops.size());
  argv.push_back(
      std::to_string(std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count()));
  argv.emplace_back(mode == SharedRateLimitMode::kTake ? "take" : "charge");
  argv.push_back(std::to_string(ttl_ms + kTtlMarginMs));
  for (const auto& op : ops) {
    argv.push_back(std::to_string(op.config.capacity));
    argv.push_back(std::to_string(op.config.refill_amount));
    argv.push_back(std::to_string(op.config.refill_period.count()));
    argv.push_back(std::to_string(op.tokens));
  }
  return argv;
}

}  // namespace kafka_llm::policy
