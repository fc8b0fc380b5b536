#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "format_sse_samples.hpp"
#include "kafka_llm/format/anthropic_stream.hpp"
#include "kafka_llm/format/openai_stream.hpp"

namespace kafka_llm::format {
namespace {

using nlohmann::json;

std::vector<SseEvent> events_of(std::string_view stream) {
  SseParser parser;
  std::vector<SseEvent> events;
  EXPECT_FALSE(parser.feed(stream, events).has_value());
  return events;
}

SseEvent data_event(std::string data, std::string type = "message") {
  return SseEvent{std::move(type), std::move(data), ""};
}

template <class T>
T expect_value(FormatResult<T> result) {
  if (auto* error = std::get_if<FormatError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return {};
  }
  return std::get<T>(std::move(result));
}

template <class T>
std::string expect_error(FormatResult<T> result) {
  if (std::holds_alternative<T>(result)) {
    ADD_FAILURE() << "expected an error";
    return {};
  }
  return std::get<FormatError>(result).message;
}

TEST(SseOpenAi, SampleStreamAccumulates) {
  const std::vector<SseEvent> events = events_of(test::kOpenAiStream);
  ASSERT_EQ(events.size(), test::kOpenAiStreamEvents);
  std::string text;
  std::optional<std::string> finish_reason;
  std::optional<TokenUsage> usage;
  std::vector<OpenAiStreamKind> kinds;
  for (const auto& event : events) {
    const OpenAiStreamChunk chunk = expect_value(read_openai_stream_event(event));
    kinds.push_back(chunk.kind);
    text += chunk.delta_text;
    if (chunk.finish_reason) finish_reason = chunk.finish_reason;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.kind == OpenAiStreamKind::kChunk) {
      EXPECT_EQ(chunk.chunk, json::parse(event.data));  // unchanged for the chunk frame
    } else {
      EXPECT_TRUE(chunk.chunk.is_null());
    }
  }
  EXPECT_EQ(text, "Hello");
  EXPECT_EQ(finish_reason, "stop");
  EXPECT_EQ(usage, (TokenUsage{5, 2, 7}));
  EXPECT_EQ(kinds, (std::vector<OpenAiStreamKind>{OpenAiStreamKind::kChunk, OpenAiStreamKind::kChunk,
                                                  OpenAiStreamKind::kChunk, OpenAiStreamKind::kChunk,
                                                  OpenAiStreamKind::kChunk, OpenAiStreamKind::kDone}));
}

TEST(SseOpenAi, ChunkDetails) {
  const OpenAiStreamChunk first = expect_value(read_openai_stream_event(data_event(
      R"({"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]})")));
  EXPECT_EQ(first.kind, OpenAiStreamKind::kChunk);
  EXPECT_EQ(first.delta_text, "Hi");
  EXPECT_EQ(first.finish_reason, std::nullopt);
  EXPECT_EQ(first.usage, std::nullopt);

  const OpenAiStreamChunk completion = expect_value(
      read_openai_stream_event(data_event(R"({"choices":[{"text":"abc","finish_reason":"length"}]})")));
  EXPECT_EQ(completion.delta_text, "abc");
  EXPECT_EQ(completion.finish_reason, "length");

  const OpenAiStreamChunk parts = expect_value(read_openai_stream_event(data_event(
      R"({"choices":[{"delta":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]})")));
  EXPECT_EQ(parts.delta_text, "ab");

  const OpenAiStreamChunk tool = expect_value(read_openai_stream_event(
      data_event(R"({"choices":[{"delta":{"tool_calls":[{"index":0}]},"finish_reason":null}]})")));
  EXPECT_EQ(tool.delta_text, "");
}

TEST(SseOpenAi, DoneSentinel) {
  for (const std::string data : {"[DONE]", " [DONE] ", "[DONE]\n"}) {
    const OpenAiStreamChunk done = expect_value(read_openai_stream_event(data_event(data)));
    EXPECT_EQ(done.kind, OpenAiStreamKind::kDone) << data;
  }
  EXPECT_EQ(expect_error(read_openai_stream_event(data_event("[done]"))).substr(0, 36),
            "stream event data is not valid JSON:");
}

TEST(SseOpenAi, InStreamError) {
  const OpenAiStreamChunk error = expect_value(read_openai_stream_event(
      data_event(R"({"error":{"message":"The server is overloaded","type":"server_error"}})")));
  EXPECT_EQ(error.kind, OpenAiStreamKind::kError);
  EXPECT_EQ(error.error_message, "The server is overloaded");
  EXPECT_EQ(error.chunk["error"]["type"], "server_error");
}

TEST(SseOpenAi, MalformedEvents) {
  struct Case {
    std::string data;
    std::string message;
  };
  const Case cases[] = {
      {"", "stream event data is not valid JSON: empty input"},
      {"{\"choices\":",
       "stream event data is not valid JSON: syntax error while parsing value - unexpected end of "
       "input; expected '[', '{', or a literal at byte 11"},
      {"{\"x\":\"\xFF\"}", "stream event data is not valid JSON: invalid UTF-8 at byte 6"},
      {std::string(100, '['), "stream event data is not valid JSON: JSON nesting deeper than 64"},
      {"[1]", "stream event data must be a JSON object (got array)"},
      {R"({"choices":"x"})", "choices must be an array (got string)"},
      {R"({"choices":[1]})", "choices[0] must be an object (got number)"},
      {R"({"choices":[{"delta":"x"}]})", "choices[0].delta must be an object (got string)"},
      {R"({"choices":[{"delta":{"content":5}}]})",
       "choices[0].delta.content must be a string or an array (got number)"},
      {R"({"choices":[{"text":5}]})", "choices[0].text must be a string (got number)"},
      {R"({"choices":[{"finish_reason":5}]})", "choices[0].finish_reason must be a string (got number)"},
      {R"({"choices":[],"usage":{"total_tokens":-1}})",
       "usage.total_tokens must be a non-negative integer (got number)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(read_openai_stream_event(data_event(c.data))), c.message) << c.data;
  }
}

TEST(SseAnthropic, SampleStreamAccumulates) {
  const std::vector<SseEvent> events = events_of(test::kAnthropicStream);
  ASSERT_EQ(events.size(), test::kAnthropicStreamEvents);
  std::vector<AnthropicStreamKind> kinds;
  std::string text;
  std::optional<std::uint64_t> input_tokens;
  std::optional<std::uint64_t> output_tokens;
  std::optional<std::string> stop_reason;
  std::optional<std::string> finish_reason;
  std::optional<std::string> model;
  for (const auto& event : events) {
    const AnthropicStreamEvent read = expect_value(read_anthropic_stream_event(event));
    kinds.push_back(read.kind);
    text += read.delta_text;
    if (read.input_tokens) input_tokens = read.input_tokens;
    if (read.output_tokens) output_tokens = read.output_tokens;
    if (read.stop_reason) stop_reason = read.stop_reason;
    if (read.finish_reason) finish_reason = read.finish_reason;
    if (read.model) model = read.model;
    EXPECT_EQ(read.event, json::parse(event.data));
  }
  EXPECT_EQ(kinds, (std::vector<AnthropicStreamKind>{
                       AnthropicStreamKind::kMessageStart, AnthropicStreamKind::kContentBlockStart,
                       AnthropicStreamKind::kPing, AnthropicStreamKind::kContentBlockDelta,
                       AnthropicStreamKind::kContentBlockDelta, AnthropicStreamKind::kContentBlockStop,
                       AnthropicStreamKind::kMessageDelta, AnthropicStreamKind::kMessageStop}));
  EXPECT_EQ(text, "Hello!");
  EXPECT_EQ(input_tokens, 25U);
  EXPECT_EQ(output_tokens, 15U);
  EXPECT_EQ(stop_reason, "end_turn");
  EXPECT_EQ(finish_reason, "stop");
  EXPECT_EQ(model, "claude-3-5-sonnet-20241022");
}

TEST(SseAnthropic, SplitStreamGivesTheSameText) {
  const std::string stream = test::with_line_endings(test::kAnthropicStream, "\r\n");
  for (std::size_t cut = 0; cut <= stream.size(); cut += 7) {
    SseParser parser;
    std::vector<SseEvent> events;
    parser.feed(std::string_view(stream).substr(0, cut), events);
    parser.feed(std::string_view(stream).substr(cut), events);
    std::string text;
    for (const auto& event : events) text += expect_value(read_anthropic_stream_event(event)).delta_text;
    ASSERT_EQ(text, "Hello!") << cut;
  }
}

TEST(SseAnthropic, KindFromDataTypeOrEventName) {
  struct Case {
    std::string data;
    std::string event_name;
    AnthropicStreamKind kind;
  };
  const Case cases[] = {
      {R"({"type":"ping"})", "message", AnthropicStreamKind::kPing},
      {"{}", "ping", AnthropicStreamKind::kPing},
      {"{}", "message_stop", AnthropicStreamKind::kMessageStop},
      {R"({"type":"message_stop"})", "ping", AnthropicStreamKind::kMessageStop},
      {R"({"type":"future_event"})", "future_event", AnthropicStreamKind::kOther},
      {"{}", "message", AnthropicStreamKind::kOther},
      {R"({"type":"content_block_stop","index":0})", "message", AnthropicStreamKind::kContentBlockStop},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_value(read_anthropic_stream_event(data_event(c.data, c.event_name))).kind, c.kind)
        << c.data;
  }
}

TEST(SseAnthropic, EventDetails) {
  const AnthropicStreamEvent json_delta = expect_value(read_anthropic_stream_event(data_event(
      R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}})")));
  EXPECT_EQ(json_delta.kind, AnthropicStreamKind::kContentBlockDelta);
  EXPECT_EQ(json_delta.delta_text, "");

  const AnthropicStreamEvent start = expect_value(read_anthropic_stream_event(
      data_event(R"({"type":"message_start","message":{"model":"c","usage":{"input_tokens":10,)"
                 R"("cache_read_input_tokens":5,"output_tokens":1}}})")));
  EXPECT_EQ(start.input_tokens, 15U);
  EXPECT_EQ(start.output_tokens, 1U);

  const AnthropicStreamEvent delta = expect_value(read_anthropic_stream_event(data_event(
      R"({"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9,"input_tokens":3}})")));
  EXPECT_EQ(delta.stop_reason, "max_tokens");
  EXPECT_EQ(delta.finish_reason, "length");
  EXPECT_EQ(delta.output_tokens, 9U);
  EXPECT_EQ(delta.input_tokens, 3U);

  const AnthropicStreamEvent error = expect_value(read_anthropic_stream_event(
      data_event(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", "error")));
  EXPECT_EQ(error.kind, AnthropicStreamKind::kError);
  EXPECT_EQ(error.error_message, "Overloaded");
}

TEST(SseAnthropic, MalformedEvents) {
  struct Case {
    std::string data;
    std::string message;
  };
  const Case cases[] = {
      {"not json",
       "stream event data is not valid JSON: syntax error while parsing value - invalid literal; last "
       "read: 'no' at byte 1"},
      {"[]", "stream event data must be a JSON object (got array)"},
      {R"({"type":5})", "type must be a string (got number)"},
      {R"({"type":"message_start","message":5})", "message must be an object (got number)"},
      {R"({"type":"message_start","message":{"model":1}})", "message.model must be a string (got number)"},
      {R"({"type":"message_start","message":{"usage":{"input_tokens":"x"}}})",
       "message.usage.input_tokens must be a non-negative integer (got string)"},
      {R"({"type":"content_block_delta","delta":"x"})", "delta must be an object (got string)"},
      {R"({"type":"content_block_delta","delta":{"type":"text_delta","text":5}})",
       "delta.text must be a string (got number)"},
      {R"({"type":"message_delta","delta":{"stop_reason":1}})",
       "delta.stop_reason must be a string (got number)"},
      {R"({"type":"message_delta","usage":{"output_tokens":"x"}})",
       "usage.output_tokens must be a non-negative integer (got string)"},
      {R"({"type":"message_delta","usage":[]})", "usage must be an object (got array)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expect_error(read_anthropic_stream_event(data_event(c.data))), c.message) << c.data;
  }
}

}  // namespace
}  // namespace kafka_llm::format
