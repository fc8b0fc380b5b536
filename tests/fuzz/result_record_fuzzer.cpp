// Fuzz target: the Redis result-record reader (docs/formats.md, "Redis result record"). Records in Redis may
// be written by older versions or by other tools, so parse_result reads untrusted text. The input is one
// stored value. Invariants:
// - a rejected record has a non-empty, bounded, valid UTF-8 message;
// - an accepted record round-trips: serialize_result gives valid JSON that parse_result reads back
//   to an equal record, and serializing that again gives the same bytes (a fixed point);
// - result_key is `<prefix>:result:<request_id>`.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.hpp"
#include "kafka_llm/format/json_parse.hpp"
#include "kafka_llm/format/result_record.hpp"

namespace {

using kafka_llm::fuzz::valid_utf8;
namespace format = kafka_llm::format;

constexpr std::size_t kMaxErrorMessageBytes = 512;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = format::parse_result(text);
  if (const auto* error = std::get_if<format::FormatError>(&parsed)) {
    FUZZ_CHECK(!error->message.empty(), text);
    FUZZ_CHECK(error->message.size() <= kMaxErrorMessageBytes, error->message);
    FUZZ_CHECK(valid_utf8(error->message), error->message);
    return 0;
  }
  const auto& record = std::get<format::ResultRecord>(parsed);
  const std::string serialized = format::serialize_result(record);
  FUZZ_CHECK(valid_utf8(serialized), serialized);
  FUZZ_CHECK(std::holds_alternative<nlohmann::json>(format::parse_json(serialized)), serialized);
  const auto reparsed = format::parse_result(serialized);
  if (const auto* error = std::get_if<format::FormatError>(&reparsed)) {
    FUZZ_CHECK(false, error->message);
  }
  FUZZ_CHECK(std::get<format::ResultRecord>(reparsed) == record, serialized);
  FUZZ_CHECK(format::serialize_result(std::get<format::ResultRecord>(reparsed)) == serialized, serialized);

  const std::string key = format::result_key(format::kDefaultResultKeyPrefix, record.request_id);
  FUZZ_CHECK(key == "kafka-llm:result:" + record.request_id, key);
  return 0;
}
