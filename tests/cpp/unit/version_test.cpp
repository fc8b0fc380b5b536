#include "kafka_llm/common/version.hpp"

#include <gtest/gtest.h>

TEST(Version, MatchesProjectVersionAndNamesLibraries) {
  EXPECT_EQ(kafka_llm::version(), KAFKA_LLM_VERSION);
  const auto libs = kafka_llm::library_versions();
  EXPECT_NE(libs.find("librdkafka 2."), std::string::npos) << libs;
  EXPECT_NE(libs.find("libcurl "), std::string::npos) << libs;
  EXPECT_NE(libs.find("hiredis "), std::string::npos) << libs;
}
