#include "kafka_llm/format/prompt_hash.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "json_util.hpp"

namespace kafka_llm::format {

namespace {

static_assert(std::ranges::is_sorted(kPromptHashFields), "canonical_prompt_json merges in byte order");

void append_canonical(std::string& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      // nlohmann::json keeps object members in a std::map, so iteration is already in key order.
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.items()) {
        if (!first) out.push_back(',');
        first = false;
        detail::append_json_string(out, key);
        out.push_back(':');
        append_canonical(out, member);
      }
      out.push_back('}');
      break;
    }
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : value) {
        if (!first) out.push_back(',');
        first = false;
        append_canonical(out, element);
      }
      out.push_back(']');
      break;
    }
    case nlohmann::json::value_t::string:
      detail::append_json_string(out, value.get_ref<const std::string&>());
      break;
    case nlohmann::json::value_t::number_float: {
      const double number = value.get<double>();
      // 2^53: beyond it doubles are not exact integers any more, so keep nlohmann's spelling.
      constexpr double kExactIntegerLimit = 9007199254740992.0;
      if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) <= kExactIntegerLimit) {
        out.append(std::to_string(static_cast<long long>(number)));
      } else {
        detail::append_json_number(out, number);
      }
      break;
    }
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: {
      std::array<char, 24> digits{};
      const auto result =
          value.is_number_unsigned()
              ? std::to_chars(digits.data(), digits.data() + digits.size(), value.get<std::uint64_t>())
              : std::to_chars(digits.data(), digits.data() + digits.size(), value.get<std::int64_t>());
      out.append(digits.data(), static_cast<std::size_t>(result.ptr - digits.data()));
      break;
    }
    case nlohmann::json::value_t::boolean:
      out.append(value.get<bool>() ? "true" : "false");
      break;
    case nlohmann::json::value_t::null:
      out.append("null");
      break;
    default:
      detail::append_json(out, value);
      break;
  }
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  // The algorithm is fetched once and a context kept per thread: EVP_Digest with EVP_sha256()
  // fetches the implementation from the provider on every call, which cost more than the hashing.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ContextDeleter {
    void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
  };
  thread_local const std::unique_ptr<EVP_MD_CTX, ContextDeleter> context(EVP_MD_CTX_new());
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (kSha256 == nullptr || !context || EVP_DigestInit_ex(context.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest.data(), &length) != 1) {
    throw std::runtime_error("OpenSSL SHA-256 failed");
  }
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<std::size_t>(length) * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4U]);
    hex.push_back(kHex[digest[i] & 0x0FU]);
  }
  return hex;
}

std::string canonical_prompt_json(const nlohmann::json& body) {
  std::string out;
  out.push_back('{');
  if (body.is_object()) {
    // Both the body's members (a std::map) and kPromptHashFields are in byte order: one merge.
    bool first = true;
    auto field = kPromptHashFields.begin();
    for (const auto& [key, member] : *body.get_ptr<const nlohmann::json::object_t*>()) {
      while (field != kPromptHashFields.end() && *field < key) ++field;
      if (field == kPromptHashFields.end()) break;
      if (*field != key || member.is_null()) continue;
      if (!first) out.push_back(',');
      first = false;
      detail::append_json_string(out, key);
      out.push_back(':');
      append_canonical(out, member);
    }
  }
  out.push_back('}');
  return out;
}

std::string prompt_hash(const nlohmann::json& body) {
  return sha256_hex(canonical_prompt_json(body));
}

}  // namespace kafka_llm::format
