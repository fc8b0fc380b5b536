#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/format/format_error.hpp"

namespace kafka_llm::format {

/// A record of a stream's control topic (docs/formats.md, "Cancel record"): which request to
/// cancel, and why.
struct CancelRecord {
  std::string request_id;
  std::string reason;  ///< "" when the record gives none

  bool operator==(const CancelRecord&) const = default;
};

/// Longest request id and reason read from a cancel record; longer ones are refused or cut.
inline constexpr std::size_t kMaxCancelIdBytes = 512;
inline constexpr std::size_t kMaxCancelReasonBytes = 200;

/// Reads a cancel record: the request id is the value's `request_id` (a non-empty string) or else
/// the record's key; the value is empty or a JSON object whose optional `reason` is a string (cut
/// to kMaxCancelReasonBytes). A value that is not an object, a `request_id` or `reason` of the
/// wrong type, a key and a `request_id` that disagree, no id at all, or an id that is not UTF-8 or
/// is longer than kMaxCancelIdBytes is a FormatError naming the problem. Never throws except
/// std::bad_alloc.
FormatResult<CancelRecord> parse_cancel_record(std::optional<std::string_view> key, std::string_view value);

/// The value of a cancel record: `{"request_id":…,"reason":…}` (reason omitted when empty).
std::string serialize_cancel_record(const CancelRecord& record);

}  // namespace kafka_llm::format
