#include <gtest/gtest.h>

#include <string>

#include "kafka_llm/format/cancel_record.hpp"

namespace kafka_llm::format {
namespace {

CancelRecord ok(FormatResult<CancelRecord> result) {
  if (auto* error = std::get_if<FormatError>(&result)) {
    ADD_FAILURE() << error->message;
    return {};
  }
  return std::get<CancelRecord>(result);
}

std::string error(FormatResult<CancelRecord> result) {
  if (auto* e = std::get_if<FormatError>(&result)) return e->message;
  ADD_FAILURE() << "accepted";
  return {};
}

TEST(FormatCancelRecord, TheKeyAloneNamesTheRequest) {
  EXPECT_EQ(ok(parse_cancel_record("r1", "")), (CancelRecord{"r1", ""}));
}

TEST(FormatCancelRecord, TheValueCarriesTheIdAndAReason) {
  EXPECT_EQ(ok(parse_cancel_record(std::nullopt, R"({"request_id":"r1","reason":"client disconnected"})")),
            (CancelRecord{"r1", "client disconnected"}));
  EXPECT_EQ(ok(parse_cancel_record("r1", R"({"request_id":"r1"})")), (CancelRecord{"r1", ""}));
  EXPECT_EQ(ok(parse_cancel_record("r1", R"({"reason":"user"})")), (CancelRecord{"r1", "user"}));
  EXPECT_EQ(ok(parse_cancel_record("r1", R"({"request_id":null,"reason":null,"other":1})")),
            (CancelRecord{"r1", ""}));
}

TEST(FormatCancelRecord, ALongReasonIsCutOnACharacterBoundary) {
  const std::string reason = std::string(kMaxCancelReasonBytes - 1, 'a') + "\xc3\xa9";  // é straddles the cut
  auto record = ok(parse_cancel_record("r1", R"({"reason":")" + reason + R"("})"));
  EXPECT_EQ(record.reason, std::string(kMaxCancelReasonBytes - 1, 'a'));
}

TEST(FormatCancelRecord, BadRecordsAreClearErrors) {
  EXPECT_EQ(error(parse_cancel_record(std::nullopt, "")), "a cancel record needs a key or a request_id");
  EXPECT_EQ(error(parse_cancel_record("", "{}")), "a cancel record needs a key or a request_id");
  EXPECT_EQ(error(parse_cancel_record("r1", "cancel it")),
            "a cancel record's value must be empty or a JSON object");
  EXPECT_EQ(error(parse_cancel_record("r1", "[1]")),
            "a cancel record's value must be empty or a JSON object");
  EXPECT_EQ(error(parse_cancel_record(std::nullopt, R"({"request_id":5})")),
            "request_id must be a non-empty string");
  EXPECT_EQ(error(parse_cancel_record(std::nullopt, R"({"request_id":""})")),
            "request_id must be a non-empty string");
  EXPECT_EQ(error(parse_cancel_record("r1", R"({"reason":5})")), "reason must be a string");
  EXPECT_EQ(error(parse_cancel_record("r1", R"({"request_id":"r2"})")),
            "the record's key and its request_id name different requests");
  EXPECT_EQ(error(parse_cancel_record(std::string(kMaxCancelIdBytes + 1, 'x'), "")),
            "the request id is longer than 512 bytes");
  EXPECT_EQ(error(parse_cancel_record("\xff\xfe", "")), "the request id is not UTF-8");
}

TEST(FormatCancelRecord, SerializesWhatItParses) {
  const CancelRecord record{"r\"1", "client disconnected"};
  EXPECT_EQ(serialize_cancel_record(record), R"({"reason":"client disconnected","request_id":"r\"1"})");
  EXPECT_EQ(ok(parse_cancel_record(std::nullopt, serialize_cancel_record(record))), record);
  EXPECT_EQ(serialize_cancel_record({"r1", ""}), R"({"request_id":"r1"})");
}

}  // namespace
}  // namespace kafka_llm::format
