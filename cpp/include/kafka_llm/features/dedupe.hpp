#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "kafka_llm/format/result_record.hpp"

namespace kafka_llm::features {

/// `<prefix>:dedupe:<scope>:<hex SHA-256 of prompt_hash, model and provider>`: the Redis key two
/// requests share when the same prompt (after template and redaction) goes to the same model of
/// the same provider. `scope` keeps streams apart (the pipeline uses the consumer group).
std::string dedupe_key(std::string_view prefix, std::string_view scope, std::string_view prompt_hash,
                       std::string_view model, std::string_view provider);

/// Claims KEYS[1] for ARGV[1] (a request id) for ARGV[2] ms unless another request holds it:
/// returns the holder's id, or nil when the caller holds it now (set now, or already its own).
inline constexpr std::string_view kDedupeClaimScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
)lua";

/// What a request whose prompt an earlier request already claimed does next.
enum class DedupeAction : std::uint8_t {
  kServe,         ///< the earlier result is done: serve it, no provider call
  kWait,          ///< the earlier request is still pending: look again after a while
  kCallProvider,  ///< the earlier result errored or is gone (expired, never stored): call the provider
};

/// The decision from the earlier request's stored result (nullptr when there is none).
DedupeAction decide_dedupe(const format::ResultRecord* earlier) noexcept;

/// The delay before the `polls`-th look (0-based) at a pending earlier result: 25 ms doubling
/// up to 400 ms, so a quick provider is followed closely and a slow one costs few Redis calls.
std::chrono::milliseconds dedupe_poll_delay(int polls) noexcept;

}  // namespace kafka_llm::features
