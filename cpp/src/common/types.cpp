#include "kafka_llm/common/types.hpp"

#include <algorithm>
#include <cctype>

namespace kafka_llm {

namespace {
bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

const std::string* find_header(const HeaderList& headers, std::string_view name) noexcept {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return &value;
  }
  return nullptr;
}

std::string_view to_string(ErrorClass error_class) noexcept {
  switch (error_class) {
    case ErrorClass::kRetriesExhausted:
      return "retries_exhausted";
    case ErrorClass::kNonRetryable:
      return "non_retryable";
    case ErrorClass::kPoison:
      return "poison";
    case ErrorClass::kSchemaViolation:
      return "schema_violation";
    case ErrorClass::kTimeout:
      return "timeout";
    case ErrorClass::kExpired:
      return "expired";
  }
  return "unknown";
}

}  // namespace kafka_llm
