#include "kafka_llm/features/prompt_template.hpp"

#include "kafka_llm/features/feature_error.hpp"

namespace kafka_llm::features {

namespace {

using nlohmann::json;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Whether `object` is an object whose `key` is a string (equal to `expected` when given).
bool has_string(const json& object, std::string_view key, std::optional<std::string_view> expected = {}) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return false;
  return !expected || it->get_ref<const std::string&>() == *expected;
}

std::string excerpt(std::string_view text) {
  constexpr std::size_t kMax = 40;
  return text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "...";
}

// Renders every string of a prompt value (a string or an array of strings) in place; token-id
// prompts (numbers or arrays of numbers) cannot be templated.
std::optional<std::string> render_prompt_value(const PromptTemplate& tmpl, json& value,
                                               std::string_view field, std::string_view prefix) {
  auto render = [&](json& text) {
    text = std::string(prefix) + tmpl.render(text.get_ref<const std::string&>());
  };
  if (value.is_string()) {
    render(value);
    return std::nullopt;
  }
  if (value.is_array()) {
    for (const json& element : value) {
      if (!element.is_string()) {
        return "prompt template " + tmpl.version() + " applies to text, but body." + std::string(field) +
               " holds token ids";
      }
    }
    for (json& element : value) render(element);
    return std::nullopt;
  }
  return "prompt template " + tmpl.version() + " applies to text, but body." + std::string(field) +
         " is not a string or an array of strings";
}

}  // namespace

PromptTemplate PromptTemplate::compile(std::string version, std::string system, const std::string& text) {
  if (version.empty()) throw FeatureConfigError("version", "is required when a prompt is given");
  if (system.find("{{") != std::string::npos) {
    throw FeatureConfigError("system", "takes no placeholders (found \"{{\"); only template has {{input}}");
  }
  PromptTemplate out;
  out.version_ = std::move(version);
  out.system_ = std::move(system);
  if (text.empty()) return out;

  std::vector<std::string> pieces(1);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      pieces.back().append(text, pos, std::string::npos);
      break;
    }
    pieces.back().append(text, pos, open - pos);
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      throw FeatureConfigError("template", "\"{{\" at byte " + std::to_string(open) + " is never closed");
    }
    const std::string_view name = trim(std::string_view(text).substr(open + 2, close - open - 2));
    if (name != "input") {
      throw FeatureConfigError(
          "template", "unknown placeholder {{" + excerpt(name) + "}} (the only placeholder is {{input}})");
    }
    pieces.emplace_back();
    pos = close + 2;
  }
  if (pieces.size() < 2) throw FeatureConfigError("template", "must contain {{input}}");
  out.pieces_ = std::move(pieces);
  return out;
}

std::string PromptTemplate::render(std::string_view input) const {
  if (pieces_.empty()) return std::string(input);
  std::string out;
  std::size_t size = input.size() * (pieces_.size() - 1);
  for (const auto& piece : pieces_) size += piece.size();
  out.reserve(size);
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    if (i > 0) out.append(input);
    out.append(pieces_[i]);
  }
  return out;
}

std::optional<std::string> PromptTemplate::apply(format::Endpoint endpoint, json& body) const {
  switch (endpoint) {
    case format::Endpoint::kChatCompletions: {
      auto messages = body.find("messages");
      if (messages == body.end() || !messages->is_array()) return "the request has no messages";
      if (has_text()) {
        json* user = nullptr;
        for (auto it = messages->rbegin(); it != messages->rend(); ++it) {
          if (has_string(*it, "role", "user")) {
            user = &*it;
            break;
          }
        }
        if (user == nullptr)
          return "prompt template " + version_ + " needs a user message; the request has none";
        auto content = user->find("content");
        if (content == user->end() || (!content->is_string() && !content->is_array())) {
          return "prompt template " + version_ + " needs text in the last user message's content";
        }
        if (content->is_string()) {
          *content = render(content->get_ref<const std::string&>());
        } else {
          std::string joined;
          std::optional<std::size_t> first;
          json kept = json::array();
          for (const json& part : *content) {
            const bool text_part = has_string(part, "type", "text") && has_string(part, "text");
            if (!text_part) {
              kept.push_back(part);
              continue;
            }
            if (first) joined.push_back('\n');
            joined += part["text"].get_ref<const std::string&>();
            if (!first) {
              first = kept.size();
              kept.push_back(part);
            }
          }
          if (!first) {
            return "prompt template " + version_ + " needs a text part in the last user message's content";
          }
          kept[*first]["text"] = render(joined);
          *content = std::move(kept);
        }
      }
      if (!system_.empty()) {
        messages->insert(messages->begin(), json{{"role", "system"}, {"content", system_}});
      }
      return std::nullopt;
    }
    case format::Endpoint::kCompletions: {
      auto prompt = body.find("prompt");
      if (prompt == body.end()) return "the request has no prompt";
      const std::string prefix = system_.empty() ? std::string() : system_ + "\n\n";
      if (!has_text() && prefix.empty()) return std::nullopt;
      json rewritten = *prompt;
      if (auto error = render_prompt_value(*this, rewritten, "prompt", prefix)) return error;
      *prompt = std::move(rewritten);
      return std::nullopt;
    }
    case format::Endpoint::kEmbeddings: {
      if (!has_text()) return std::nullopt;
      auto input = body.find("input");
      if (input == body.end()) return "the request has no input";
      json rewritten = *input;
      if (auto error = render_prompt_value(*this, rewritten, "input", "")) return error;
      *input = std::move(rewritten);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace kafka_llm::features
