#include "kafka_llm/pipeline/result_store.hpp"

#include "kafka_llm/features/dedupe.hpp"

namespace kafka_llm::pipeline {

namespace {

// Writes a result record unless the stored one is final (done or cancelled), in one round trip:
// returns the stored record when it is final, else stores ARGV[1] (TTL ARGV[2] ms) and returns nil.
// With ARGV[3] (a prompt hash), a final record counts only when it was for that prompt: a replay
// under another prompt template version replaces it. is_done_record() is the same test in C++.
constexpr std::string_view kStoreUnlessDoneScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v and (string.sub(v, 1, 17) == '{"status":"done",' or string.sub(v, 1, 22) == '{"status":"cancelled",') and
   (not ARGV[3] or ARGV[3] == '' or string.find(v, '"prompt_hash":"' .. ARGV[3] .. '"', 1, true)) then
  return v
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
)lua";

// A stored done record (as the reply's text) for the handler, or "stored" when it does not parse.
StoreReply done_reply(const std::string& stored) {
  auto parsed = format::parse_result(stored);
  if (auto* record = std::get_if<format::ResultRecord>(&parsed)) {
    return StoreReply{StoreOutcome::kAlreadyDone, std::move(*record)};
  }
  return StoreReply{StoreOutcome::kStored, std::nullopt};
}

}  // namespace

bool is_done_record(std::string_view stored, std::string_view prompt_hash) {
  if (!stored.starts_with(R"({"status":"done",)") && !stored.starts_with(R"({"status":"cancelled",)"))
    return false;
  if (prompt_hash.empty()) return true;
  std::string member = R"("prompt_hash":")";
  member.append(prompt_hash).push_back('"');
  return stored.find(member) != std::string_view::npos;
}

ResultStore::ResultStore(redis::RedisClient& redis, const RedisConfig& config)
    : redis_(redis),
      config_(config),
      ttl_(std::to_string(config.result_ttl.count())),
      store_unless_done_script_{std::string(kStoreUnlessDoneScript)} {}

void ResultStore::claim(const format::ResultRecord& pending, StoreHandler done) {
  std::string key = format::result_key(config_.key_prefix, pending.request_id);
  std::string value = format::serialize_result(pending);
  std::string prompt_hash = pending.prompt_hash.value_or("");
  if (!claim_with_set_nx_get_) {
    eval_store(key, value, prompt_hash, std::move(done));
    return;
  }
  redis_.command({"SET", key, value, "NX", "PX", ttl_, "GET"},
                 [this, key, value, prompt_hash, done = std::move(done)](redis::RedisReply&& reply) mutable {
                   if (!reply.ok()) {
                     if (reply.transport_error) {
                       done(StoreReply{});
                       return;
                     }
                     // Redis before 7.0 does not take NX and GET together: the script does it all from now
                     // on.
                     claim_with_set_nx_get_ = false;
                     eval_store(key, value, prompt_hash, std::move(done));
                     return;
                   }
                   if (reply.type != redis::RedisReply::Type::kString) {
                     done(StoreReply{StoreOutcome::kStored, std::nullopt});
                     return;
                   }
                   if (is_done_record(reply.str, prompt_hash)) {
                     auto answer = done_reply(reply.str);
                     if (answer.outcome == StoreOutcome::kAlreadyDone) {
                       done(std::move(answer));
                       return;
                     }
                   }
                   // The record of an earlier attempt (pending or error): replaced unless it became done.
                   eval_store(key, value, prompt_hash, std::move(done));
                 });
}

void ResultStore::store_unless_done(const format::ResultRecord& record, StoreHandler done) {
  eval_store(format::result_key(config_.key_prefix, record.request_id), format::serialize_result(record),
             record.prompt_hash.value_or(""), std::move(done));
}

void ResultStore::eval_store(const std::string& key, const std::string& value, const std::string& prompt_hash,
                             StoreHandler done) {
  redis_.eval(store_unless_done_script_, {"1", key, value, ttl_, prompt_hash},
              [done = std::move(done)](redis::RedisReply&& reply) {
                if (!reply.ok()) {
                  done(StoreReply{});
                  return;
                }
                if (reply.type == redis::RedisReply::Type::kString) {
                  done(done_reply(reply.str));
                  return;
                }
                done(StoreReply{StoreOutcome::kStored, std::nullopt});
              });
}

void ResultStore::dedupe_claim(const std::string& key, const std::string& request_id, Millis window,
                               HolderHandler done) {
  const std::string ms = std::to_string(window.count());
  redis_.command({"EVAL", features::kDedupeClaimScript, "1", key, request_id, ms},
                 [done = std::move(done)](redis::RedisReply&& reply) {
                   if (!reply.ok()) {
                     done(false, std::nullopt);
                     return;
                   }
                   if (reply.type != redis::RedisReply::Type::kString) {
                     done(true, std::nullopt);
                     return;
                   }
                   done(true, std::move(reply.str));
                 });
}

void ResultStore::look_up(const std::string& request_id, ResultHandler done) {
  redis_.command({"GET", format::result_key(config_.key_prefix, request_id)},
                 [done = std::move(done)](redis::RedisReply&& reply) {
                   if (!reply.ok()) {
                     done(false, std::nullopt);
                     return;
                   }
                   std::optional<format::ResultRecord> record;
                   if (reply.type == redis::RedisReply::Type::kString) {
                     auto stored = format::parse_result(reply.str);
                     if (auto* parsed = std::get_if<format::ResultRecord>(&stored))
                       record = std::move(*parsed);
                   }
                   done(true, std::move(record));
                 });
}

void ResultStore::dedupe_take_over(const std::string& key, const std::string& request_id, Millis window) {
  redis_.command({"SET", key, request_id, "PX", std::to_string(window.count())}, [](redis::RedisReply&&) {});
}

}  // namespace kafka_llm::pipeline
