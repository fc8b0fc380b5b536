// The HTTP client against the project's mock provider (kafka-llm-mock-provider), whose base URL, e.g.
// http://127.0.0.1:PORT/v1, comes from KAFKA_LLM_PROVIDER_URL.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kafka_llm/http/client.hpp"
#include "stack_env.hpp"

namespace {

namespace asio = boost::asio;
namespace http = kafka_llm::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds limit = 30s) {
  const auto deadline = Clock::now() + limit;
  while (!done() && Clock::now() < deadline) {
    io.restart();
    io.run_for(10ms);
  }
  return done();
}

http::Request chat_request(const std::string& base_url, const nlohmann::json& body) {
  http::Request request;
  request.method = "POST";
  request.url = base_url + "/chat/completions";
  request.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer test-key"}};
  request.body = body.dump();
  request.timeouts.connect = 5s;
  request.timeouts.first_byte = 20s;
  request.timeouts.total = 30s;
  return request;
}

nlohmann::json chat_body(bool stream) {
  nlohmann::json body = {{"model", "mock-model"},
                         {"messages", nlohmann::json::array({{{"role", "user"}, {"content", "Say hello"}}})}};
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

// The payloads of the `data:` lines of a server-sent event stream, in order.
std::vector<std::string> sse_data(const std::string& stream) {
  std::vector<std::string> events;
  std::size_t start = 0;
  while (start < stream.size()) {
    std::size_t end = stream.find('\n', start);
    if (end == std::string::npos) end = stream.size();
    std::string line = stream.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) == 0) {
      std::string payload = line.substr(5);
      if (!payload.empty() && payload.front() == ' ') payload.erase(0, 1);
      events.push_back(std::move(payload));
    }
    start = end + 1;
  }
  return events;
}

struct Outcome {
  int calls = 0;
  http::Response response;
};

TEST(HttpMockProvider, ChatCompletionReturnsContentAndUsage) {
  const std::string base_url = kafka_llm::testing::provider_url();
  ASSERT_FALSE(base_url.empty());
  asio::io_context io;
  http::Client client(io, {});
  Outcome outcome;
  client.start(chat_request(base_url, chat_body(false)), {}, [&](http::Response&& response) {
    ++outcome.calls;
    outcome.response = std::move(response);
  });
  ASSERT_TRUE(run_until(io, [&] { return outcome.calls > 0; }));
  const http::Response& response = outcome.response;
  ASSERT_EQ(response.error, http::TransportError::kNone) << response.error_message;
  ASSERT_EQ(response.status, 200) << response.body;
  const auto json = nlohmann::json::parse(response.body, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << response.body;
  ASSERT_TRUE(json["choices"].is_array() && !json["choices"].empty()) << response.body;
  EXPECT_TRUE(json["choices"][0]["message"]["content"].is_string()) << response.body;
  ASSERT_TRUE(json["usage"].is_object()) << response.body;
  EXPECT_TRUE(json["usage"]["prompt_tokens"].is_number_integer()) << response.body;
  EXPECT_TRUE(json["usage"]["completion_tokens"].is_number_integer()) << response.body;
}

TEST(HttpMockProvider, StreamedChatCompletionArrivesAsServerSentEvents) {
  const std::string base_url = kafka_llm::testing::provider_url();
  ASSERT_FALSE(base_url.empty());
  asio::io_context io;
  http::Client client(io, {});
  std::string streamed;
  int pieces = 0;
  Outcome outcome;
  client.start(
      chat_request(base_url, chat_body(true)),
      [&](std::string_view data) {
        ++pieces;
        streamed.append(data);
      },
      [&](http::Response&& response) {
        ++outcome.calls;
        outcome.response = std::move(response);
      });
  ASSERT_TRUE(run_until(io, [&] { return outcome.calls > 0; }));
  const http::Response& response = outcome.response;
  ASSERT_EQ(response.error, http::TransportError::kNone) << response.error_message;
  ASSERT_EQ(response.status, 200) << streamed;
  EXPECT_TRUE(response.body.empty()) << "streamed bytes went to on_data";
  EXPECT_GE(pieces, 1);
  const std::vector<std::string> events = sse_data(streamed);
  ASSERT_GE(events.size(), 3U) << streamed;
  EXPECT_EQ(events.back(), "[DONE]") << streamed;
  bool saw_content = false;
  bool saw_usage = false;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const auto chunk = nlohmann::json::parse(events[i], nullptr, false);
    ASSERT_FALSE(chunk.is_discarded()) << events[i];
    EXPECT_EQ(chunk.value("object", ""), "chat.completion.chunk") << events[i];
    if (chunk.contains("choices") && !chunk["choices"].empty() &&
        chunk["choices"][0]["delta"].contains("content")) {
      saw_content = true;
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) saw_usage = true;
  }
  EXPECT_TRUE(saw_content) << streamed;
  EXPECT_TRUE(saw_usage) << "stream_options.include_usage asks for a usage chunk: " << streamed;
}

TEST(HttpMockProvider, Forced429CarriesRetryAfter) {
  const std::string base_url = kafka_llm::testing::provider_url();
  ASSERT_FALSE(base_url.empty());
  asio::io_context io;
  http::Client client(io, {});
  auto request = chat_request(base_url, chat_body(false));
  request.headers.emplace_back("x-mock-fault", "429");
  Outcome outcome;
  client.start(std::move(request), {}, [&](http::Response&& response) {
    ++outcome.calls;
    outcome.response = std::move(response);
  });
  ASSERT_TRUE(run_until(io, [&] { return outcome.calls > 0; }));
  const http::Response& response = outcome.response;
  ASSERT_EQ(response.error, http::TransportError::kNone) << response.error_message;
  EXPECT_EQ(response.status, 429) << response.body;
  const std::string* retry_after = kafka_llm::find_header(response.headers, "Retry-After");
  ASSERT_NE(retry_after, nullptr);
  EXPECT_FALSE(retry_after->empty());
}

TEST(HttpMockProvider, ManyConcurrentRequestsAllSucceed) {
  const std::string base_url = kafka_llm::testing::provider_url();
  ASSERT_FALSE(base_url.empty());
  asio::io_context io;
  http::Client client(io, {});
  constexpr int kRequests = 500;
  int done = 0;
  int ok = 0;
  std::string first_failure;
  for (int i = 0; i < kRequests; ++i) {
    client.start(chat_request(base_url, chat_body(false)), {}, [&](http::Response&& response) {
      ++done;
      if (response.error == http::TransportError::kNone && response.status == 200) {
        ++ok;
      } else if (first_failure.empty()) {
        first_failure = std::string(http::to_string(response.error)) + " " + std::to_string(response.status) +
                        " " + response.error_message;
      }
    });
  }
  ASSERT_TRUE(run_until(
      io, [&] { return done == kRequests; }, 60s))
      << done << " of " << kRequests;
  EXPECT_EQ(ok, kRequests) << first_failure;
}

}  // namespace
