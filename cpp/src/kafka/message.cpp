#include "kafka_llm/kafka/message.hpp"

namespace kafka_llm::kafka {

std::string Message::error_string() const {
  if (message_->err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  if (message_->payload != nullptr && message_->len > 0) {
    return std::string(static_cast<const char*>(message_->payload), message_->len);
  }
  return rd_kafka_err2str(message_->err);
}

std::string_view Message::topic() const noexcept {
  return message_->rkt != nullptr ? std::string_view(rd_kafka_topic_name(message_->rkt)) : std::string_view();
}

std::optional<std::string_view> Message::key() const noexcept {
  if (message_->key == nullptr) return std::nullopt;
  return std::string_view(static_cast<const char*>(message_->key), message_->key_len);
}

std::string_view Message::value() const noexcept {
  if (message_->payload == nullptr) return {};
  return {static_cast<const char*>(message_->payload), message_->len};
}

HeaderList Message::headers() const {
  HeaderList out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(message_.get(), &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == nullptr)
    return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    out.emplace_back(name,
                     value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string());
  }
  return out;
}

std::int64_t Message::timestamp_ms() const noexcept {
  rd_kafka_timestamp_type_t type{};
  return rd_kafka_message_timestamp(message_.get(), &type);
}

HeadersPtr to_rd_headers(const HeaderList& headers) {
  HeadersPtr out(rd_kafka_headers_new(headers.size()));
  for (const auto& [name, value] : headers) {
    rd_kafka_header_add(out.get(), name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  }
  return out;
}

}  // namespace kafka_llm::kafka
