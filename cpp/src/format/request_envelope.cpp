#include "kafka_llm/format/request_envelope.hpp"

#include <cmath>
#include <limits>
#include <utility>

#include "json_util.hpp"
#include "kafka_llm/format/prompt_hash.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {

namespace {

using nlohmann::json;

// Quoted user input in messages (an unsupported path) is cut so messages stay small.
constexpr std::size_t kMaxQuotedBytes = 100;
// Token-id arrays ("prompt": [1234, 567]) count as this many bytes per token, so the bytes/4
// estimate comes out at one token per id.
constexpr std::size_t kBytesPerTokenId = 4;

// The member `name` of `object`, or nullptr when absent or null (null counts as absent).
const json* member(const json& object, std::string_view name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string must_be(std::string_view field, std::string_view expected, const json& actual) {
  std::string message(field);
  message.append(" must be ")
      .append(expected)
      .append(" (got ")
      .append(detail::json_type_name(actual))
      .append(")");
  return message;
}

std::string quote_excerpt(std::string_view text) {
  std::string out = "\"";
  const std::string_view kept = truncate_utf8(text, kMaxQuotedBytes);
  out.append(kept);
  if (kept.size() < text.size()) out.append("...");
  out.push_back('"');
  return out;
}

std::size_t prompt_value_bytes(const json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>().size();
  if (!value.is_array()) return 0;
  std::size_t bytes = 0;
  for (const auto& element : value) {
    if (element.is_string()) {
      bytes += element.get_ref<const std::string&>().size();
    } else if (element.is_number()) {
      bytes += kBytesPerTokenId;
    } else if (element.is_array()) {
      bytes += element.size() * kBytesPerTokenId;
    }
  }
  return bytes;
}

// A JSON number of milliseconds: a non-negative integer, or a finite non-negative float (what
// JavaScript's Date.now() and Python's time.time() * 1000 give), rounded down.
std::optional<std::int64_t> non_negative_millis(const json& value) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    return v >= 0 ? std::optional(v) : std::nullopt;
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (!std::isfinite(v) || v < 0 || v >= 9.0e18) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  return std::nullopt;
}

// must_be, naming the value when it is a number of the wrong sign or size.
std::string millis_error(std::string_view field, std::string_view expected, const json& actual) {
  if (!actual.is_number()) return must_be(field, expected, actual);
  return std::string(field) + " must be " + std::string(expected) + " (got " + actual.dump() + ")";
}

std::size_t message_content_bytes(const json& message) {
  const json* content = member(message, "content");
  if (content == nullptr) return 0;
  if (content->is_string()) return content->get_ref<const std::string&>().size();
  std::size_t bytes = 0;
  if (content->is_array()) {
    for (const auto& part : *content) {
      if (!part.is_object()) continue;
      if (const json* text = member(part, "text"); text != nullptr && text->is_string()) {
        bytes += text->get_ref<const std::string&>().size();
      }
    }
  }
  return bytes;
}

// One record's parse: holds the inputs so every failure path can fill in the same identity.
class RequestParser {
 public:
  RequestParser(std::string_view value, std::optional<std::string_view> key, const RecordOrigin& origin,
                const RequestParseOptions& options)
      : value_(value), key_(key), origin_(origin), options_(options) {}

