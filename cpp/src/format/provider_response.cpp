#include "kafka_llm/format/provider_response.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "kafka_llm/format/anthropic_mapping.hpp"
#include "kafka_llm/format/json_parse.hpp"
#include "provider_fields.hpp"

namespace kafka_llm::format {

namespace {

using detail::find_member;
using detail::must_be;
using nlohmann::json;

constexpr std::uint64_t kMaxEstimatedChoices = 128;

std::optional<FormatError> read_openai_choice(const json& body, Endpoint endpoint, ProviderOutput& output) {
  const json* choices = find_member(body, "choices");
  if (choices == nullptr) return std::nullopt;
  if (!choices->is_array()) return must_be("choices", "an array", *choices);
  if (choices->empty()) return std::nullopt;
  const json& choice = (*choices)[0];
  if (!choice.is_object()) return must_be("choices[0]", "an object", choice);
  if (auto e = detail::read_string(choice, "finish_reason", "choices[0]", output.finish_reason)) return e;

  std::optional<std::string> message_text;
  if (const json* message = find_member(choice, "message")) {
    if (!message->is_object()) return must_be("choices[0].message", "an object", *message);
    auto content = detail::read_content_text(find_member(*message, "content"), "choices[0].message.content");
    if (auto* e = std::get_if<FormatError>(&content)) return std::move(*e);
    message_text = std::move(std::get<std::optional<std::string>>(content));
  }
  std::optional<std::string> completion_text;
  if (auto e = detail::read_string(choice, "text", "choices[0]", completion_text)) return e;

  if (endpoint == Endpoint::kChatCompletions) {
    output.text = message_text ? std::move(message_text) : std::move(completion_text);
  } else {
    output.text = completion_text ? std::move(completion_text) : std::move(message_text);
  }
  return std::nullopt;
}

FormatResult<ProviderOutput> read_openai(const json& body, Endpoint endpoint) {
  ProviderOutput output;
  if (auto e = detail::read_string(body, "model", "", output.model)) return *e;
  if (endpoint != Endpoint::kEmbeddings) {
    if (auto e = read_openai_choice(body, endpoint, output)) return *e;
  }
  if (const json* usage = find_member(body, "usage")) {
    auto read = detail::read_openai_usage(*usage, "usage");
    if (auto* e = std::get_if<FormatError>(&read)) return std::move(*e);
    output.usage = std::get<TokenUsage>(read);
  }
  return output;
}

FormatResult<ProviderOutput> read_anthropic(const json& body) {
  ProviderOutput output;
  if (auto e = detail::read_string(body, "model", "", output.model)) return *e;
  if (const json* content = find_member(body, "content")) {
    if (!content->is_array()) return must_be("content", "an array", *content);
    std::string text;
    bool any_text = false;
    for (std::size_t i = 0; i < content->size(); ++i) {
      const json& block = (*content)[i];
      const std::string path = "content[" + std::to_string(i) + "]";
      if (!block.is_object()) return must_be(path, "an object", block);
      const json* type = find_member(block, "type");
      if (type == nullptr || !type->is_string() || type->get_ref<const std::string&>() != "text") continue;
      const json* block_text = find_member(block, "text");
      if (block_text == nullptr) continue;
      if (!block_text->is_string()) return must_be(path + ".text", "a string", *block_text);
      text.append(block_text->get_ref<const std::string&>());
      any_text = true;
    }
    if (any_text) output.text = std::move(text);
  }
  std::optional<std::string> stop_reason;
  if (auto e = detail::read_string(body, "stop_reason", "", stop_reason)) return *e;
  if (stop_reason) output.finish_reason = std::string(finish_reason_from_stop_reason(*stop_reason));
  if (const json* usage = find_member(body, "usage")) {
    auto read = detail::read_anthropic_usage(*usage, "usage");
    if (auto* e = std::get_if<FormatError>(&read)) return std::move(*e);
    output.usage = std::get<TokenUsage>(read);
  }
  return output;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max()
                                                           : a + b;
}

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a)
    return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

// A positive integer member, or nullopt (absent, null, wrong type, zero or negative: the provider
// will reject those; the estimate just falls back).
std::optional<std::uint64_t> positive_integer(const json& body, std::string_view name) {
  const json* value = find_member(body, name);
  if (value == nullptr || !value->is_number_integer()) return std::nullopt;
  if (value->is_number_unsigned()) {
    const auto number = value->get<std::uint64_t>();
    return number > 0 ? std::optional<std::uint64_t>(number) : std::nullopt;
  }
  const auto number = value->get<std::int64_t>();
  return number > 0 ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(number)) : std::nullopt;
}

