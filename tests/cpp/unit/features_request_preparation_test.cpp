#include <gtest/gtest.h>

#include "kafka_llm/features/request_preparation.hpp"
#include "kafka_llm/format/prompt_hash.hpp"

namespace kafka_llm::features {
namespace {

using nlohmann::json;

format::RequestEnvelope chat(const std::string& text) {
  auto parsed = format::parse_request(
      json{{"path", "/v1/chat/completions"},
           {"body", {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", text}}}}}}}
          .dump());
  return std::get<format::RequestEnvelope>(parsed);
}

TEST(FeaturesRequestPreparation, TemplateThenRedactionAndTheHashOfWhatIsSent) {
  auto tmpl = PromptTemplate::compile("v2", "", "Summarize: {{input}}");
  RedactionRules rules;
  rules.emails = true;
  const Redactor redactor(rules);
  auto request = chat("write to a@b.io");
  const std::string original_hash = request.prompt_hash;
  RedactionCounts counts;
  ASSERT_EQ(prepare_request(request, &tmpl, &redactor, counts), std::nullopt);
  EXPECT_EQ(request.body["messages"][0]["content"], "Summarize: write to [EMAIL]");
  EXPECT_EQ(request.prompt_hash, format::prompt_hash(request.body));
  EXPECT_NE(request.prompt_hash, original_hash);
  EXPECT_EQ(counts, (RedactionCounts{{"email", 1}}));
  // Two requests differing only in the redacted text hash the same.
  auto other = chat("write to z@y.io");
  ASSERT_EQ(prepare_request(other, &tmpl, &redactor, counts), std::nullopt);
  EXPECT_EQ(other.prompt_hash, request.prompt_hash);
  EXPECT_EQ(counts.at("email"), 2U);
}

TEST(FeaturesRequestPreparation, NothingConfiguredChangesNothing) {
  auto request = chat("a@b.io");
  const auto before = request.body;
  const auto hash = request.prompt_hash;
  RedactionCounts counts;
  ASSERT_EQ(prepare_request(request, nullptr, nullptr, counts), std::nullopt);
  EXPECT_EQ(request.body, before);
  EXPECT_EQ(request.prompt_hash, hash);
}

TEST(FeaturesRequestPreparation, ATemplateThatCannotApplyLeavesTheRequestUnredacted) {
  auto tmpl = PromptTemplate::compile("v2", "", "T {{input}}");
  RedactionRules rules;
  rules.emails = true;
  const Redactor redactor(rules);
  auto parsed = format::parse_request(R"({"path":"/v1/completions","body":{"model":"m","prompt":[1,2]}})");
  auto request = std::get<format::RequestEnvelope>(parsed);
  RedactionCounts counts;
  EXPECT_TRUE(prepare_request(request, &tmpl, &redactor, counts).has_value());
  EXPECT_TRUE(counts.empty());
}

}  // namespace
}  // namespace kafka_llm::features
