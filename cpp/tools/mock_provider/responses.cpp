#include "responses.hpp"

#include <array>
#include <bit>
#include <cmath>

#include "json_writer.hpp"

namespace kafka_llm::mock_provider {
namespace {

using nlohmann::json;

constexpr std::size_t kEchoChars = 64;
constexpr std::int64_t kDefaultMaxTokens = 16;
// Bounds the work and memory of one answer; larger requests get a shorter reply, flagged "length".
constexpr std::int64_t kMaxGeneratedTokens = 100'000;
constexpr std::int64_t kDefaultDimensions = 8;
constexpr std::int64_t kMaxDimensions = 65'536;
// Reserved up front so a typical answer is written without growing the string.
constexpr std::size_t kTypicalBodySize = 1024;

constexpr std::array<std::string_view, 12> kFiller{"lorem", "ipsum",       "dolor",      "sit",
                                                   "amet",  "consectetur", "adipiscing", "elit",
                                                   "sed",   "do",          "eiusmod",    "tempor"};

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

template <class Visit>
void for_each_word(std::string_view text, Visit&& visit) {
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) visit(text.substr(start, i - start));
  }
}

// Cuts at a code point boundary so the echoed text stays valid UTF-8.
std::string_view first_chars(std::string_view text, std::size_t chars) noexcept {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool starts_char = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    if (starts_char && seen++ == chars) return text.substr(0, i);
  }
  return text;
}

// Text of an OpenAI or Anthropic message content: a string (viewed, not copied), or the `text`
// of its parts joined with spaces. The view stays valid while both `content` and this live.
class ContentText {
 public:
  explicit ContentText(const json& content) {
    if (content.is_string()) {
      view_ = content.get_ref<const std::string&>();
      return;
    }
    if (!content.is_array()) return;
    for (const json& part : content) {
      const std::string* text = nullptr;
      if (part.is_string()) {
        text = &part.get_ref<const std::string&>();
      } else if (auto it = part.is_object() ? part.find("text") : part.end();
                 it != part.end() && it->is_string()) {
        text = &it->get_ref<const std::string&>();
      }
      if (text == nullptr) continue;
      if (!owned_.empty()) owned_.push_back(' ');
      owned_ += *text;
    }
    view_ = owned_;
  }

  ContentText(const ContentText&) = delete;
  ContentText& operator=(const ContentText&) = delete;
  ContentText(ContentText&&) = delete;
  ContentText& operator=(ContentText&&) = delete;
  ~ContentText() = default;

  std::string_view view() const noexcept { return view_; }

 private:
  std::string owned_;
  std::string_view view_;
};

// Walks OpenAI/Anthropic `messages`: counts the words of every content and keeps the text of
// the last user message. Returns false when a message is not an object.
struct Conversation {
  std::size_t words = 0;
  const json* last_user = nullptr;  // content of the last user message

  std::string_view last_user_text(std::optional<ContentText>& holder) const {
    if (last_user == nullptr) return {};
    return holder.emplace(*last_user).view();
  }
};

bool read_conversation(const json& messages, Conversation& out) {
  for (const json& message : messages) {
    if (!message.is_object()) return false;
    auto content = message.find("content");
    if (content == message.end()) continue;
    out.words += count_words(ContentText(*content).view());
    auto role = message.find("role");
    if (role != message.end() && role->is_string() && role->get_ref<const std::string&>() == "user") {
      out.last_user = &*content;
    }
  }
  return true;
}

struct Generated {
  std::vector<std::string_view> tokens;  // views into the request text or kFiller
  bool hit_limit = false;                // the echo itself did not fit in max_tokens
};

Generated generate(std::string_view prompt, std::int64_t max_tokens, const ReplyContext& context) {
  Generated out;
  if (context.content) {
    for_each_word(*context.content, [&](std::string_view word) { out.tokens.push_back(word); });
    return out;
  }
  const auto limit = static_cast<std::size_t>(std::min(max_tokens, kMaxGeneratedTokens));
  out.tokens.reserve(limit);
  out.tokens.emplace_back("mock");
  out.tokens.emplace_back("reply:");
  for_each_word(first_chars(prompt, kEchoChars), [&](std::string_view word) { out.tokens.push_back(word); });
  if (out.tokens.size() > limit || max_tokens > kMaxGeneratedTokens) {
    out.hit_limit = true;
    if (out.tokens.size() > limit) out.tokens.resize(limit);
  }
  for (std::size_t i = 0; out.tokens.size() < limit; ++i) out.tokens.push_back(kFiller[i % kFiller.size()]);
  return out;
}

