#pragma once

#include <string>
#include <variant>

namespace kafka_llm::format {

/// Why a piece of wire data could not be read or built: a human-readable message that names the
/// offending field (for example `choices[0].message must be an object (got string)`).
struct FormatError {
  std::string message;

  bool operator==(const FormatError&) const = default;
};

/// The outcome of a format operation: the value, or a FormatError. Never an exception.
template <class T>
using FormatResult = std::variant<T, FormatError>;

}  // namespace kafka_llm::format