// nlohmann SAX handler behind scan_provider_body: builds the few members the pipeline reads and
// skips everything else (logprobs, further choices, ids, system fingerprints…).
class ReducedBodyBuilder {
 public:
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  explicit ReducedBodyBuilder(ScannedProviderBody& out) : out_(out) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const string_t& /*text*/) { return value(json(v)); }
  bool string(string_t& v) {
    if (next_keep() == Keep::kSkip) return advance();
    return value(json(std::move(v)));
  }
  bool binary(binary_t& /*v*/) { return value(json(nullptr)); }  // not produced by the JSON parser

  bool start_object(std::size_t /*elements*/) {
    Keep keep = next_keep();
    if (frames_.empty()) {
      out_.is_object = true;
      out_.members = json::object();
      push(Keep::kRoot, &out_.members, true, Keep::kSkip);
      return true;
    }
    switch (keep) {
      case Keep::kRoot:  // only the top level is kRoot
      case Keep::kChoice:
      case Keep::kMessage:
        break;
      case Keep::kChoices:  // `choices` of the wrong type: kept whole so reading it fails alike
        keep = Keep::kAll;
        break;
      case Keep::kAll:
      case Keep::kSkip:
        break;
    }
    json* target = place(keep, json::object());
    push(keep, target, true, Keep::kSkip);
    return true;
  }
  bool key(string_t& name) {
    Frame& frame = frames_.back();
    frame.child = child_of_object(frame.keep, name);
    if (frame.child != Keep::kSkip) frame.key = std::move(name);
    return true;
  }
  bool end_object() { return close(); }

  bool start_array(std::size_t /*elements*/) {
    Keep keep = next_keep();
    if (frames_.empty()) {
      push(Keep::kSkip, nullptr, false, Keep::kSkip);  // a top-level array: not an object
      return true;
    }
    if (keep == Keep::kRoot || keep == Keep::kChoice || keep == Keep::kMessage) keep = Keep::kAll;
    json* target = place(keep, json::array());
    push(keep, target, false, keep == Keep::kChoices ? Keep::kChoice : keep);  // choices: element 0 only
    return true;
  }
  bool end_array() { return close(); }

  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    out_.valid = false;
    out_.is_object = false;
    out_.members = nullptr;
    return false;
  }

 private:
  enum class Keep : std::uint8_t {
    kSkip,     // not read: parsed and dropped
    kRoot,     // the body: only some members
    kChoices,  // `choices`: its first element only
    kChoice,   // `choices[0]`: finish_reason, text, message
    kMessage,  // `choices[0].message`: content
    kAll,      // kept whole
  };

  struct Frame {
    Keep keep = Keep::kSkip;
    json* target = nullptr;  // the container being filled; null when skipped
    bool object = false;
    Keep child = Keep::kSkip;  // for the next value (the member after key(), or the next element)
    std::string key;
  };

  void push(Keep keep, json* target, bool object, Keep child) {
    Frame& frame = frames_.emplace_back();
    frame.keep = keep;
    frame.target = target;
    frame.object = object;
    frame.child = child;
  }

  static Keep child_of_object(Keep parent, std::string_view name) {
    switch (parent) {
      case Keep::kRoot:
        if (name == "choices") return Keep::kChoices;
        if (name == "model" || name == "usage" || name == "error" || name == "message" || name == "type")
          return Keep::kAll;
        return Keep::kSkip;
      case Keep::kChoice:
        if (name == "message") return Keep::kMessage;
        if (name == "finish_reason" || name == "text") return Keep::kAll;
        return Keep::kSkip;
      case Keep::kMessage:
        return name == "content" ? Keep::kAll : Keep::kSkip;
      case Keep::kAll:
        return Keep::kAll;
      case Keep::kChoices:
      case Keep::kSkip:
        return Keep::kSkip;
    }
    return Keep::kSkip;
  }

  // How the value about to arrive is kept (a top-level scalar: not at all).
  Keep next_keep() const { return frames_.empty() ? Keep::kSkip : frames_.back().child; }

  // After a value in an array: the elements after choices[0] are skipped.
  bool advance() {
    if (!frames_.empty() && !frames_.back().object && frames_.back().keep == Keep::kChoices) {
      frames_.back().child = Keep::kSkip;
    }
    return true;
  }

  // Stores `v` where the next value goes and returns its slot (null when skipped).
  json* place(Keep keep, json v) {
    if (frames_.empty()) return nullptr;
    Frame& parent = frames_.back();
    json* slot = nullptr;
    if (keep != Keep::kSkip && parent.target != nullptr) {
      if (parent.object) {
        slot = &(*parent.target)[parent.key];  // a repeated member: the last one wins, as in the DOM
        *slot = std::move(v);
      } else {
        parent.target->push_back(std::move(v));
        slot = &parent.target->back();
      }
    }
    advance();
    return slot;
  }

  bool value(json v) {
    if (frames_.empty()) return true;  // a top-level scalar: valid, not an object
    place(next_keep(), std::move(v));
    return true;
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  ScannedProviderBody& out_;
  std::vector<Frame> frames_;
};

}  // namespace