std::string join(const std::vector<std::string_view>& tokens) {
  std::string out;
  for (std::string_view token : tokens) {
    if (!out.empty()) out.push_back(' ');
    out.append(token);
  }
  return out;
}

// Piece `i` of the streamed text: concatenating all pieces gives join(tokens).
std::string piece(const Generated& generated, std::size_t i) {
  std::string out;
  if (i > 0) out.push_back(' ');
  out.append(generated.tokens[i]);
  return out;
}

struct Common {
  std::string model;
  bool stream = false;
  bool include_usage = false;
  std::int64_t max_tokens = kDefaultMaxTokens;
};

std::string id_for(std::string_view prefix, const ReplyContext& context) {
  std::string id(prefix);
  id += std::to_string(context.sequence);
  return id;
}

// Reads the fields every generating endpoint shares; the error explains the first bad one.
std::optional<ApiError> read_common(const json& body, Endpoint endpoint, Common& out) {
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return invalid_request("missing_required_parameter", "you must provide a model parameter", "model");
  }
  if (!model->is_string() || model->get_ref<const std::string&>().empty()) {
    return invalid_request("invalid_type", "model must be a non-empty string", "model");
  }
  out.model = model->get<std::string>();

  if (auto stream = body.find("stream"); stream != body.end() && !stream->is_null()) {
    if (!stream->is_boolean()) return invalid_request("invalid_type", "stream must be a boolean", "stream");
    out.stream = stream->get<bool>();
  }
  if (auto options = body.find("stream_options"); options != body.end() && options->is_object()) {
    auto usage = options->find("include_usage");
    out.include_usage = usage != options->end() && usage->is_boolean() && usage->get<bool>();
  }

  const char* limit_key = "max_tokens";
  auto limit = body.end();
  if (endpoint == Endpoint::kChatCompletions) {
    limit = body.find("max_completion_tokens");
    if (limit != body.end() && !limit->is_null()) limit_key = "max_completion_tokens";
  }
  if (limit == body.end() || limit->is_null()) limit = body.find("max_tokens");
  if (limit != body.end() && !limit->is_null()) {
    if (!limit->is_number_integer() || limit->get<std::int64_t>() < 1) {
      return invalid_request("invalid_value", std::string(limit_key) + " must be an integer >= 1", limit_key);
    }
    out.max_tokens = limit->get<std::int64_t>();
  }
  return std::nullopt;
}

void write_openai_usage(JsonWriter& writer, std::size_t prompt, std::size_t completion) {
  writer.key("usage")
      .begin_object()
      .integer_field("prompt_tokens", static_cast<std::int64_t>(prompt))
      .integer_field("completion_tokens", static_cast<std::int64_t>(completion))
      .integer_field("total_tokens", static_cast<std::int64_t>(prompt + completion))
      .end_object();
}

std::string sse_data(std::string_view payload) {
  std::string event;
  event.reserve(payload.size() + 8);
  event.append("data: ").append(payload).append("\n\n");
  return event;
}

// --- chat completions -------------------------------------------------------------------------

