#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/kafka/handles.hpp"

namespace kafka_llm::kafka {

/// A consumed record (or a consumer error event), owning librdkafka's message. Move-only.
/// Views returned by the accessors live as long as the Message.
class Message {
 public:
  explicit Message(MessagePtr message) noexcept : message_(std::move(message)) {}

  rd_kafka_resp_err_t error() const noexcept { return message_->err; }
  /// librdkafka's text for error(), or the error payload of the event.
  std::string error_string() const;
  std::string_view topic() const noexcept;
  std::int32_t partition() const noexcept { return message_->partition; }
  std::int64_t offset() const noexcept { return message_->offset; }
  /// The key; nullopt for a null key (an empty key is an empty view).
  std::optional<std::string_view> key() const noexcept;
  std::string_view value() const noexcept;
  /// A copy of the record headers (null header values become empty strings).
  HeaderList headers() const;
  /// The record timestamp in epoch milliseconds, or -1 when the record has none.
  std::int64_t timestamp_ms() const noexcept;
  RecordOrigin origin() const { return {std::string(topic()), partition(), offset()}; }

 private:
  MessagePtr message_;
};

/// Converts header pairs to a librdkafka header list (empty list for no headers).
HeadersPtr to_rd_headers(const HeaderList& headers);

}  // namespace kafka_llm::kafka
