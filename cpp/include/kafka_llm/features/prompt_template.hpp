#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kafka_llm/format/endpoint.hpp"

namespace kafka_llm::features {

/// A versioned prompt template of one stream (`messaging.streams[].prompt`).
///
/// The template text holds `{{input}}` (spaces inside the braces allowed) once or more; every other
/// `{{…}}` is an error, and so is a `{{` that is never closed. Literal text is copied as it is.
/// Applied to a request body:
/// - chat: the last `user` message's content becomes the rendered template (a string content, or
///   the `text` parts of a content-part array joined with "\n" and put back as one text part where
///   the first one was; other parts stay); `system` is inserted as the first message (existing
///   system messages stay).
/// - completions: every prompt string (`prompt` or each string of a `prompt` array) is rendered,
///   then `system` followed by a blank line is put in front.
/// - embeddings: every `input` string is rendered; `system` does not apply.
class PromptTemplate {
 public:
  /// Checks and splits the template. `text` may be empty (no rewriting, only `system`); `system`
  /// takes no placeholders. Throws FeatureConfigError naming "version", "template" or "system".
  static PromptTemplate compile(std::string version, std::string system, const std::string& text);

  const std::string& version() const noexcept { return version_; }
  bool has_text() const noexcept { return !pieces_.empty(); }

  /// The template with every `{{input}}` replaced by `input`; `input` itself when there is no text.
  std::string render(std::string_view input) const;

  /// Rewrites `body` (an OpenAI-style request of `endpoint`) in place. Returns why it cannot be
  /// applied (no user message, a content without text, token-id prompts), leaving `body` as it was.
  std::optional<std::string> apply(format::Endpoint endpoint, nlohmann::json& body) const;

 private:
  PromptTemplate() = default;

  std::string version_;
  std::string system_;
  /// Literal pieces; between two consecutive pieces stands one `{{input}}`. Empty: no template.
  std::vector<std::string> pieces_;
};

}  // namespace kafka_llm::features
