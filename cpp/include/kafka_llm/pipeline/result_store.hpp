#pragma once

#include <functional>
#include <optional>
#include <string>

#include "kafka_llm/format/result_record.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"
#include "kafka_llm/pipeline/request_fsm.hpp"
#include "kafka_llm/redis/redis_client.hpp"

namespace kafka_llm::pipeline {

/// The requests' results in Redis (docs/formats.md, "Redis result record"): the claim on receipt,
/// the outcome at the end and the dedupe keys. Every write is "unless already done": a done record
/// for the same prompt hash is never replaced, so a result never changes once readers can see it.
/// Runs on the io thread; the handlers are called there, once each, also when Redis fails.
class ResultStore {
 public:
  using StoreHandler = std::function<void(StoreReply)>;
  using HolderHandler = std::function<void(bool ok, std::optional<std::string> holder)>;
  using ResultHandler = std::function<void(bool ok, std::optional<format::ResultRecord> record)>;

  /// `redis` must outlive the store.
  ResultStore(redis::RedisClient& redis, const RedisConfig& config);

  /// Stores `pending` unless a done record for its prompt is there. With SET … NX GET, which needs no
  /// script for the usual new key; the script when a record of an earlier attempt is there, or
  /// from then on when Redis (< 7.0) rejects NX with GET.
  void claim(const format::ResultRecord& pending, StoreHandler done);
  /// Stores `record` unless a done record for its prompt is there (one round trip).
  void store_unless_done(const format::ResultRecord& record, StoreHandler done);
  /// Claims the dedupe `key` for `request_id` unless another request holds it.
  void dedupe_claim(const std::string& key, const std::string& request_id, Millis window, HolderHandler done);
  /// The stored result of `request_id`, if any.
  void look_up(const std::string& request_id, ResultHandler done);
  /// Makes `request_id` the holder of `key` (fire and forget).
  void dedupe_take_over(const std::string& key, const std::string& request_id, Millis window);

 private:
  void eval_store(const std::string& key, const std::string& value, const std::string& prompt_hash,
                  StoreHandler done);

  redis::RedisClient& redis_;
  const RedisConfig& config_;
  const std::string ttl_;
  const redis::RedisScript store_unless_done_script_;
  bool claim_with_set_nx_get_ = true;  ///< false once Redis rejected SET … NX … GET
};

/// Whether a stored record is the final answer (done, or cancelled) to a request whose prompt hash
/// is `prompt_hash` (any final record when it is empty), as the store-unless-done script decides.
bool is_done_record(std::string_view stored, std::string_view prompt_hash);

}  // namespace kafka_llm::pipeline
