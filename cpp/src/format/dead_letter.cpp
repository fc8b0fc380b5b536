#include "kafka_llm/format/dead_letter.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include "json_util.hpp"
#include "kafka_llm/format/utf8.hpp"

namespace kafka_llm::format {

namespace {

constexpr std::string_view kMask = "***";
constexpr std::string_view kEllipsis = "...";
constexpr std::size_t kMinKeyBodyChars = 8;

bool is_dead_letter_header(std::string_view name) {
  const auto same = [&](std::string_view known) {
    return known.size() == name.size() &&
           std::equal(known.begin(), known.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  };
  return std::any_of(kDeadLetterHeaderNames.begin(), kDeadLetterHeaderNames.end(), same) ||
         std::any_of(kDeadLetterTagHeaderNames.begin(), kDeadLetterTagHeaderNames.end(), same);
}

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool is_key_char(char c) {
  return is_alnum(c) || c == '_' || c == '-';
}
bool is_bearer_token_char(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

bool starts_with_ignoring_case(std::string_view text, std::size_t at, std::string_view prefix) {
  if (text.size() - at < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[at + i])) != prefix[i]) return false;
  }
  return true;
}

std::string mask_known_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<const std::string*> ordered;
  for (const auto& secret : secrets) {
    if (!secret.empty()) ordered.push_back(&secret);
  }
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (at < text.size()) {
    bool masked = false;
    for (const std::string* secret : ordered) {
      if (text.substr(at).starts_with(*secret)) {
        out.append(kMask);
        at += secret->size();
        masked = true;
        break;
      }
    }
    if (!masked) out.push_back(text[at++]);
  }
  return out;
}

struct TokenSpan {
  std::size_t begin;
  std::size_t end;
};

// "Bearer <token>" starting at `at`: the token's span.
std::optional<TokenSpan> bearer_token(std::string_view text, std::size_t at) {
  constexpr std::string_view kScheme = "bearer";
  if (!starts_with_ignoring_case(text, at, kScheme)) return std::nullopt;
  std::size_t begin = at + kScheme.size();
  const std::size_t after_scheme = begin;
  while (begin < text.size() && text[begin] == ' ') ++begin;
  std::size_t end = begin;
  while (end < text.size() && is_bearer_token_char(text[end])) ++end;
  if (begin == after_scheme || end == begin) return std::nullopt;
  return TokenSpan{begin, end};
}

// An API-key-shaped word starting at `at`: where it ends.
std::optional<std::size_t> api_key_end(std::string_view text, std::size_t at) {
  for (const std::string_view prefix :
       {std::string_view("sk-"), std::string_view("sk_"), std::string_view("gsk_")}) {
    if (!text.substr(at).starts_with(prefix)) continue;
    std::size_t end = at + prefix.size();
    while (end < text.size() && is_key_char(text[end])) ++end;
    if (end - at - prefix.size() >= kMinKeyBodyChars) return end;
  }
  return std::nullopt;
}

std::string mask_token_shapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (at < text.size()) {
    if (at == 0 || !is_key_char(text[at - 1])) {
      if (const auto token = bearer_token(text, at)) {
        out.append(text.substr(at, token->begin - at));
        out.append(kMask);
        at = token->end;
        continue;
      }
      if (const auto end = api_key_end(text, at)) {
        out.append(kMask);
        at = *end;
        continue;
      }
    }
    out.push_back(text[at++]);
  }
  return out;
}

}  // namespace

std::string redact_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  return mask_token_shapes(mask_known_secrets(text, secrets));
}

std::string bounded_error_text(std::string_view text, const std::vector<std::string>& secrets,
                               std::size_t max_bytes) {
  std::string redacted = redact_secrets(detail::to_valid_utf8(text), secrets);
  if (redacted.size() <= max_bytes) return redacted;
  if (max_bytes <= kEllipsis.size()) return std::string(truncate_utf8(redacted, max_bytes));
  std::string bounded(truncate_utf8(redacted, max_bytes - kEllipsis.size()));
  bounded.append(kEllipsis);
  return bounded;
}

HeaderList dead_letter_headers(const HeaderList& original, const DeadLetterFacts& facts,
                               const std::vector<std::string>& secrets, std::size_t max_error_bytes) {
  HeaderList headers;
  headers.reserve(original.size() + kDeadLetterHeaderNames.size());
  for (const auto& header : original) {
    if (!is_dead_letter_header(header.first)) headers.push_back(header);
  }
  const auto optional_number = [](const auto& value) {
    return value ? std::to_string(*value) : std::string();
  };
  headers.emplace_back("x-error-class", std::string(to_string(facts.error_class)));
  headers.emplace_back("x-error", bounded_error_text(facts.error, secrets, max_error_bytes));
  headers.emplace_back("x-http-status", optional_number(facts.http_status));
  headers.emplace_back("x-attempts", std::to_string(facts.attempts));
  headers.emplace_back("x-request-id", facts.request_id);
  headers.emplace_back("x-provider", facts.provider);
  headers.emplace_back("x-model", facts.model);
  headers.emplace_back("x-source-topic", facts.origin.topic);
  headers.emplace_back("x-source-partition", std::to_string(facts.origin.partition));
  headers.emplace_back("x-source-offset", std::to_string(facts.origin.offset));
  headers.emplace_back("x-first-attempt-ms", optional_number(facts.first_attempt_ms));
  headers.emplace_back("x-failed-at-ms", std::to_string(facts.failed_at_ms));
  return headers;
}

}  // namespace kafka_llm::format
