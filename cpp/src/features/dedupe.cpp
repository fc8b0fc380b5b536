#include "kafka_llm/features/dedupe.hpp"

#include <algorithm>

#include "kafka_llm/format/prompt_hash.hpp"

namespace kafka_llm::features {

std::string dedupe_key(std::string_view prefix, std::string_view scope, std::string_view prompt_hash,
                       std::string_view model, std::string_view provider) {
  // Length-prefixed parts: no two different (hash, model, provider) triples share the material.
  std::string material;
  material.reserve(prompt_hash.size() + model.size() + provider.size() + 32);
  for (std::string_view part : {prompt_hash, model, provider}) {
    material.append(std::to_string(part.size())).push_back(':');
    material.append(part).push_back('\n');
  }
  std::string key;
  key.reserve(prefix.size() + scope.size() + 64 + 10);
  key.append(prefix).append(":dedupe:").append(scope).push_back(':');
  key.append(format::sha256_hex(material));
  return key;
}

DedupeAction decide_dedupe(const format::ResultRecord* earlier) noexcept {
  if (earlier == nullptr) return DedupeAction::kCallProvider;
  switch (earlier->status) {
    case format::ResultStatus::kDone:
      return DedupeAction::kServe;
    case format::ResultStatus::kPending:
      return DedupeAction::kWait;
    case format::ResultStatus::kError:
    case format::ResultStatus::kCancelled:  // the holder's client gave up; this request still wants an answer
      return DedupeAction::kCallProvider;
  }
  return DedupeAction::kCallProvider;
}

std::chrono::milliseconds dedupe_poll_delay(int polls) noexcept {
  constexpr int kFirstMs = 25;
  constexpr int kMaxMs = 400;
  const int shift = std::clamp(polls, 0, 8);
  return std::chrono::milliseconds(std::min(kMaxMs, kFirstMs << shift));
}

}  // namespace kafka_llm::features
