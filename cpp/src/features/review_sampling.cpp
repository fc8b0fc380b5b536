#include "kafka_llm/features/review_sampling.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <stdexcept>

namespace kafka_llm::features {

double sample_point(std::string_view request_id) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(request_id.data(), request_id.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL EVP_Digest(SHA-256) failed");
  }
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value = (value << 8U) | digest[i];
  return static_cast<double>(value) / 18446744073709551616.0;  // 2^64
}

bool sampled_for_review(std::string_view request_id, double rate) {
  if (rate <= 0.0) return false;
  if (rate >= 1.0) return true;
  return sample_point(request_id) < rate;
}

}  // namespace kafka_llm::features