std::variant<Reply, ApiError> chat_completion(const json& body, const ReplyContext& context) {
  Common common;
  if (auto error = read_common(body, Endpoint::kChatCompletions, common)) return *error;
  auto messages = body.find("messages");
  if (messages == body.end() || !messages->is_array()) {
    return invalid_request("missing_required_parameter", "messages must be an array", "messages");
  }
  Conversation conversation;
  if (!read_conversation(*messages, conversation)) {
    return invalid_request("invalid_type", "messages must be objects", "messages");
  }
  const std::size_t prompt_tokens = conversation.words;
  std::optional<ContentText> last_user;
  const Generated generated = generate(conversation.last_user_text(last_user), common.max_tokens, context);
  const std::string_view finish = generated.hit_limit ? "length" : "stop";
  const std::string id = id_for("chatcmpl-mock-", context);
  Reply reply;
  reply.stream = common.stream;
  reply.body.reserve(kTypicalBodySize);
  if (!common.stream) {
    JsonWriter writer(reply.body);
    writer.begin_object()
        .string_field("id", id)
        .string_field("object", "chat.completion")
        .integer_field("created", context.created_unix)
        .string_field("model", common.model)
        .string_field("system_fingerprint", "fp_mock")
        .key("choices")
        .begin_array()
        .begin_object()
        .integer_field("index", 0)
        .key("message")
        .begin_object()
        .string_field("role", "assistant")
        .string_field("content", join(generated.tokens))
        .null_field("refusal")
        .end_object()
        .null_field("logprobs")
        .string_field("finish_reason", finish)
        .end_object()
        .end_array();
    write_openai_usage(writer, prompt_tokens, generated.tokens.size());
    writer.end_object();
    return reply;
  }

  auto chunk_head = [&](JsonWriter& writer) {
    writer.begin_object()
        .string_field("id", id)
        .string_field("object", "chat.completion.chunk")
        .integer_field("created", context.created_unix)
        .string_field("model", common.model)
        .string_field("system_fingerprint", "fp_mock");
  };
  reply.events.reserve(generated.tokens.size() + 2);
  for (std::size_t i = 0; i < generated.tokens.size(); ++i) {
    std::string payload;
    JsonWriter writer(payload);
    chunk_head(writer);
    writer.key("choices").begin_array().begin_object().integer_field("index", 0).key("delta").begin_object();
    if (i == 0) writer.string_field("role", "assistant");
    writer.string_field("content", piece(generated, i))
        .end_object()
        .null_field("logprobs")
        .key("finish_reason");
    if (i + 1 == generated.tokens.size()) {
      writer.string(finish);
    } else {
      writer.null();
    }
    writer.end_object().end_array();
    if (common.include_usage) writer.null_field("usage");
    writer.end_object();
    reply.events.push_back(sse_data(payload));
  }
  if (common.include_usage) {
    std::string payload;
    JsonWriter writer(payload);
    chunk_head(writer);
    writer.key("choices").begin_array().end_array();
    write_openai_usage(writer, prompt_tokens, generated.tokens.size());
    writer.end_object();
    reply.events.push_back(sse_data(payload));
  }
  reply.events.push_back(sse_data("[DONE]"));
  return reply;
}

// --- completions ------------------------------------------------------------------------------

std::variant<Reply, ApiError> completion(const json& body, const ReplyContext& context) {
  Common common;
  if (auto error = read_common(body, Endpoint::kCompletions, common)) return *error;
  std::vector<std::string> prompts;
  std::size_t prompt_tokens = 0;
  auto prompt = body.find("prompt");
  if (prompt == body.end() || prompt->is_null()) {
    prompts.emplace_back();
  } else if (prompt->is_string()) {
    prompts.push_back(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
    prompts.emplace_back();
    prompt_tokens = prompt->size();
  } else if (prompt->is_array() && !prompt->empty()) {
    for (const json& item : *prompt) {
      if (item.is_string()) {
        prompts.push_back(item.get<std::string>());
      } else if (item.is_array()) {
        prompts.emplace_back();
        prompt_tokens += item.size();
      } else {
        return invalid_request("invalid_type", "prompt must be a string or a list of strings or tokens",
                               "prompt");
      }
    }
  } else {
    return invalid_request("invalid_type", "prompt must be a string or a non-empty list", "prompt");
  }
  for (const std::string& text : prompts) prompt_tokens += count_words(text);

  std::vector<Generated> outputs;
  outputs.reserve(prompts.size());
  std::size_t completion_tokens = 0;
  for (const std::string& text : prompts) {
    outputs.push_back(generate(text, common.max_tokens, context));
    completion_tokens += outputs.back().tokens.size();
  }
  const std::string id = id_for("cmpl-mock-", context);
  Reply reply;
  reply.stream = common.stream;
  reply.body.reserve(kTypicalBodySize);
  auto head = [&](JsonWriter& writer) {
    writer.begin_object()
        .string_field("id", id)
        .string_field("object", "text_completion")
        .integer_field("created", context.created_unix)
        .string_field("model", common.model)
        .string_field("system_fingerprint", "fp_mock");
  };
  if (!common.stream) {
    JsonWriter writer(reply.body);
    head(writer);
    writer.key("choices").begin_array();
    for (std::size_t c = 0; c < outputs.size(); ++c) {
      writer.begin_object()
          .string_field("text", join(outputs[c].tokens))
          .integer_field("index", static_cast<std::int64_t>(c))
          .null_field("logprobs")
          .string_field("finish_reason", outputs[c].hit_limit ? "length" : "stop")
          .end_object();
    }
    writer.end_array();
    write_openai_usage(writer, prompt_tokens, completion_tokens);
    writer.end_object();
    return reply;
  }

  for (std::size_t c = 0; c < outputs.size(); ++c) {
    const Generated& generated = outputs[c];
    for (std::size_t i = 0; i < generated.tokens.size(); ++i) {
      std::string payload;
      JsonWriter writer(payload);
      head(writer);
      writer.key("choices")
          .begin_array()
          .begin_object()
          .string_field("text", piece(generated, i))
          .integer_field("index", static_cast<std::int64_t>(c))
          .null_field("logprobs")
          .key("finish_reason");
      if (i + 1 == generated.tokens.size()) {
        writer.string(generated.hit_limit ? "length" : "stop");
      } else {
        writer.null();
      }
      writer.end_object().end_array();
      if (common.include_usage) writer.null_field("usage");
      writer.end_object();
      reply.events.push_back(sse_data(payload));
    }
  }
  if (common.include_usage) {
    std::string payload;
    JsonWriter writer(payload);
    head(writer);
    writer.key("choices").begin_array().end_array();
    write_openai_usage(writer, prompt_tokens, completion_tokens);
    writer.end_object();
    reply.events.push_back(sse_data(payload));
  }
  reply.events.push_back(sse_data("[DONE]"));
  return reply;
}

// --- embeddings -------------------------------------------------------------------------------

std::uint64_t fnv1a(std::string_view bytes) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A unit vector that depends only on the input's hash.
std::vector<float> embed(std::uint64_t hash, std::size_t dimensions) {
  std::vector<float> vector(dimensions);
  std::uint64_t state = hash;
  double norm = 0.0;
  for (float& value : vector) {
    const double unit = static_cast<double>(splitmix64(state) >> 11) / static_cast<double>(1ULL << 53);
    value = static_cast<float>(unit * 2.0 - 1.0);
    norm += static_cast<double>(value) * value;
  }
  norm = std::sqrt(norm);
  if (norm > 0.0) {
    for (float& value : vector) value = static_cast<float>(value / norm);
  }
  return vector;
}

std::string base64_floats(const std::vector<float>& values) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  bytes.reserve(values.size() * 4);
  for (float value : values) {
    const auto bits = std::bit_cast<std::uint32_t>(value);
    for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>((bits >> shift) & 0xFF));
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t chunk = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      chunk = (chunk << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0U);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out.push_back(k <= n ? kAlphabet[(chunk >> (18 - 6 * k)) & 0x3F] : '=');
    }
  }
  return out;
}

