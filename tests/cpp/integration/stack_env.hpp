#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>

namespace kafka_llm::testing {

/// The endpoint in environment variable `name`; fails the current test when it is unset
/// (integration tests run through tests/python/test_cpp_integration.py, which sets them).
inline std::string stack_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE()
        << name << " is not set: run the integration tests with the local stack "
        << "(pytest tests/python/test_cpp_integration.py, or export the endpoints of `kafka-llm dev up`)";
    return {};
  }
  return value;
}

inline std::string bootstrap_servers() {
  return stack_env("KAFKA_LLM_BOOTSTRAP_SERVERS");
}
inline std::string redis_url() {
  return stack_env("KAFKA_LLM_REDIS_URL");
}
inline std::string provider_url() {
  return stack_env("KAFKA_LLM_PROVIDER_URL");
}

/// A name no other test run uses: `<prefix>-<test name>-<random hex>`.
inline std::string unique_name(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::random_device rd;
  std::ostringstream out;
  out << prefix << "-" << (info != nullptr ? info->name() : "test") << "-" << std::hex << rd() << rd();
  return out.str();
}

/// Polls `done` until it is true or `timeout` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(step);
  }
  return true;
}

}  // namespace kafka_llm::testing
