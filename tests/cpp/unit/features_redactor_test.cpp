#include <gtest/gtest.h>

#include "kafka_llm/features/feature_error.hpp"
#include "kafka_llm/features/redactor.hpp"

namespace kafka_llm::features {
namespace {

using nlohmann::json;

RedactionRules builtins() {
  RedactionRules rules;
  rules.emails = true;
  rules.phones = true;
  rules.cards = true;
  return rules;
}

std::string redact(const Redactor& r, std::string_view text) {
  RedactionCounts counts;
  return r.redact_text(text, counts);
}

std::string error_of(RedactionRules rules) {
  try {
    Redactor r(std::move(rules));
  } catch (const FeatureConfigError& e) {
    return e.field() + ": " + e.what();
  }
  return "";
}

TEST(FeaturesRedactor, Luhn) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("5555555555554444"));
  EXPECT_TRUE(luhn_valid("378282246310005"));
  EXPECT_TRUE(luhn_valid("6011111111111117"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid("1234567890123456"));
  EXPECT_FALSE(luhn_valid(""));
  EXPECT_FALSE(luhn_valid("41111111111111a1"));
}

TEST(FeaturesRedactor, CardsPassingLuhnAreReplacedWithOrWithoutSeparators) {
  const Redactor r(builtins());
  RedactionCounts counts;
  EXPECT_EQ(r.redact_text("pay 4111 1111 1111 1111 now", counts), "pay [CARD] now");
  EXPECT_EQ(r.redact_text("4111-1111-1111-1111", counts), "[CARD]");
  EXPECT_EQ(r.redact_text("amex 378282246310005.", counts), "amex [CARD].");
  EXPECT_EQ(counts, (RedactionCounts{{"card", 3}}));
  // A valid card followed by more digit groups is still found.
  EXPECT_EQ(redact(r, "4111 1111 1111 1111 12"), "[CARD] 12");
}

TEST(FeaturesRedactor, DigitRunsFailingLuhnOrGluedToTextStay) {
  const Redactor r(builtins());
  for (std::string_view text : {"order 4111111111111112", "1234567890123456", "id x4111111111111111",
                                "4111111111111111999999", "123456789012"}) {
    RedactionCounts counts;
    EXPECT_EQ(r.redact_text(text, counts), text);
    EXPECT_TRUE(counts.empty()) << text;
  }
}

TEST(FeaturesRedactor, EmailsAndPhones) {
  const Redactor r(builtins());
  RedactionCounts counts;
  EXPECT_EQ(r.redact_text("mail jane.doe+x@mail.example.co.uk or bob@ex.io", counts),
            "mail [EMAIL] or [EMAIL]");
  EXPECT_EQ(r.redact_text("call +1 415 555 0134, (415) 555-0134 or 415.555.0134", counts),
            "call [PHONE], [PHONE] or [PHONE]");
  EXPECT_EQ(r.redact_text("+44 20 7946 0958", counts), "[PHONE]");
  EXPECT_EQ(counts, (RedactionCounts{{"email", 2}, {"phone", 4}}));
  // Dates, versions, prices and short numbers are not phones.
  for (std::string_view text : {"2024-01-15", "v1.2.3", "$1,299.00", "call 555-0134", "x415-555-0134"}) {
    EXPECT_EQ(redact(r, text), text);
  }
  EXPECT_EQ(redact(r, "not@an-email"), "not@an-email");
}

TEST(FeaturesRedactor, CustomPatternsRunFirstWithTheirReplacement) {
  RedactionRules rules;
  rules.patterns = {{"employee_id", R"(E\d{6})", "[EMPLOYEE_ID]"}, {"ticket", R"(T-\d+)", ""}};
  const Redactor r(std::move(rules));
  RedactionCounts counts;
  EXPECT_EQ(r.redact_text("E123456 and E654321 filed T-9", counts),
            "[EMPLOYEE_ID] and [EMPLOYEE_ID] filed [REDACTED]");
  EXPECT_EQ(counts, (RedactionCounts{{"pattern:employee_id", 2}, {"pattern:ticket", 1}}));
  // The replacement is literal text.
  RedactionRules literal;
  literal.patterns = {{"x", "(a)", R"(\1$0)"}};
  EXPECT_EQ(redact(Redactor(std::move(literal)), "bab"), R"(b\1$0b)");
}

TEST(FeaturesRedactor, BadPatternsNameTheField) {
  RedactionRules bad_regex;
  bad_regex.patterns = {{"ok", "a+", ""}, {"broken", "(unclosed", ""}};
  EXPECT_EQ(error_of(bad_regex).rfind("patterns[1].regex: invalid RE2 regular expression: missing )", 0), 0U)
      << error_of(bad_regex);
  RedactionRules lookahead;
  lookahead.patterns = {{"la", "a(?=b)", ""}};
  EXPECT_EQ(error_of(lookahead).rfind("patterns[0].regex: invalid RE2", 0), 0U);
  RedactionRules empty_match;
  empty_match.patterns = {{"e", "x*", ""}};
  EXPECT_EQ(error_of(empty_match), "patterns[0].regex: must not match the empty string");
  RedactionRules duplicate;
  duplicate.patterns = {{"a", "a", ""}, {"a", "b", ""}};
  EXPECT_EQ(error_of(duplicate), "patterns[1].name: duplicate pattern name \"a\"");
  RedactionRules unnamed;
  unnamed.patterns = {{"", "a", ""}};
  EXPECT_EQ(error_of(unnamed), "patterns[0].name: is required");
  RedactionRules empty_field;
  empty_field.fields = {"ssn", ""};
  EXPECT_EQ(error_of(empty_field), "fields[1]: must not be empty");
}

TEST(FeaturesRedactor, BodyFieldsAtAnyDepthAndTextInMessagesPromptAndInput) {
  RedactionRules rules = builtins();
  rules.fields = {"ssn", "password"};
  const Redactor r(std::move(rules));
  json body = json::parse(R"({
    "model": "m",
    "user": {"ssn": "123-45-6789", "profile": [{"password": {"nested": true}}, {"name": "x"}]},
    "messages": [
      {"role": "user", "content": "mail me at a@b.io"},
      {"role": "user", "content": [{"type": "text", "text": "card 4111111111111111"},
                                   {"type": "image_url", "image_url": {"url": "a@b.io"}}]}
    ],
    "metadata_note": "c@d.io stays: not a prompt field"
  })");
  const auto counts = r.apply(body);
  EXPECT_EQ(body["user"]["ssn"], "[REDACTED]");
  EXPECT_EQ(body["user"]["profile"][0]["password"], "[REDACTED]");
  EXPECT_EQ(body["user"]["profile"][1]["name"], "x");
  EXPECT_EQ(body["messages"][0]["content"], "mail me at [EMAIL]");
  EXPECT_EQ(body["messages"][1]["content"][0]["text"], "card [CARD]");
  EXPECT_EQ(body["messages"][1]["content"][1]["image_url"]["url"], "a@b.io");
  EXPECT_EQ(body["metadata_note"], "c@d.io stays: not a prompt field");
  EXPECT_EQ(counts, (RedactionCounts{{"card", 1}, {"email", 1}, {"field:password", 1}, {"field:ssn", 1}}));