std::variant<Reply, ApiError> embeddings(const json& body, const ReplyContext&) {
  Common common;
  if (auto error = read_common(body, Endpoint::kEmbeddings, common)) return *error;
  if (common.stream) return invalid_request("invalid_value", "embeddings cannot be streamed", "stream");

  std::int64_t dimensions = kDefaultDimensions;
  if (auto dims = body.find("dimensions"); dims != body.end() && !dims->is_null()) {
    if (!dims->is_number_integer() || dims->get<std::int64_t>() < 1 ||
        dims->get<std::int64_t>() > kMaxDimensions) {
      return invalid_request("invalid_value", "dimensions must be an integer in [1, 65536]", "dimensions");
    }
    dimensions = dims->get<std::int64_t>();
  }
  bool as_base64 = false;
  if (auto format = body.find("encoding_format"); format != body.end() && !format->is_null()) {
    if (*format == "base64") {
      as_base64 = true;
    } else if (*format != "float") {
      return invalid_request("invalid_value", "encoding_format must be 'float' or 'base64'",
                             "encoding_format");
    }
  }

  // Each input item is hashed by its text, or by its JSON form when it is a list of token ids.
  std::vector<std::uint64_t> hashes;
  std::size_t prompt_tokens = 0;
  auto input = body.find("input");
  auto bad_input = [] {
    return invalid_request("invalid_value",
                           "input must be a non-empty string, a list of strings, or a list of token lists",
                           "input");
  };
  if (input == body.end() || input->is_null()) {
    return invalid_request("missing_required_parameter", "you must provide an input parameter", "input");
  }
  if (input->is_string()) {
    const auto& text = input->get_ref<const std::string&>();
    if (text.empty()) return bad_input();
    hashes.push_back(fnv1a(text));
    prompt_tokens += count_words(text);
  } else if (input->is_array() && !input->empty() && (*input)[0].is_number_integer()) {
    hashes.push_back(fnv1a(input->dump()));
    prompt_tokens += input->size();
  } else if (input->is_array() && !input->empty()) {
    for (const json& item : *input) {
      if (item.is_string() && !item.get_ref<const std::string&>().empty()) {
        hashes.push_back(fnv1a(item.get_ref<const std::string&>()));
        prompt_tokens += count_words(item.get_ref<const std::string&>());
      } else if (item.is_array() && !item.empty()) {
        hashes.push_back(fnv1a(item.dump()));
        prompt_tokens += item.size();
      } else {
        return bad_input();
      }
    }
  } else {
    return bad_input();
  }

  Reply reply;
  JsonWriter writer(reply.body);
  writer.begin_object().string_field("object", "list").key("data").begin_array();
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    const std::vector<float> vector = embed(hashes[i], static_cast<std::size_t>(dimensions));
    writer.begin_object()
        .string_field("object", "embedding")
        .integer_field("index", static_cast<std::int64_t>(i))
        .key("embedding");
    if (as_base64) {
      writer.string(base64_floats(vector));
    } else {
      writer.begin_array();
      for (float value : vector) writer.real32(value);
      writer.end_array();
    }
    writer.end_object();
  }
  writer.end_array()
      .string_field("model", common.model)
      .key("usage")
      .begin_object()
      .integer_field("prompt_tokens", static_cast<std::int64_t>(prompt_tokens))
      .integer_field("total_tokens", static_cast<std::int64_t>(prompt_tokens))
      .end_object()
      .end_object();
  return reply;
}

