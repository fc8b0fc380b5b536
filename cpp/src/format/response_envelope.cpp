#include "kafka_llm/format/response_envelope.hpp"

#include "json_util.hpp"

namespace kafka_llm::format {

std::string serialize_response(const ResponseEnvelope& response) {
  std::string out;
  out.reserve(response.body_text.size() + response.request_id.size() + 192);
  detail::ObjectWriter object(out);
  object.json("metadata", response.metadata);
  object.integer("status_code", response.status_code);
  if (response.body_text.empty()) {
    object.json("body", response.body);
  } else {
    object.raw("body", response.body_text);
  }
  object.string("request_id", response.request_id);
  object.optional_string("provider", response.provider);
  object.optional_string("model", response.model);
  object.integer("attempts", response.attempts);
  object.number("latency_ms", response.latency_ms);
  if (response.prompt_version) object.string("prompt_version", *response.prompt_version);
  object.close();
  return out;
}

ErrorKind error_kind_for_status(int status_code) {
  switch (status_code) {
    case 400:
      return {"invalid_request_error", "invalid_request"};
    case 401:
      return {"authentication_error", "unauthorized"};
    case 403:
      return {"permission_error", "forbidden"};
    case 404:
      return {"not_found_error", "not_found"};
    case 408:
      return {"timeout_error", "request_timeout"};
    case 409:
      return {"conflict_error", "conflict"};
    case 413:
      return {"invalid_request_error", "request_too_large"};
    case 499:  // nginx's "client closed request": the request was cancelled
      return {"cancelled", "cancelled"};
    case 422:
      return {"invalid_request_error", "unprocessable_entity"};
    case 429:
      return {"rate_limit_error", "rate_limit_exceeded"};
    case 500:
      return {"api_error", "internal_error"};
    case 502:
      return {"api_error", "bad_gateway"};
    case 503:
      return {"api_error", "service_unavailable"};
    case 504:
      return {"timeout_error", "gateway_timeout"};
    case 529:
      return {"overloaded_error", "overloaded"};
    default:
      break;
  }
  const std::string code = "http_" + std::to_string(status_code);
  if (status_code >= 400 && status_code < 500) return {"invalid_request_error", code};
  return {"api_error", code};
}

nlohmann::json error_object(int status_code, std::string_view message) {
  const ErrorKind kind = error_kind_for_status(status_code);
  // The message may quote provider output; never let a stray byte make the JSON unserializable.
  return nlohmann::json{
      {"message", detail::to_valid_utf8(message)}, {"type", kind.type}, {"code", kind.code}};
}

nlohmann::json error_body(int status_code, std::string_view message) {
  return nlohmann::json{{"error", error_object(status_code, message)}};
}

HeaderList response_headers(std::string_view request_id, std::string_view model_version,
                            std::string_view prompt_hash) {
  HeaderList headers;
  headers.reserve(3);
  headers.emplace_back("request_message_id", request_id);
  headers.emplace_back("model_version", model_version);
  headers.emplace_back("prompt_hash", prompt_hash);
  return headers;
}

std::string serialize_chunk_frame(std::string_view request_id, std::uint64_t seq,
                                  const nlohmann::json& chunk) {
  std::string out;
  detail::ObjectWriter object(out);
  object.string("request_id", request_id);
  object.unsigned_integer("seq", seq);
  object.json("chunk", chunk);
  object.close();
  return out;
}

std::string serialize_chunk_frame_raw(std::string_view request_id, std::uint64_t seq,
                                      std::string_view chunk_json) {
  std::string out;
  out.reserve(chunk_json.size() + request_id.size() + 48);
  detail::ObjectWriter object(out);
  object.string("request_id", request_id);
  object.unsigned_integer("seq", seq);
  object.raw("chunk", chunk_json);
  object.close();
  return out;
}

std::string serialize_final_frame(const StreamFinalFrame& frame) {
  std::string out;
  detail::ObjectWriter object(out);
  object.string("request_id", frame.request_id);
  object.unsigned_integer("seq", frame.seq);
  object.boolean("done", true);
  object.integer("status_code", frame.status_code);
  object.optional_string("finish_reason", frame.finish_reason);
  if (frame.usage) {
    object.token_usage("usage", *frame.usage);
  } else {
    object.null("usage");
  }
  if (frame.error_message) object.json("error", error_object(frame.status_code, *frame.error_message));
  object.close();
  return out;
}

}  // namespace kafka_llm::format
