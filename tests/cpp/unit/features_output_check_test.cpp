#include <gtest/gtest.h>

#include "kafka_llm/features/output_check.hpp"

namespace kafka_llm::features {
namespace {

using nlohmann::json;

JsonSchema label_schema() {
  return JsonSchema::compile(
      json::parse(R"({"type":"object","required":["label"],"properties":{"label":{"enum":["pos","neg"]}}})"));
}

TEST(FeaturesOutputCheck, ValidJsonPasses) {
  EXPECT_EQ(check_output(label_schema(), std::string(R"({"label": "pos", "extra": 1})")), std::nullopt);
}

TEST(FeaturesOutputCheck, ViolationsSayWhy) {
  const auto schema = label_schema();
  const auto violation = check_output(schema, std::string(R"({"label":"maybe"})"));
  ASSERT_TRUE(violation.has_value());
  EXPECT_EQ(violation->rfind("the model output violates the output schema: /label: ", 0), 0U) << *violation;
  const auto missing = check_output(schema, std::string("{}"));
  ASSERT_TRUE(missing.has_value());
  EXPECT_NE(missing->find("label"), std::string::npos) << *missing;
  const auto not_json = check_output(schema, std::string("mock reply: hello"));
  ASSERT_TRUE(not_json.has_value());
  EXPECT_EQ(not_json->rfind("the model output is not JSON: ", 0), 0U) << *not_json;
  EXPECT_EQ(check_output(schema, std::nullopt), std::optional<std::string>("the model output is missing"));
  EXPECT_TRUE(check_output(schema, std::string("")).has_value());
}

TEST(FeaturesOutputCheck, ModelOutputHeaderIsCutOnACharacterBoundary) {
  const auto small = model_output_headers("{\"a\":1}");
  ASSERT_EQ(small.size(), 1U);
  EXPECT_EQ(small[0], (std::pair<std::string, std::string>{"x-model-output", "{\"a\":1}"}));
  // "é" is two bytes: a cut after 5 bytes would split the third one.
  const auto cut = model_output_headers("éééé", 5);
  ASSERT_EQ(cut.size(), 2U);
  EXPECT_EQ(cut[0].second, "éé");
  EXPECT_EQ(cut[1], (std::pair<std::string, std::string>{"x-model-output-truncated", "8"}));
  const std::string big(kMaxModelOutputHeaderBytes + 10, 'x');
  const auto capped = model_output_headers(big);
  EXPECT_EQ(capped[0].second.size(), kMaxModelOutputHeaderBytes);
  EXPECT_EQ(capped[1].second, std::to_string(big.size()));
}

}  // namespace
}  // namespace kafka_llm::features
