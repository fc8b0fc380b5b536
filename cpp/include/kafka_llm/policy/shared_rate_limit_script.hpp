#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kafka_llm/policy/token_bucket.hpp"

namespace kafka_llm::policy {

/// The Redis Lua script of the shared rate limiter (`shared: true`, docs/guarantees.md): one EVAL/EVALSHA
/// checks and takes from several buckets atomically, so a limit holds across every worker.
/// It mirrors bucket_full / bucket_refill / bucket_wait_ms / bucket_charge (token_bucket.hpp)
/// line by line; all values are integers below 2^53, exact in Lua's doubles.
///
/// KEYS[i]: one hash per bucket, fields `u` (units) and `t` (last refill, ms). In Redis Cluster,
///          give all keys of one call the same hash tag, e.g. `kafka-llm:rl:{openai/gpt-4o}:rpm`.
/// ARGV:    see shared_rate_limit_argv(): now_ms, mode ("take" | "charge"), ttl_ms, then
///          capacity, refill_amount, refill_period_ms, tokens for each key in order.
///          now_ms must be the same clock on every worker (system_clock milliseconds); a reading
///          behind the stored one refills nothing.
/// Returns: "take": 0 when every bucket had enough and all were charged, else the longest wait
///          in ms and nothing is charged. "charge": always charges (tokens may be negative) and
///          returns 0. Every touched key gets its state written back and a PEXPIRE of ttl_ms.
inline constexpr std::string_view kSharedRateLimitScript = R"lua(
local now = tonumber(ARGV[1])
local mode = ARGV[2]
local ttl = tonumber(ARGV[3])
local function ceil_div(a, b)
  local q = math.floor(a / b)
  while q * b < a do q = q + 1 end
  while (q - 1) * b >= a do q = q - 1 end
  return q
end
local buckets = {}
local wait = 0
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local b = {capacity = tonumber(ARGV[base + 1]), refill = tonumber(ARGV[base + 2]),
             period = tonumber(ARGV[base + 3]), tokens = tonumber(ARGV[base + 4])}
  b.full = b.capacity * b.period
  local saved = redis.call('HMGET', KEYS[i], 'u', 't')
  b.units, b.last = tonumber(saved[1]), tonumber(saved[2])
  if b.units == nil or b.last == nil then
    b.units, b.last = b.full, now
  end
  if now > b.last then
    local elapsed = math.min(now - b.last, ceil_div(2 * b.full, b.refill))
    b.units = math.min(b.full, b.units + elapsed * b.refill)
    b.last = now
  end
  if mode == 'take' then
    local need = math.max(0, math.min(b.tokens, b.capacity)) * b.period
    if b.units < need then
      wait = math.max(wait, ceil_div(need - b.units, b.refill))
    end
  end
  buckets[i] = b
end
if wait == 0 then
  for i = 1, #KEYS do
    local b = buckets[i]
    local tokens = b.tokens
    if mode == 'take' then tokens = math.max(0, tokens) end
    tokens = math.max(-2 * b.capacity, math.min(2 * b.capacity, tokens))
    b.units = math.max(-b.full, math.min(b.full, b.units - tokens * b.period))
  end
end
for i = 1, #KEYS do
  local b = buckets[i]
  redis.call('HSET', KEYS[i], 'u', string.format('%.17g', b.units), 't', string.format('%.17g', b.last))
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return wait
)lua";

/// What kSharedRateLimitScript does with its buckets.
enum class SharedRateLimitMode : std::uint8_t {
  kTake,    ///< All or nothing; returns the wait when something is short.
  kCharge,  ///< Unconditional correction (settle / refund).
};

/// One bucket of a shared rate-limit call: its limits and the tokens to take or charge.
struct SharedBucketOp {
  TokenBucketConfig config;
  std::int64_t tokens = 0;
};

/// The ARGV of one kSharedRateLimitScript call, for KEYS naming the buckets of `ops` in order.
/// ttl_ms is the longest bucket_full_refill_ms of `ops` plus one second: a key idle that long is
/// full, so letting it expire changes nothing. Throws std::invalid_argument for an invalid config.
std::vector<std::string> shared_rate_limit_argv(std::chrono::system_clock::time_point now,
                                                SharedRateLimitMode mode,
                                                std::span<const SharedBucketOp> ops);

}  // namespace kafka_llm::policy