  ParseRequestResult run() {
    if (value_.size() > options_.max_request_bytes) {
      return poison("record of " + std::to_string(value_.size()) + " bytes exceeds max_request_bytes " +
                        std::to_string(options_.max_request_bytes),
                    413);
    }
    if (value_.empty()) return poison("record is empty");

    auto parsed = parse_json(value_, options_.max_json_depth);
    if (auto* error = std::get_if<JsonError>(&parsed)) {
      if (error->kind == JsonErrorKind::kSyntax) return poison("record is not valid JSON: " + error->message);
      return poison(std::move(error->message));
    }
    doc_ = std::move(std::get<json>(parsed));
    if (!doc_.is_object()) return poison(must_be("record", "a JSON object", doc_));

    const json* request_id = member(doc_, "request_id");
    if (request_id != nullptr && !request_id->is_string()) {
      return poison(must_be("request_id", "a string", *request_id));
    }

    Endpoint endpoint = Endpoint::kCompletions;
    if (const json* path = member(doc_, "path"); path != nullptr) {
      if (!path->is_string()) return poison(must_be("path", "a string", *path));
      const std::string& raw = path->get_ref<const std::string&>();
      std::optional<Endpoint> found;
      if (!raw.empty() && raw.front() == '/') {
        found = endpoint_from_path(raw);
      } else {
        found = endpoint_from_path("/" + raw);
      }
      if (!found) {
        std::string message = "path " + quote_excerpt(raw) + " is not supported (accepted: ";
        for (std::size_t i = 0; i < kAcceptedRequestPaths.size(); ++i) {
          if (i > 0) message.append(", ");
          message.append(kAcceptedRequestPaths[i]);
        }
        message.push_back(')');
        return poison(std::move(message));
      }
      endpoint = *found;
    }

    const json* provider = member(doc_, "provider");
    if (provider != nullptr && !provider->is_string())
      return poison(must_be("provider", "a string", *provider));

    std::optional<std::int64_t> deadline_ms;
    std::optional<std::int64_t> timeout_ms;
    if (const json* field = member(doc_, "deadline_ms"); field != nullptr) {
      deadline_ms = non_negative_millis(*field);
      if (!deadline_ms)
        return poison(
            millis_error("deadline_ms", "a non-negative number of milliseconds since the epoch", *field));
    }
    if (const json* field = member(doc_, "timeout_ms"); field != nullptr) {
      timeout_ms = non_negative_millis(*field);
      if (!timeout_ms)
        return poison(millis_error("timeout_ms", "a non-negative number of milliseconds", *field));
    }

    const json* body = member(doc_, "body");
    if (body == nullptr) return poison("body is required");
    if (!body->is_object()) return poison(must_be("body", "a JSON object", *body));

    const json* model = member(*body, "model");
    if (model == nullptr) return poison("body.model is required");
    if (!model->is_string()) return poison(must_be("body.model", "a string", *model));
    if (model->get_ref<const std::string&>().empty()) return poison("body.model must not be empty");

    const json* stream = member(*body, "stream");
    if (stream != nullptr && !stream->is_boolean())
      return poison(must_be("body.stream", "a boolean", *stream));

    std::size_t prompt_bytes = 0;
    switch (endpoint) {
      case Endpoint::kChatCompletions: {
        const json* messages = member(*body, "messages");
        if (messages == nullptr) return poison("body.messages is required");
        if (!messages->is_array()) return poison(must_be("body.messages", "an array", *messages));
        if (messages->empty()) return poison("body.messages must not be empty");
        for (std::size_t i = 0; i < messages->size(); ++i) {
          const json& message = (*messages)[i];
          if (!message.is_object()) {
            return poison(must_be("body.messages[" + std::to_string(i) + "]", "an object", message));
          }
          prompt_bytes += message_content_bytes(message);
        }
        break;
      }
      case Endpoint::kCompletions:
      case Endpoint::kEmbeddings: {
        const std::string_view field = endpoint == Endpoint::kCompletions ? "prompt" : "input";
        const std::string qualified = "body." + std::string(field);
        const json* prompt = member(*body, field);
        if (prompt == nullptr) return poison(qualified + " is required");
        if (!prompt->is_string() && !prompt->is_array()) {
          return poison(must_be(qualified, "a string or an array", *prompt));
        }
        prompt_bytes = prompt_value_bytes(*prompt);
        break;
      }
    }

    RequestEnvelope envelope;
    envelope.endpoint = endpoint;
    envelope.path = endpoint_path(endpoint);
    envelope.model = model->get_ref<const std::string&>();
    if (provider != nullptr && !provider->get_ref<const std::string&>().empty()) {
      envelope.provider = provider->get_ref<const std::string&>();
    }
    envelope.stream = stream != nullptr && stream->get<bool>();
    envelope.deadline_ms = deadline_ms;
    envelope.timeout_ms = timeout_ms;
    envelope.prompt_bytes = prompt_bytes;
    resolve_request_id(envelope.request_id, envelope.request_id_source);
    // Move, not copy: the body can be most of a megabyte. `model`, `provider` and friends point
    // into doc_, so they are read above, before these moves.
    if (auto it = doc_.find("metadata"); it != doc_.end()) envelope.metadata = std::move(*it);
    envelope.body = std::move(doc_["body"]);
    envelope.prompt_hash = prompt_hash(envelope.body);
    return envelope;
  }

 private:
  // Best-effort identity for both outcomes: a non-empty request_id string in the parsed document,
  // then the key, then the origin. Keys that are not UTF-8 are skipped: the id goes into JSON.
  void resolve_request_id(std::string& id, RequestIdSource& source) const {
    if (doc_.is_object()) {
      if (const json* field = member(doc_, "request_id");
          field != nullptr && field->is_string() && !field->get_ref<const std::string&>().empty()) {
        id = field->get_ref<const std::string&>();
        source = RequestIdSource::kField;
        return;
      }
    }
    if (key_ && !key_->empty() && !find_invalid_utf8(*key_)) {
      id = std::string(*key_);
      source = RequestIdSource::kKey;
      return;
    }
    id = origin_request_id(origin_);
    source = RequestIdSource::kOrigin;
  }

  ParseRequestResult poison(std::string message, int http_status = 400) const {
    PoisonRecord record;
    record.http_status = http_status;
    record.message = std::move(message);
    resolve_request_id(record.request_id, record.request_id_source);
    if (doc_.is_object()) {
      if (const json* metadata = member(doc_, "metadata")) record.metadata = *metadata;
      if (const json* provider = member(doc_, "provider");
          provider != nullptr && provider->is_string() && !provider->get_ref<const std::string&>().empty()) {
        record.provider = provider->get_ref<const std::string&>();
      }
      if (const json* body = member(doc_, "body"); body != nullptr && body->is_object()) {
        if (const json* model = member(*body, "model"); model != nullptr && model->is_string()) {
          record.model = model->get_ref<const std::string&>();
        }
      }
    }
    const bool correlatable =
        record.request_id_source != RequestIdSource::kOrigin || !record.metadata.is_null();
    record.reply = correlatable ? ErrorReply::kSend : ErrorReply::kDeadLetterOnly;
    return record;
  }

  std::string_view value_;
  std::optional<std::string_view> key_;
  const RecordOrigin& origin_;
  const RequestParseOptions& options_;
  json doc_;
};

}  // namespace

std::string origin_request_id(const RecordOrigin& origin) {
  return origin.topic + "-" + std::to_string(origin.partition) + "-" + std::to_string(origin.offset);
}

ParseRequestResult parse_request(std::string_view value, std::optional<std::string_view> key,
                                 const RecordOrigin& origin, const RequestParseOptions& options) {
  return RequestParser(value, key, origin, options).run();
}

ParseRequestResult parse_request(std::string_view value, const RequestParseOptions& options) {
  static const RecordOrigin kNoOrigin{};
  return parse_request(value, std::nullopt, kNoOrigin, options);
}

}  // namespace kafka_llm::format
