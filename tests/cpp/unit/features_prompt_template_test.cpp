#include <gtest/gtest.h>

#include "kafka_llm/features/feature_error.hpp"
#include "kafka_llm/features/prompt_template.hpp"

namespace kafka_llm::features {
namespace {

using format::Endpoint;
using nlohmann::json;

std::string field_of_error(const std::string& version, const std::string& system, const std::string& text) {
  try {
    (void)PromptTemplate::compile(version, system, text);
  } catch (const FeatureConfigError& e) {
    return e.field() + ": " + e.what();
  }
  return "";
}

TEST(FeaturesPromptTemplate, RendersEveryPlaceholderWithOrWithoutSpaces) {
  auto t = PromptTemplate::compile("v1", "", "A {{input}} B {{ input }} C");
  EXPECT_EQ(t.version(), "v1");
  EXPECT_EQ(t.render("x"), "A x B x C");
  EXPECT_EQ(t.render(""), "A  B  C");
  EXPECT_EQ(PromptTemplate::compile("v1", "", "{{input}}").render("only"), "only");
  EXPECT_EQ(PromptTemplate::compile("v1", "", "}} {{input}} }}").render("x"), "}} x }}");
}

TEST(FeaturesPromptTemplate, BadTemplatesNameTheField) {
  EXPECT_EQ(field_of_error("", "", "{{input}}"), "version: is required when a prompt is given");
  EXPECT_EQ(field_of_error("v", "", "Hello {{name}}"),
            "template: unknown placeholder {{name}} (the only placeholder is {{input}})");
  EXPECT_EQ(field_of_error("v", "", "Hello {{input"), "template: \"{{\" at byte 6 is never closed");
  EXPECT_EQ(field_of_error("v", "", "no placeholder"), "template: must contain {{input}}");
  EXPECT_EQ(field_of_error("v", "", "{{}}"),
            "template: unknown placeholder {{}} (the only placeholder is {{input}})");
  EXPECT_EQ(field_of_error("v", "Be {{input}}", "{{input}}").rfind("system: takes no placeholders", 0), 0U);
  EXPECT_EQ(field_of_error("v", "", ""), "");  // system only: allowed
}

TEST(FeaturesPromptTemplate, ChatRewritesTheLastUserMessageAndPrependsSystem) {
  auto t = PromptTemplate::compile("v2", "You are terse.", "Summarize: {{input}}");
  json body = json::parse(R"({"model":"m","messages":[
      {"role":"system","content":"Existing"},
      {"role":"user","content":"first"},
      {"role":"assistant","content":"ok"},
      {"role":"user","content":"second"}]})");
  ASSERT_EQ(t.apply(Endpoint::kChatCompletions, body), std::nullopt);
  const json expected = json::parse(R"([
      {"role":"system","content":"You are terse."},
      {"role":"system","content":"Existing"},
      {"role":"user","content":"first"},
      {"role":"assistant","content":"ok"},
      {"role":"user","content":"Summarize: second"}])");
  EXPECT_EQ(body["messages"], expected);
}

TEST(FeaturesPromptTemplate, ChatContentPartsAreJoinedIntoTheFirstTextPart) {
  auto t = PromptTemplate::compile("v2", "", "<{{input}}>");
  json body = json::parse(R"({"messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:x"}},
      {"type":"text","text":"a"},
      {"type":"text","text":"b"}]}]})");
  ASSERT_EQ(t.apply(Endpoint::kChatCompletions, body), std::nullopt);
  EXPECT_EQ(body["messages"][0]["content"], json::parse(R"([
      {"type":"image_url","image_url":{"url":"data:x"}},
      {"type":"text","text":"<a\nb>"}])"));
}

TEST(FeaturesPromptTemplate, ChatWithoutUserTextIsRefusedAndLeftUnchanged) {
  auto t = PromptTemplate::compile("v2", "sys", "T {{input}}");
  json no_user = json::parse(R"({"messages":[{"role":"system","content":"x"}]})");
  const json before = no_user;
  EXPECT_EQ(t.apply(Endpoint::kChatCompletions, no_user),
            std::optional<std::string>("prompt template v2 needs a user message; the request has none"));
  EXPECT_EQ(no_user, before);
  json image_only = json::parse(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})");
  EXPECT_TRUE(t.apply(Endpoint::kChatCompletions, image_only).has_value());
  json null_content = json::parse(R"({"messages":[{"role":"user","content":null}]})");
  EXPECT_TRUE(t.apply(Endpoint::kChatCompletions, null_content).has_value());
}

TEST(FeaturesPromptTemplate, SystemOnlyTemplateLeavesTheUserTextAlone) {
  auto t = PromptTemplate::compile("v3", "Be brief.", "");
  json body = json::parse(R"({"messages":[{"role":"user","content":"hi"}]})");
  ASSERT_EQ(t.apply(Endpoint::kChatCompletions, body), std::nullopt);
  EXPECT_EQ(body["messages"].size(), 2U);
  EXPECT_EQ(body["messages"][1]["content"], "hi");
}

TEST(FeaturesPromptTemplate, CompletionsRenderEveryPromptStringAfterTheSystemText) {
  auto t = PromptTemplate::compile("v1", "SYS", "Q: {{input}}");
  json one = json::parse(R"({"prompt":"why"})");
  ASSERT_EQ(t.apply(Endpoint::kCompletions, one), std::nullopt);
  EXPECT_EQ(one["prompt"], "SYS\n\nQ: why");
  json many = json::parse(R"({"prompt":["a","b"]})");
  ASSERT_EQ(t.apply(Endpoint::kCompletions, many), std::nullopt);
  EXPECT_EQ(many["prompt"], json::parse(R"(["SYS\n\nQ: a","SYS\n\nQ: b"])"));
  json tokens = json::parse(R"({"prompt":[1,2,3]})");
  EXPECT_EQ(
      t.apply(Endpoint::kCompletions, tokens),
      std::optional<std::string>("prompt template v1 applies to text, but body.prompt holds token ids"));
  EXPECT_EQ(tokens["prompt"], json::parse("[1,2,3]"));
}

TEST(FeaturesPromptTemplate, EmbeddingsRenderInputWithoutSystem) {
  auto t = PromptTemplate::compile("v1", "SYS", "query: {{input}}");
  json body = json::parse(R"({"input":["x","y"]})");
  ASSERT_EQ(t.apply(Endpoint::kEmbeddings, body), std::nullopt);
  EXPECT_EQ(body["input"], json::parse(R"(["query: x","query: y"])"));
}

}  // namespace
}  // namespace kafka_llm::features
