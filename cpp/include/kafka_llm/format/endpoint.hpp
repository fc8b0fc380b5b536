#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kafka_llm::format {

/// The OpenAI-style API a request addresses (`path` in docs/formats.md, "Request envelope").
enum class Endpoint : std::uint8_t {
  kCompletions,      ///< /v1/completions (the default path)
  kChatCompletions,  ///< /v1/chat/completions
  kEmbeddings,       ///< /v1/embeddings
};

/// The path used when a request has none.
inline constexpr std::string_view kDefaultRequestPath = "/v1/completions";

/// Every accepted path, in the order error messages list them.
inline constexpr std::array<std::string_view, 3> kAcceptedRequestPaths = {
    "/v1/completions", "/v1/chat/completions", "/v1/embeddings"};

/// The normalized path of `endpoint`, e.g. "/v1/chat/completions". Views static storage.
std::string_view endpoint_path(Endpoint endpoint) noexcept;

/// The endpoint of an already normalized path (exact, case-sensitive match), or nullopt.
std::optional<Endpoint> endpoint_from_path(std::string_view normalized_path) noexcept;

}  // namespace kafka_llm::format
