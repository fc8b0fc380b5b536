#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace kafka_llm::features {

/// A user-defined redaction rule (`redact.patterns[]`).
struct RedactionPattern {
  std::string name;         ///< unique; the metric label is "pattern:<name>"
  std::string regex;        ///< RE2 syntax (linear time: no backreferences, no lookaround)
  std::string replacement;  ///< literal text; default "[REDACTED]"
};

/// The PII rules of one stream (`messaging.streams[].redact`).
struct RedactionRules {
  bool emails = false;  ///< → [EMAIL]
  bool phones = false;  ///< international (+CC …) and North American (415-555-0134, (415) 555-0134) → [PHONE]
  bool cards = false;  ///< 13–19 digits (spaces/dashes allowed) passing the Luhn check → [CARD]
  std::vector<RedactionPattern> patterns;
  std::vector<std::string> fields;  ///< JSON member names anywhere in the body → "[REDACTED]"
};

/// Replacements made, per rule label: "email", "phone", "card", "pattern:<name>", "field:<name>".
using RedactionCounts = std::map<std::string, std::uint64_t>;

/// Applies a stream's redaction rules to request bodies. Immutable after construction and safe to
/// share between threads. Every regular expression is RE2, so matching is linear in the text.
class Redactor {
 public:
  /// Compiles the rules. Throws FeatureConfigError naming the field ("patterns[1].regex",
  /// "patterns[0].name", "fields[2]") for an invalid regex, one that matches the empty string, a
  /// missing or duplicate name, or an empty field name.
  explicit Redactor(RedactionRules rules);
  ~Redactor();
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;
  Redactor(Redactor&&) = delete;
  Redactor& operator=(Redactor&&) = delete;

  /// `text` with the text rules applied in order: patterns (as listed), cards, emails, phones.
  /// Adds what was replaced to `counts`.
  std::string redact_text(std::string_view text, RedactionCounts& counts) const;

  /// Redacts a request body in place: first the value of every member named in `fields`, at any
  /// depth; then the text rules over each message's content (a string, or the `text` of content
  /// parts), the arguments of its tool calls (`tool_calls[].function.arguments`, `function_call`),
  /// the top-level `system` (Anthropic's messages API: a string or text blocks), `prompt` and `input`
  /// (strings or arrays of strings). Tool-call arguments that are JSON are redacted string by string
  /// and stay JSON. Returns what was replaced.
  RedactionCounts apply(nlohmann::json& body) const;

  const RedactionRules& rules() const noexcept { return rules_; }

 private:
  struct Compiled;
  void redact_value(nlohmann::json& value, RedactionCounts& counts) const;
  void redact_content(nlohmann::json& content, RedactionCounts& counts) const;
  void redact_strings(nlohmann::json& value, RedactionCounts& counts) const;
  void redact_arguments(nlohmann::json& arguments, RedactionCounts& counts) const;
  void redact_fields(nlohmann::json& value, RedactionCounts& counts) const;

  RedactionRules rules_;
  std::vector<std::unique_ptr<Compiled>> compiled_;  ///< text rules, in the order they run
};

/// Whether the digits of `digits` (ASCII '0'–'9' only) pass the Luhn checksum.
bool luhn_valid(std::string_view digits) noexcept;

}  // namespace kafka_llm::features
