#include "kafka_llm/format/cancel_record.hpp"

#include <nlohmann/json.hpp>

#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {

namespace {
constexpr std::size_t kMaxDepth = 8;
}  // namespace

FormatResult<CancelRecord> parse_cancel_record(std::optional<std::string_view> key, std::string_view value) {
  CancelRecord record;
  if (key && !key->empty()) record.request_id = std::string(*key);
  if (!value.empty()) {
    nlohmann::json doc;
    if (read_json_document(value, doc, kMaxDepth) != JsonReadStatus::kOk || !doc.is_object()) {
      return FormatError{"a cancel record's value must be empty or a JSON object"};
    }
    if (auto it = doc.find("request_id"); it != doc.end() && !it->is_null()) {
      if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
        return FormatError{"request_id must be a non-empty string"};
      }
      const auto& id = it->get_ref<const std::string&>();
      if (!record.request_id.empty() && record.request_id != id) {
        return FormatError{"the record's key and its request_id name different requests"};
      }
      record.request_id = id;
    }
    if (auto it = doc.find("reason"); it != doc.end() && !it->is_null()) {
      if (!it->is_string()) return FormatError{"reason must be a string"};
      record.reason = std::string(truncate_utf8(it->get_ref<const std::string&>(), kMaxCancelReasonBytes));
    }
  }
  if (record.request_id.empty()) return FormatError{"a cancel record needs a key or a request_id"};
  if (record.request_id.size() > kMaxCancelIdBytes) {
    return FormatError{"the request id is longer than " + std::to_string(kMaxCancelIdBytes) + " bytes"};
  }
  if (find_invalid_utf8(record.request_id)) return FormatError{"the request id is not UTF-8"};
  return record;
}

std::string serialize_cancel_record(const CancelRecord& record) {
  nlohmann::json doc{{"request_id", record.request_id}};
  if (!record.reason.empty()) doc["reason"] = record.reason;
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kafka_llm::format