// --- Anthropic messages -----------------------------------------------------------------------

std::string anthropic_event(std::string_view type, std::string_view payload) {
  std::string event;
  event.reserve(payload.size() + type.size() + 16);
  event.append("event: ").append(type).append("\ndata: ").append(payload).append("\n\n");
  return event;
}

std::variant<Reply, ApiError> messages(const json& body, const ReplyContext& context) {
  Common common;
  if (auto error = read_common(body, Endpoint::kMessages, common)) return *error;
  auto messages_it = body.find("messages");
  if (messages_it == body.end() || !messages_it->is_array()) {
    return invalid_request("missing_required_parameter", "messages: field required", "messages");
  }
  Conversation conversation;
  if (!read_conversation(*messages_it, conversation)) {
    return invalid_request("invalid_type", "messages must be objects", "messages");
  }
  std::size_t input_tokens = conversation.words;
  if (auto system = body.find("system"); system != body.end()) {
    input_tokens += count_words(ContentText(*system).view());
  }
  std::optional<ContentText> last_user;
  const Generated generated = generate(conversation.last_user_text(last_user), common.max_tokens, context);
  const std::string_view stop_reason = generated.hit_limit ? "max_tokens" : "end_turn";
  const std::string id = id_for("msg_mock_", context);
  const auto input = static_cast<std::int64_t>(input_tokens);
  const auto output = static_cast<std::int64_t>(generated.tokens.size());

  Reply reply;
  reply.stream = common.stream;
  reply.body.reserve(kTypicalBodySize);
  if (!common.stream) {
    JsonWriter writer(reply.body);
    writer.begin_object()
        .string_field("id", id)
        .string_field("type", "message")
        .string_field("role", "assistant")
        .string_field("model", common.model)
        .key("content")
        .begin_array()
        .begin_object()
        .string_field("type", "text")
        .string_field("text", join(generated.tokens))
        .end_object()
        .end_array()
        .string_field("stop_reason", stop_reason)
        .null_field("stop_sequence")
        .key("usage")
        .begin_object()
        .integer_field("input_tokens", input)
        .integer_field("output_tokens", output)
        .end_object()
        .end_object();
    return reply;
  }

  reply.events.reserve(generated.tokens.size() + 5);
  {
    std::string payload;
    JsonWriter writer(payload);
    writer.begin_object()
        .string_field("type", "message_start")
        .key("message")
        .begin_object()
        .string_field("id", id)
        .string_field("type", "message")
        .string_field("role", "assistant")
        .string_field("model", common.model)
        .key("content")
        .begin_array()
        .end_array()
        .null_field("stop_reason")
        .null_field("stop_sequence")
        .key("usage")
        .begin_object()
        .integer_field("input_tokens", input)
        .integer_field("output_tokens", 0)
        .end_object()
        .end_object()
        .end_object();
    reply.events.push_back(anthropic_event("message_start", payload));
  }
  reply.events.push_back(anthropic_event(
      "content_block_start",
      R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"));
  for (std::size_t i = 0; i < generated.tokens.size(); ++i) {
    std::string payload;
    JsonWriter writer(payload);
    writer.begin_object()
        .string_field("type", "content_block_delta")
        .integer_field("index", 0)
        .key("delta")
        .begin_object()
        .string_field("type", "text_delta")
        .string_field("text", piece(generated, i))
        .end_object()
        .end_object();
    reply.events.push_back(anthropic_event("content_block_delta", payload));
  }
  reply.events.push_back(anthropic_event("content_block_stop", R"({"type":"content_block_stop","index":0})"));
  {
    std::string payload;
    JsonWriter writer(payload);
    writer.begin_object()
        .string_field("type", "message_delta")
        .key("delta")
        .begin_object()
        .string_field("stop_reason", stop_reason)
        .null_field("stop_sequence")
        .end_object()
        .key("usage")
        .begin_object()
        .integer_field("output_tokens", output)
        .end_object()
        .end_object();
    reply.events.push_back(anthropic_event("message_delta", payload));
  }
  reply.events.push_back(anthropic_event("message_stop", R"({"type":"message_stop"})"));
  return reply;
}

std::string_view anthropic_error_type(unsigned status) noexcept {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return status < 500 ? "invalid_request_error" : "api_error";
  }
}

}  // namespace

