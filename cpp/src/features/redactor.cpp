#include "kafka_llm/features/redactor.hpp"

#include <re2/re2.h>

#include <optional>
#include <set>

#include "kafka_llm/features/feature_error.hpp"

namespace kafka_llm::features {

namespace {

using nlohmann::json;

constexpr std::string_view kEmailRegex =
    R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,})";
// International numbers start with "+<country code>"; national ones need the North American
// 3-3-4 shape with separators, so dates, prices and plain digit runs are left alone.
constexpr std::string_view kPhoneRegex =
    R"(\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,5}|\(\d{3}\) ?\d{3}[ .\-]\d{4}|\d{3}[ .\-]\d{3}[ .\-]\d{4})";
constexpr std::string_view kCardRegex = R"(\d(?:[ \-]?\d){12,18})";
constexpr std::size_t kMinCardDigits = 13;
constexpr std::size_t kMinPhoneDigits = 8;
constexpr std::size_t kMaxPhoneDigits = 15;

enum class Check : std::uint8_t { kNone, kCard, kPhone };

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Where an accepted card number ends, or nullopt: the longest run of 13+ digits from `begin`
// (within the candidate match) that is not glued to letters or digits and passes Luhn.
std::optional<std::size_t> accept_card(std::string_view text, std::size_t begin, std::size_t end) {
  if (begin > 0 && is_alnum(text[begin - 1])) return std::nullopt;
  std::string digits;
  std::vector<std::size_t> digit_end;  // offset just past the n-th digit
  for (std::size_t i = begin; i < end; ++i) {
    if (!is_digit(text[i])) continue;
    digits.push_back(text[i]);
    digit_end.push_back(i + 1);
  }
  for (std::size_t n = digits.size(); n >= kMinCardDigits; --n) {
    const std::size_t stop = digit_end[n - 1];
    if (stop < text.size() && is_alnum(text[stop])) continue;
    if (luhn_valid(std::string_view(digits).substr(0, n))) return stop;
  }
  return std::nullopt;
}

std::optional<std::size_t> accept_phone(std::string_view text, std::size_t begin, std::size_t end) {
  if (begin > 0 && (is_alnum(text[begin - 1]) || text[begin - 1] == '+')) return std::nullopt;
  if (end < text.size() && is_alnum(text[end])) return std::nullopt;
  std::size_t digits = 0;
  for (std::size_t i = begin; i < end; ++i) digits += is_digit(text[i]) ? 1 : 0;
  if (digits < kMinPhoneDigits || digits > kMaxPhoneDigits) return std::nullopt;
  return end;
}

std::unique_ptr<re2::RE2> compile(std::string_view pattern) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  return std::make_unique<re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
}

void add(RedactionCounts& counts, const std::string& label, std::uint64_t n) {
  if (n > 0) counts[label] += n;
}

}  // namespace

struct Redactor::Compiled {
  std::unique_ptr<re2::RE2> re;
  std::string label;
  std::string replacement;
  Check check = Check::kNone;
};

bool luhn_valid(std::string_view digits) noexcept {
  if (digits.empty()) return false;
  unsigned sum = 0;
  bool twice = false;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (!is_digit(*it)) return false;
    unsigned d = static_cast<unsigned>(*it - '0');
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

Redactor::Redactor(RedactionRules rules) : rules_(std::move(rules)) {
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < rules_.patterns.size(); ++i) {
    auto& pattern = rules_.patterns[i];
    const std::string at = "patterns[" + std::to_string(i) + "]";
    if (pattern.name.empty()) throw FeatureConfigError(at + ".name", "is required");
    if (!names.insert(pattern.name).second) {
      throw FeatureConfigError(at + ".name", "duplicate pattern name \"" + pattern.name + "\"");
    }
    if (pattern.regex.empty()) throw FeatureConfigError(at + ".regex", "is required");
    auto re = compile(pattern.regex);
    if (!re->ok()) throw FeatureConfigError(at + ".regex", "invalid RE2 regular expression: " + re->error());
    if (re2::RE2::FullMatch("", *re))
      throw FeatureConfigError(at + ".regex", "must not match the empty string");
    if (pattern.replacement.empty()) pattern.replacement = "[REDACTED]";
    compiled_.push_back(std::make_unique<Compiled>(
        Compiled{std::move(re), "pattern:" + pattern.name, pattern.replacement, Check::kNone}));
  }
  for (std::size_t i = 0; i < rules_.fields.size(); ++i) {
    if (rules_.fields[i].empty())
      throw FeatureConfigError("fields[" + std::to_string(i) + "]", "must not be empty");
  }
  auto builtin = [this](std::string_view regex, std::string label, std::string replacement, Check check) {
    auto re = compile(regex);
    if (!re->ok()) throw std::logic_error("built-in redaction regex does not compile: " + re->error());
    compiled_.push_back(
        std::make_unique<Compiled>(Compiled{std::move(re), std::move(label), std::move(replacement), check}));
  };
  if (rules_.cards) builtin(kCardRegex, "card", "[CARD]", Check::kCard);
  if (rules_.emails) builtin(kEmailRegex, "email", "[EMAIL]", Check::kNone);
  if (rules_.phones) builtin(kPhoneRegex, "phone", "[PHONE]", Check::kPhone);
}