namespace {

// Nesting beyond which scan_provider_body leaves the body to nlohmann's SAX parser, which needs no
// recursion.
constexpr std::size_t kMaxReadDepth = 256;

bool kept_member(std::string_view name) {
  return name == "model" || name == "usage" || name == "error" || name == "message" || name == "type";
}

// Reads an object, keeping the members `keep` names (read whole) and reading `nested` members with
// `read_nested`; everything else is checked and dropped. A value that is not an object is kept
// whole (reading it then fails the way the document path fails).
template <class Keep, class Nested>
bool read_reduced_object(JsonReader& reader, json& out, Keep keep, std::string_view nested,
                         Nested read_nested) {
  if (reader.peek() != '{') return reader.read(out);
  if (!reader.begin_object()) return false;
  out = json::object();
  std::string key;
  bool first = true;
  while (true) {
    switch (reader.next_member(&key, first)) {
      case JsonReader::Next::kError:
        return false;
      case JsonReader::Next::kEnd:
        return true;
      case JsonReader::Next::kItem:
        break;
    }
    if (!nested.empty() && key == nested) {
      if (!read_nested(reader, out[key])) return false;
    } else if (keep(key)) {
      if (!reader.read(out[key])) return false;  // a repeated key: the last one wins
    } else if (!reader.skip()) {
      return false;
    }
  }
}

bool read_message(JsonReader& reader, json& out) {
  const auto keep = [](std::string_view name) { return name == "content"; };
  return read_reduced_object(reader, out, keep, {}, [](JsonReader&, json&) { return false; });
}

bool read_choice(JsonReader& reader, json& out) {
  const auto keep = [](std::string_view name) { return name == "finish_reason" || name == "text"; };
  return read_reduced_object(reader, out, keep, "message", read_message);
}

// `choices`: the first element reduced, the others checked and dropped.
bool read_choices(JsonReader& reader, json& out) {
  if (reader.peek() != '[') return reader.read(out);
  if (!reader.begin_array()) return false;
  out = json::array();
  bool first = true;
  while (true) {
    const bool is_first = first;
    switch (reader.next_element(first)) {
      case JsonReader::Next::kError:
        return false;
      case JsonReader::Next::kEnd:
        return true;
      case JsonReader::Next::kItem:
        break;
    }
    if (is_first) {
      if (!read_choice(reader, out.emplace_back())) return false;
    } else if (!reader.skip()) {
      return false;
    }
  }
}

}  // namespace