std::optional<Endpoint> endpoint_for_path(std::string_view path) {
  if (path == "/v1/chat/completions") return Endpoint::kChatCompletions;
  if (path == "/v1/completions") return Endpoint::kCompletions;
  if (path == "/v1/embeddings") return Endpoint::kEmbeddings;
  if (path == "/v1/messages") return Endpoint::kMessages;
  return std::nullopt;
}

ErrorFlavor error_flavor(Endpoint endpoint) noexcept {
  return endpoint == Endpoint::kMessages ? ErrorFlavor::kAnthropic : ErrorFlavor::kOpenAI;
}

ApiError invalid_request(std::string code, std::string message, std::string param) {
  return ApiError{400, "invalid_request_error", std::move(code), std::move(message), std::move(param)};
}

ApiError status_fault_error(unsigned status) {
  switch (status) {
    case 429:
      return {429,
              "requests",
              "rate_limit_exceeded",
              "Rate limit reached for requests (mock provider fault). Please try again later.",
              {}};
    case 500:
      return {500,
              "server_error",
              "internal_error",
              "The server had an error while processing your request (mock provider fault).",
              {}};
    case 503:
      return {503,
              "server_error",
              "service_unavailable",
              "The server is overloaded or not ready yet (mock provider fault).",
              {}};
    case 404:
      return {404,
              "invalid_request_error",
              "not_found",
              "The requested resource does not exist (mock provider fault).",
              {}};
    default:
      return {status,
              status < 500 ? "invalid_request_error" : "server_error",
              "mock_fault_" + std::to_string(status),
              "Mock provider fault " + std::to_string(status) + ".",
              {}};
  }
}

std::string error_body(const ApiError& error, ErrorFlavor flavor) {
  std::string out;
  JsonWriter writer(out);
  if (flavor == ErrorFlavor::kAnthropic) {
    writer.begin_object()
        .string_field("type", "error")
        .key("error")
        .begin_object()
        .string_field("type", anthropic_error_type(error.status))
        .string_field("message", error.message)
        .string_field("code", error.code)
        .end_object()
        .end_object();
    return out;
  }
  writer.begin_object()
      .key("error")
      .begin_object()
      .string_field("message", error.message)
      .string_field("type", error.type)
      .key("param");
  if (error.param.empty()) {
    writer.null();
  } else {
    writer.string(error.param);
  }
  writer.string_field("code", error.code).end_object().end_object();
  return out;
}

std::variant<Reply, ApiError> build_reply(Endpoint endpoint, const nlohmann::json& body,
                                          const ReplyContext& context) {
  if (!body.is_object()) return invalid_request("invalid_type", "the request body must be a JSON object");
  switch (endpoint) {
    case Endpoint::kChatCompletions:
      return chat_completion(body, context);
    case Endpoint::kCompletions:
      return completion(body, context);
    case Endpoint::kEmbeddings:
      return embeddings(body, context);
    case Endpoint::kMessages:
      return messages(body, context);
  }
  return invalid_request("unknown_url", "unknown endpoint");
}

std::string_view malformed_body() noexcept {
  return R"({"id":"chatcmpl-mock-malformed","object":"chat.completion","choices":[{"index":0,"message":{"role":)";
}

std::size_t count_words(std::string_view text) noexcept {
  std::size_t words = 0;
  for_each_word(text, [&words](std::string_view) { ++words; });
  return words;
}

}  // namespace kafka_llm::mock_provider
