#include <gtest/gtest.h>

#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/client_config.hpp"

namespace kafka_llm::kafka {
namespace {

TEST(ClientConfig, SetPropertyReplacesAndDefaultKeepsTheUsersValue) {
  Properties props{{"bootstrap.servers", "127.0.0.1:9092"}, {"linger.ms", "50"}};
  set_default_property(props, "linger.ms", "2");
  set_default_property(props, "auto.offset.reset", "earliest");
  set_property(props, "enable.idempotence", "true");
  set_property(props, "bootstrap.servers", "127.0.0.1:9093");
  const Properties expected{{"bootstrap.servers", "127.0.0.1:9093"},
                            {"linger.ms", "50"},
                            {"auto.offset.reset", "earliest"},
                            {"enable.idempotence", "true"}};
  EXPECT_EQ(props, expected);
  EXPECT_TRUE(has_property(props, "auto.offset.reset"));
  EXPECT_FALSE(has_property(props, "linger"));
}

TEST(ClientConfig, BadValueNamesTheKeyAndHidesSecrets) {
  try {
    make_conf({{"linger.ms", "soon"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "kafka.linger.ms");
  }
  try {
    make_conf({{"sasl.password", "hunter2"}, {"no.such.property", "x"}}, "streams[0].kafka");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "streams[0].kafka.no.such.property");
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos);
  }
}

}  // namespace
}  // namespace kafka_llm::kafka