ScannedProviderBody scan_provider_body(std::string_view text) {
  ScannedProviderBody out;
  {
    JsonReader reader(text, kMaxReadDepth);
    json members;
    const bool object = reader.peek() == '{';
    const bool read =
        object ? read_reduced_object(reader, members, kept_member, "choices", read_choices) : reader.skip();
    if (read && reader.at_end()) {
      out.valid = true;
      out.is_object = object;
      out.compact = reader.compact();
      if (object) out.members = std::move(members);
      return out;
    }
    if (!reader.too_deep()) return out;
  }
  // Nested deeper than the recursive reader goes: nlohmann's SAX parser needs no recursion.
  out.valid = true;
  ReducedBodyBuilder builder(out);
  try {
    if (!json::sax_parse(text.begin(), text.end(), &builder)) {
      out.valid = false;
      out.is_object = false;
      out.members = nullptr;
    }
  } catch (const json::exception&) {
    // out_of_range.406 and friends (e.g. a number too large for a double).
    out = ScannedProviderBody{};
  }
  if (!out.is_object) out.members = nullptr;
  out.compact = out.valid && compact_json(text) == text;
  return out;
}

FormatResult<ProviderOutput> read_provider_response(const json& body, ProviderApi api, Endpoint endpoint) {
  if (!body.is_object()) return must_be("provider response", "a JSON object", body);
  const bool anthropic_error = api == ProviderApi::kAnthropic && find_member(body, "type") != nullptr &&
                               body["type"].is_string() &&
                               body["type"].get_ref<const std::string&>() == "error";
  if (anthropic_error || find_member(body, "error") != nullptr) {
    return FormatError{"provider response is an error: " +
                       provider_error_message(body).value_or("(no message)")};
  }
  if (api == ProviderApi::kAnthropic) return read_anthropic(body);
  return read_openai(body, endpoint);
}

std::optional<std::string> provider_error_message(const json& body) {
  if (const json* error = find_member(body, "error")) {
    if (error->is_string()) return error->get<std::string>();
    if (const json* message = find_member(*error, "message"); message != nullptr && message->is_string()) {
      return message->get<std::string>();
    }
  }
  if (const json* message = find_member(body, "message"); message != nullptr && message->is_string()) {
    return message->get<std::string>();
  }
  return std::nullopt;
}

std::uint64_t estimate_tokens(std::size_t prompt_bytes, const json& body, Endpoint endpoint,
                              std::uint64_t default_max_tokens) {
  std::uint64_t tokens = prompt_bytes / 4 + (prompt_bytes % 4 != 0 ? 1 : 0);
  if (endpoint != Endpoint::kEmbeddings) {
    std::uint64_t budget = default_max_tokens;
    if (auto limit = positive_integer(body, "max_completion_tokens")) {
      budget = *limit;
    } else if (auto legacy_limit = positive_integer(body, "max_tokens")) {
      budget = *legacy_limit;
    }
    const std::uint64_t choices = std::min(positive_integer(body, "n").value_or(1), kMaxEstimatedChoices);
    tokens = saturating_add(tokens, saturating_mul(budget, choices));
  }
  return std::max<std::uint64_t>(tokens, 1);
}

std::uint64_t estimate_tokens(const RequestEnvelope& request, std::uint64_t default_max_tokens) {
  return estimate_tokens(request.prompt_bytes, request.body, request.endpoint, default_max_tokens);
}

}  // namespace kafka_llm::format
