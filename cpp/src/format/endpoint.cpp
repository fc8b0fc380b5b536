#include "kafka_llm/format/endpoint.hpp"

namespace kafka_llm::format {

std::string_view endpoint_path(Endpoint endpoint) noexcept {
  switch (endpoint) {
    case Endpoint::kCompletions:
      return kAcceptedRequestPaths[0];
    case Endpoint::kChatCompletions:
      return kAcceptedRequestPaths[1];
    case Endpoint::kEmbeddings:
      return kAcceptedRequestPaths[2];
  }
  return kDefaultRequestPath;
}

std::optional<Endpoint> endpoint_from_path(std::string_view normalized_path) noexcept {
  if (normalized_path == kAcceptedRequestPaths[0]) return Endpoint::kCompletions;
  if (normalized_path == kAcceptedRequestPaths[1]) return Endpoint::kChatCompletions;
  if (normalized_path == kAcceptedRequestPaths[2]) return Endpoint::kEmbeddings;
  return std::nullopt;
}

}  // namespace kafka_llm::format
