#pragma once

#include <string_view>

namespace kafka_llm::features {

/// Where `request_id` falls in [0, 1): the first 8 bytes of SHA-256(request_id) read as a
/// big-endian unsigned integer, divided by 2^64. The same id always gets the same point, on every
/// worker and in every language (Python: int.from_bytes(sha256(id).digest()[:8], "big") / 2**64).
double sample_point(std::string_view request_id);

/// Whether a successful output of `request_id` goes to the human-review topic: sample_point < rate.
/// So replays and redeliveries sample the same ids; rate 0 samples nothing, rate 1 everything.
bool sampled_for_review(std::string_view request_id, double rate);

}  // namespace kafka_llm::features
