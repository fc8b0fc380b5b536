#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/features/json_schema.hpp"
#include "kafka_llm/features/prompt_template.hpp"
#include "kafka_llm/features/redactor.hpp"
#include "kafka_llm/pipeline/pipeline_config.hpp"

namespace kafka_llm::pipeline {
namespace {

using nlohmann::json;

json config_with(const json& stream_extra) {
  json stream = {{"requestsURL", "kafka://g?topic=req"}, {"responsesURL", "kafka://resp"}};
  stream.update(stream_extra);
  return {{"kafka", {{"bootstrap.servers", "127.0.0.1:9092"}}},
          {"messaging", {{"streams", json::array({stream})}}},
          {"providers", json::array({{{"name", "mock"}, {"baseURL", "http://127.0.0.1:1/v1"}}})}};
}

// "<key>: <reason>" of the ConfigError parse throws, or "" when it accepts the config.
std::string error_of(const json& stream_extra) {
  try {
    (void)PipelineConfig::parse(config_with(stream_extra));
  } catch (const ConfigError& e) {
    return e.key() + ": " + e.reason();
  }
  return "";
}

TEST(PipelineStreamFeaturesConfig, NoFeaturesByDefault) {
  const auto config = PipelineConfig::parse(config_with(json::object()));
  const auto& stream = config.streams.at(0);
  EXPECT_EQ(stream.prompt, nullptr);
  EXPECT_EQ(stream.redactor, nullptr);
  EXPECT_EQ(stream.output_schema, nullptr);
  EXPECT_FALSE(stream.human_review.has_value());
  EXPECT_FALSE(stream.dedupe_window.has_value());
}

TEST(PipelineStreamFeaturesConfig, EveryFeatureParses) {
  const auto config = PipelineConfig::parse(config_with(json::parse(R"({
    "prompt": {"version": "v2", "system": "You are terse.", "template": "Summarize: {{input}}"},
    "outputSchema": {"type": "object", "required": ["label"]},
    "redact": {"emails": true, "patterns": [{"name": "employee_id", "regex": "E\\d{6}", "replacement": "[EMPLOYEE_ID]"}],
               "fields": ["ssn"]},
    "humanReview": {"topic": "human-review", "sampleRate": 0.05},
    "dedupe": {"window": "10m"}
  })")));
  const auto& stream = config.streams.at(0);
  ASSERT_NE(stream.prompt, nullptr);
  EXPECT_EQ(stream.prompt->version(), "v2");
  EXPECT_EQ(stream.prompt->render("x"), "Summarize: x");
  ASSERT_NE(stream.redactor, nullptr);
  features::RedactionCounts counts;
  EXPECT_EQ(stream.redactor->redact_text("E123456 a@b.io", counts), "[EMPLOYEE_ID] [EMAIL]");
  ASSERT_NE(stream.output_schema, nullptr);
  EXPECT_TRUE(stream.output_schema->validate(json::parse("{}")).has_value());
  ASSERT_TRUE(stream.human_review.has_value());
  EXPECT_EQ(stream.human_review->topic, "human-review");
  EXPECT_DOUBLE_EQ(stream.human_review->sample_rate, 0.05);
  EXPECT_EQ(stream.dedupe_window, Millis(600000));
  // Copies of the configuration share the compiled features.
  const PipelineConfig copy = config;
  EXPECT_EQ(copy.streams.at(0).redactor.get(), stream.redactor.get());
}

TEST(PipelineStreamFeaturesConfig, RedactWithNothingEnabledIsNoRedactor) {
  const auto config = PipelineConfig::parse(config_with(json::parse(R"({"redact": {"emails": false}})")));
  EXPECT_EQ(config.streams.at(0).redactor, nullptr);
}

TEST(PipelineStreamFeaturesConfig, ErrorsNameTheKey) {
  const std::string s = "messaging.streams[0].";
  EXPECT_EQ(error_of(json::parse(R"({"prompt": {"template": "{{input}}"}})")),
            s + "prompt.version: is required");
  EXPECT_EQ(error_of(json::parse(R"({"prompt": {"version": "v", "template": "{{nope}}"}})")),
            s + "prompt.template: unknown placeholder {{nope}} (the only placeholder is {{input}})");
  EXPECT_EQ(
      error_of(json::parse(
                   R"({"redact": {"patterns": [{"name": "a", "regex": "a"}, {"name": "b", "regex": "("}]}})"))
          .rfind(s + "redact.patterns[1].regex: invalid RE2 regular expression", 0),
      0U);
  EXPECT_EQ(error_of(json::parse(R"({"redact": {"patterns": [{"regex": "a"}]}})")),
            s + "redact.patterns[0].name: is required");
  EXPECT_EQ(error_of(json::parse(R"({"redact": {"fields": ["a", 3]}})")),
            s + "redact.fields[1]: must be a string");
  EXPECT_EQ(error_of(json::parse(R"({"redact": {"cards": "yes"}})")),
            s + "redact.cards: must be true or false");
  EXPECT_EQ(error_of(json::parse(R"({"humanReview": {"topic": "r", "sampleRate": 1.5}})")),
            s + "humanReview.sampleRate: must be between 0 and 1");
  EXPECT_EQ(error_of(json::parse(R"({"humanReview": {"topic": "r", "sampleRate": -0.1}})")),
            s + "humanReview.sampleRate: must be at least 0");
  EXPECT_EQ(error_of(json::parse(R"({"humanReview": {"topic": "r"}})")),
            s + "humanReview.sampleRate: is required");
  EXPECT_EQ(error_of(json::parse(R"({"humanReview": {"sampleRate": 0.5}})")),
            s + "humanReview.topic: is required");
  EXPECT_EQ(error_of(json::parse(R"({"dedupe": {}})")), s + "dedupe.window: is required");
  EXPECT_EQ(error_of(json::parse(R"({"dedupe": {"window": "0s"}})")),
            s + "dedupe.window: must be longer than 0");
  const std::string schema_error =
      error_of(json::parse(R"({"outputSchema": {"type": "object", "frobnicate": 1}})"));
  EXPECT_EQ(schema_error.rfind(s + "outputSchema: invalid JSON schema at ", 0), 0U) << schema_error;
  EXPECT_NE(schema_error.find("frobnicate"), std::string::npos) << schema_error;
  EXPECT_EQ(error_of(json::parse(R"({"outputSchema": {}, "outputSchemaFile": "/x.json"})")),
            s + "outputSchemaFile: give either outputSchema or outputSchemaFile, not both");
}

TEST(PipelineStreamFeaturesConfig, SchemaFileIsReadAndChecked) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("kafka-llm-schema-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto good = dir / "good.json";
  const auto bad = dir / "bad.json";
  std::ofstream(good) << R"({"type": "object", "required": ["label"]})";
  std::ofstream(bad) << "{not json";
  const auto config = PipelineConfig::parse(config_with({{"outputSchemaFile", good.string()}}));
  ASSERT_NE(config.streams.at(0).output_schema, nullptr);
  EXPECT_EQ(config.streams.at(0).output_schema->validate(json::parse(R"({"label": 1})")), std::nullopt);
  const std::string s = "messaging.streams[0].";
  EXPECT_EQ(error_of({{"outputSchemaFile", bad.string()}}),
            s + "outputSchemaFile: " + bad.string() + " is not valid JSON");
  EXPECT_EQ(
      error_of({{"outputSchemaFile", (dir / "missing.json").string()}}),
      s + "outputSchemaFile: cannot read " + (dir / "missing.json").string() + ": No such file or directory");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kafka_llm::pipeline