  json completion = json::parse(R"({"prompt": ["a@b.io", 7], "input": "call +1 415 555 0134"})");
  (void)r.apply(completion);
  EXPECT_EQ(completion["prompt"], json::parse(R"(["[EMAIL]", 7])"));
  EXPECT_EQ(completion["input"], "call [PHONE]");
}

TEST(FeaturesRedactor, ToolCallArgumentsAndAnthropicSystem) {
  const Redactor r(builtins());
  json body = json::parse(R"({
    "system": [{"type": "text", "text": "escalate to ops@corp.io"}],
    "messages": [
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "send", "arguments": "{\"to\": \"a@b.io\", \"n\": 2, \"cc\": [\"c@d.io\"]}"}},
        {"id": "c2", "type": "function", "function": {"name": "raw", "arguments": "not json, mail x@y.io"}},
        {"id": "c3", "type": "function", "function": {"name": "clean", "arguments": "{\"k\":  1}"}}
      ]},
      {"role": "assistant", "function_call": {"name": "f", "arguments": {"card": "4111 1111 1111 1111"}}},
      {"role": "tool", "tool_call_id": "c1", "content": "sent to a@b.io"}
    ]
  })");
  const auto counts = r.apply(body);
  EXPECT_EQ(body["system"][0]["text"], "escalate to [EMAIL]");
  const auto& calls = body["messages"][0]["tool_calls"];
  EXPECT_EQ(json::parse(calls[0]["function"]["arguments"].get<std::string>()),
            json::parse(R"({"to": "[EMAIL]", "n": 2, "cc": ["[EMAIL]"]})"));
  EXPECT_EQ(calls[1]["function"]["arguments"], "not json, mail [EMAIL]");
  EXPECT_EQ(calls[2]["function"]["arguments"], "{\"k\":  1}");  // nothing found: left byte for byte
  EXPECT_EQ(body["messages"][0]["content"], nullptr);
  EXPECT_EQ(body["messages"][1]["function_call"]["arguments"]["card"], "[CARD]");
  EXPECT_EQ(body["messages"][2]["content"], "sent to [EMAIL]");
  EXPECT_EQ(counts, (RedactionCounts{{"card", 1}, {"email", 5}}));

  json plain_system = json::parse(R"({"system": "call +1 415 555 0134", "messages": []})");
  (void)r.apply(plain_system);
  EXPECT_EQ(plain_system["system"], "call [PHONE]");
}

TEST(FeaturesRedactor, LongDigitRunsStayLinear) {
  const Redactor r(builtins());
  const std::string digits(200'000, '7');
  EXPECT_EQ(redact(r, digits), digits);
  std::string spaced;
  for (int i = 0; i < 50'000; ++i) spaced += "1 ";
  EXPECT_EQ(redact(r, spaced), spaced);
}

}  // namespace
}  // namespace kafka_llm::features
