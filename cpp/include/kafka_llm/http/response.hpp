#pragma once

#include <chrono>
#include <string>

#include "kafka_llm/common/types.hpp"
#include "kafka_llm/http/transport_error.hpp"

namespace kafka_llm::http {

/// The outcome of one request. When `error` is not kNone, `status`, `headers` and `body` hold whatever
/// had arrived before the failure (possibly nothing) and must not be trusted as a response.
struct Response {
  TransportError error = TransportError::kNone;
  std::string error_message;  ///< libcurl's message or the client's own; never contains request headers
  long status = 0;            ///< HTTP status of the final response (after 1xx); 0 when none arrived
  HeaderList headers;         ///< of the final response (1xx and earlier responses dropped), names as sent
  std::string body;           ///< the full body; empty when the request streamed through on_data
  std::chrono::microseconds time_to_first_byte{
      0};                                   ///< from Client::start to the first response byte; 0 if none
  std::chrono::microseconds total_time{0};  ///< from Client::start to completion
  long http_version = 0;                    ///< major version: 1, 2 or 3; 0 when unknown
};

}  // namespace kafka_llm::http