Redactor::~Redactor() = default;

std::string Redactor::redact_text(std::string_view input, RedactionCounts& counts) const {
  std::string text(input);
  for (const auto& rule : compiled_) {
    const re2::StringPiece whole(text.data(), text.size());
    std::string out;
    std::size_t copied = 0;
    std::size_t search = 0;
    std::uint64_t replaced = 0;
    re2::StringPiece match;
    while (search <= text.size() &&
           rule->re->Match(whole, search, text.size(), re2::RE2::UNANCHORED, &match, 1)) {
      const auto begin = static_cast<std::size_t>(match.data() - text.data());
      const std::size_t end = begin + match.size();
      std::optional<std::size_t> accepted;
      if (match.empty()) {
        accepted = std::nullopt;
      } else if (rule->check == Check::kCard) {
        accepted = accept_card(text, begin, end);
      } else if (rule->check == Check::kPhone) {
        accepted = accept_phone(text, begin, end);
      } else {
        accepted = end;
      }
      if (!accepted) {
        // Try again one character further on (a shorter or later candidate may still qualify).
        search = begin + 1;
        while (search < text.size() && (static_cast<unsigned char>(text[search]) & 0xC0U) == 0x80U) ++search;
        continue;
      }
      out.append(text, copied, begin - copied);
      out.append(rule->replacement);
      copied = *accepted;
      search = *accepted;
      ++replaced;
    }
    if (replaced == 0) continue;
    out.append(text, copied, std::string::npos);
    text = std::move(out);
    add(counts, rule->label, replaced);
  }
  return text;
}

void Redactor::redact_value(json& value, RedactionCounts& counts) const {
  if (value.is_string()) {
    value = redact_text(value.get_ref<const std::string&>(), counts);
  } else if (value.is_array()) {
    for (json& element : value) {
      if (element.is_string()) element = redact_text(element.get_ref<const std::string&>(), counts);
    }
  }
}

void Redactor::redact_content(json& content, RedactionCounts& counts) const {
  if (content.is_string()) {
    redact_value(content, counts);
  } else if (content.is_array()) {
    for (json& part : content) {
      if (part.is_string()) {
        redact_value(part, counts);
      } else if (part.is_object()) {
        if (auto text = part.find("text"); text != part.end() && text->is_string())
          redact_value(*text, counts);
      }
    }
  }
}

void Redactor::redact_strings(json& value, RedactionCounts& counts) const {
  if (value.is_string()) {
    redact_value(value, counts);
  } else if (value.is_structured()) {
    for (json& element : value) redact_strings(element, counts);
  }
}

void Redactor::redact_arguments(json& arguments, RedactionCounts& counts) const {
  if (!arguments.is_string()) {
    redact_strings(arguments, counts);  // some clients send the arguments as an object
    return;
  }
  // The arguments are JSON text: redact its strings and write it back, so a replacement can
  // never break the JSON; text that is not JSON is redacted as text.
  json parsed = json::parse(arguments.get_ref<const std::string&>(), nullptr, false);
  if (parsed.is_discarded()) {
    redact_value(arguments, counts);
    return;
  }
  RedactionCounts found;
  redact_strings(parsed, found);
  if (found.empty()) return;
  for (const auto& [rule, n] : found) counts[rule] += n;
  arguments = parsed.dump();
}

void Redactor::redact_fields(json& value, RedactionCounts& counts) const {
  if (value.is_object()) {
    for (auto& [key, member] : value.items()) {
      bool named = false;
      for (const auto& field : rules_.fields) {
        if (key == field) {
          named = true;
          break;
        }
      }
      if (named) {
        member = "[REDACTED]";
        add(counts, "field:" + key, 1);
      } else {
        redact_fields(member, counts);
      }
    }
  } else if (value.is_array()) {
    for (json& element : value) redact_fields(element, counts);
  }
}

RedactionCounts Redactor::apply(json& body) const {
  RedactionCounts counts;
  if (!body.is_object()) return counts;
  if (!rules_.fields.empty()) redact_fields(body, counts);
  if (compiled_.empty()) return counts;
  if (auto messages = body.find("messages"); messages != body.end() && messages->is_array()) {
    for (json& message : *messages) {
      if (!message.is_object()) continue;
      if (auto content = message.find("content"); content != message.end()) redact_content(*content, counts);
      if (auto calls = message.find("tool_calls"); calls != message.end() && calls->is_array()) {
        for (json& call : *calls) {
          if (!call.is_object()) continue;
          if (auto function = call.find("function"); function != call.end() && function->is_object()) {
            if (auto args = function->find("arguments"); args != function->end())
              redact_arguments(*args, counts);
          }
        }
      }
      if (auto call = message.find("function_call"); call != message.end() && call->is_object()) {
        if (auto args = call->find("arguments"); args != call->end()) redact_arguments(*args, counts);
      }
    }
  }
  if (auto system = body.find("system"); system != body.end()) redact_content(*system, counts);
  for (std::string_view field : {"prompt", "input"}) {
    if (auto it = body.find(field); it != body.end()) redact_value(*it, counts);
  }
  return counts;
}

}  // namespace kafka_llm::features
