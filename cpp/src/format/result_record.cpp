#include "kafka_llm/format/result_record.hpp"

#include <limits>

#include "json_util.hpp"
#include "kafka_llm/format/json_parse.hpp"

namespace kafka_llm::format {

namespace {

using nlohmann::json;

FormatError field_error(std::string_view field, std::string_view expected, const json& actual) {
  std::string message = "result field \"";
  message.append(field).append("\" must be ").append(expected);
  message.append(" (got ").append(detail::json_type_name(actual)).append(")");
  return FormatError{std::move(message)};
}

// Reads one optional member of a result object; each method returns an error naming the field when
// it is present but of the wrong type.
class FieldReader {
 public:
  explicit FieldReader(const json& object) : object_(object) {}

  std::optional<FormatError> string(std::string_view name, std::optional<std::string>& out) const {
    const json* value = find(name);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string()) return field_error(name, "a string", *value);
    out = value->get<std::string>();
    return std::nullopt;
  }

  template <class Integer>
  std::optional<FormatError> integer(std::string_view name, Integer& out) const {
    const json* value = find(name);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number_integer()) return field_error(name, "an integer", *value);
    if (value->is_number_unsigned()) {
      const auto number = value->get<std::uint64_t>();
      if (number > static_cast<std::uint64_t>(std::numeric_limits<Integer>::max())) {
        return field_error(name, "an integer in range", *value);
      }
      out = static_cast<Integer>(number);
    } else {
      const auto number = value->get<std::int64_t>();
      if (number < static_cast<std::int64_t>(std::numeric_limits<Integer>::min()) ||
          number > static_cast<std::int64_t>(std::numeric_limits<Integer>::max())) {
        return field_error(name, "an integer in range", *value);
      }
      out = static_cast<Integer>(number);
    }
    return std::nullopt;
  }

  const json* find(std::string_view name) const {
    const auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

 private:
  const json& object_;
};

std::optional<FormatError> read_usage(const json& value, std::optional<TokenUsage>& out) {
  if (!value.is_object()) return field_error("usage", "an object", value);
  const FieldReader reader(value);
  TokenUsage usage;
  for (auto [name, slot] :
       {std::pair<std::string_view, std::uint64_t*>{"prompt_tokens", &usage.prompt_tokens},
        {"completion_tokens", &usage.completion_tokens},
        {"total_tokens", &usage.total_tokens}}) {
    const json* count = reader.find(name);
    if (count == nullptr) continue;
    if (!count->is_number_unsigned()) {
      return field_error("usage." + std::string(name), "a non-negative integer", *count);
    }
    *slot = count->get<std::uint64_t>();
  }
  if (reader.find("total_tokens") == nullptr)
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  out = usage;
  return std::nullopt;
}

}  // namespace

std::string_view to_string(ResultStatus status) noexcept {
  switch (status) {
    case ResultStatus::kPending:
      return "pending";
    case ResultStatus::kDone:
      return "done";
    case ResultStatus::kError:
      return "error";
    case ResultStatus::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::string result_key(std::string_view prefix, std::string_view request_id) {
  std::string key;
  key.reserve(prefix.size() + request_id.size() + 8);
  key.append(prefix).append(":result:").append(request_id);
  return key;
}

std::string serialize_result(const ResultRecord& record) {
  std::string out;
  out.reserve(record.body_text.size() + (record.output ? record.output->size() : 0) +
              record.request_id.size() + (record.error ? record.error->size() : 0) + 384);
  detail::ObjectWriter object(out);
  object.string("status", to_string(record.status));
  object.string("request_id", record.request_id);
  object.optional_string("provider", record.provider);
  object.optional_string("model", record.model);
  object.optional_string("output", record.output);
  if (record.body_text.empty()) {
    object.json("body", record.body);
  } else {
    object.raw("body", record.body_text);
  }
  object.optional_string("error", record.error);
  if (record.status_code) {
    object.integer("status_code", *record.status_code);
  } else {
    object.null("status_code");
  }
  if (record.usage) {
    object.token_usage("usage", *record.usage);
  } else {
    object.null("usage");
  }
  object.integer("attempts", record.attempts);
  if (record.latency_ms) {
    object.number("latency_ms", *record.latency_ms);
  } else {
    object.null("latency_ms");
  }
  object.integer("created_ms", record.created_ms);
  object.integer("updated_ms", record.updated_ms);
  if (record.prompt_version) object.string("prompt_version", *record.prompt_version);
  if (record.prompt_hash) object.string("prompt_hash", *record.prompt_hash);
  object.close();
  return out;
}

FormatResult<ResultRecord> parse_result(std::string_view text) {
  auto parsed = parse_json(text);
  if (auto* error = std::get_if<JsonError>(&parsed)) {
    return FormatError{"result record is not valid JSON: " + error->message};
  }
  json& doc = std::get<json>(parsed);
  if (!doc.is_object()) {
    return FormatError{"result record must be a JSON object (got " +
                       std::string(detail::json_type_name(doc)) + ")"};
  }
  const FieldReader reader(doc);
  ResultRecord record;

  const json* status = reader.find("status");
  if (status == nullptr) return FormatError{"result record has no status"};
  if (!status->is_string()) return field_error("status", "a string", *status);
  const auto& status_text = status->get_ref<const std::string&>();
  if (status_text == "pending") {
    record.status = ResultStatus::kPending;
  } else if (status_text == "done") {
    record.status = ResultStatus::kDone;
  } else if (status_text == "error") {
    record.status = ResultStatus::kError;
  } else if (status_text == "cancelled") {
    record.status = ResultStatus::kCancelled;
  } else {
    return FormatError{"result status \"" + detail::to_valid_utf8(status_text.substr(0, 64)) +
                       "\" is not one of pending, done, error, cancelled"};
  }

  std::optional<std::string> request_id;
  if (auto e = reader.string("request_id", request_id)) return *e;
  if (request_id) record.request_id = std::move(*request_id);
  if (auto e = reader.string("provider", record.provider)) return *e;
  if (auto e = reader.string("model", record.model)) return *e;
  if (auto e = reader.string("output", record.output)) return *e;

  if (const json* error = reader.find("error")) {
    if (error->is_string()) {
      record.error = error->get<std::string>();
    } else if (error->is_object() && error->contains("message") && (*error)["message"].is_string()) {
      record.error = (*error)["message"].get<std::string>();
    } else {
      return field_error("error", "a string or an object with a string message", *error);
    }
  }

  if (reader.find("status_code") != nullptr) {
    int status_code = 0;
    if (auto e = reader.integer("status_code", status_code)) return *e;
    record.status_code = status_code;
  }
  if (const json* usage = reader.find("usage")) {
    if (auto e = read_usage(*usage, record.usage)) return *e;
  }
  if (auto e = reader.integer("attempts", record.attempts)) return *e;
  if (const json* latency = reader.find("latency_ms")) {
    if (!latency->is_number()) return field_error("latency_ms", "a number", *latency);
    record.latency_ms = latency->get<double>();
  }
  if (auto e = reader.integer("created_ms", record.created_ms)) return *e;
  if (auto e = reader.integer("updated_ms", record.updated_ms)) return *e;
  if (auto e = reader.string("prompt_version", record.prompt_version)) return *e;
  if (auto e = reader.string("prompt_hash", record.prompt_hash)) return *e;

  // Last, and by move: the body is the largest member.
  if (auto it = doc.find("body"); it != doc.end()) record.body = std::move(*it);
  return record;
}

}  // namespace kafka_llm::format
