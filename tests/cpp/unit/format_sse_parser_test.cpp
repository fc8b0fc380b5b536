#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "format_sse_samples.hpp"
#include "kafka_llm/format/sse_parser.hpp"

namespace kafka_llm::format {

void PrintTo(const SseEvent& event, std::ostream* os) {
  *os << "{type=" << ::testing::PrintToString(event.type) << ", data=" << ::testing::PrintToString(event.data)
      << ", id=" << ::testing::PrintToString(event.last_event_id) << "}";
}

namespace {

using namespace std::string_literals;

SseEvent event(std::string type, std::string data, std::string id = "") {
  return SseEvent{std::move(type), std::move(data), std::move(id)};
}

std::vector<SseEvent> parse_chunks(const std::vector<std::string_view>& chunks,
                                   SseParserOptions options = {}) {
  SseParser parser(options);
  std::vector<SseEvent> events;
  for (const auto chunk : chunks) {
    const auto error = parser.feed(chunk, events);
    EXPECT_FALSE(error.has_value()) << error->message;
  }
  return events;
}

std::vector<SseEvent> parse(std::string_view stream) {
  return parse_chunks({stream});
}

TEST(SseParser, SingleEvent) {
  EXPECT_EQ(parse("data: hello\n\n"), std::vector<SseEvent>{event("message", "hello")});
}

TEST(SseParser, FieldRules) {
  struct Case {
    const char* name;
    std::string stream;
    std::vector<SseEvent> events;
  };
  const Case cases[] = {
      {"multi-line data joined by LF", "data: a\ndata: b\ndata:\n\n", {event("message", "a\nb\n")}},
      {"event type", "event: add\ndata: x\n\n", {event("add", "x")}},
      {"event type resets after dispatch",
       "event: add\ndata: x\n\ndata: y\n\n",
       {event("add", "x"), event("message", "y")}},
      {"last event type wins", "event: a\nevent: b\ndata: x\n\n", {event("b", "x")}},
      {"empty event type means message", "event:\ndata: x\n\n", {event("message", "x")}},
      {"id persists across events",
       "id: 7\ndata: a\n\ndata: b\n\n",
       {event("message", "a", "7"), event("message", "b", "7")}},
      {"empty id resets",
       "id: 7\ndata: a\n\nid\ndata: b\n\n",
       {event("message", "a", "7"), event("message", "b", "")}},
      {"id containing NUL is ignored",
       "id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s,
       {event("message", "a", "1"), event("message", "b", "1")}},
      {"id set without data persists", "id: 9\n\ndata: a\n\n", {event("message", "a", "9")}},
      {"comment lines are ignored", ": comment\ndata: x\n:another\n\n", {event("message", "x")}},
      {"comment-only block dispatches nothing", ": ping\n\n", {}},
      {"no space after colon", "data:x\n\n", {event("message", "x")}},
      {"only one leading space stripped", "data:  x \n\n", {event("message", " x ")}},
      {"colon in value kept", "data: a:b: c\n\n", {event("message", "a:b: c")}},
      {"field without colon has empty value", "data\n\n", {event("message", "")}},
      {"data with empty value dispatches empty data", "data:\n\n", {event("message", "")}},
      {"two empty data lines", "data\ndata\n\n", {event("message", "\n")}},
      {"no data means no event", "event: x\n\n", {}},
      {"unknown fields ignored", "foo: bar\nDATA: no\ndata: x\n\n", {event("message", "x")}},
      {"field names are case-sensitive", "Data: x\n\n", {}},
      {"space before colon makes another field", "data : x\n\n", {}},
      {"extra blank lines dispatch nothing", "\n\n\ndata: x\n\n\n\n", {event("message", "x")}},
      {"unterminated event is not dispatched", "data: x\n", {}},
      {"unterminated line is not processed", "data: x", {}},
      {"leading BOM stripped",
       "\xEF\xBB\xBF"
       "data: x\n\n",
       {event("message", "x")}},
      {"BOM only at stream start",
       "data: a\n\n\xEF\xBB\xBF"
       "data: b\n\n",
       {event("message", "a")}},
      {"UTF-8 and binary data passed through",
       "data: caf\xC3\xA9 \xFF\n\n",
       {event("message", "caf\xC3\xA9 \xFF")}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse(c.stream), c.events) << c.name;
  }
}

TEST(SseParser, LineEndings) {
  const std::vector<SseEvent> expected = {event("message", "a\nb"), event("e", "c")};
  for (const std::string stream : {
           "data: a\ndata: b\n\nevent: e\ndata: c\n\n",
           "data: a\r\ndata: b\r\n\r\nevent: e\r\ndata: c\r\n\r\n",
           "data: a\rdata: b\r\revent: e\rdata: c\r\r",
           "data: a\r\ndata: b\r\revent: e\ndata: c\r\n\n",
       }) {
    EXPECT_EQ(parse(stream), expected) << ::testing::PrintToString(stream);
  }
}

TEST(SseParser, CrLfSplitBetweenCrAndLfIsOneLineEnding) {
  // If the '\n' after a chunk-final '\r' were taken as a blank line, "a" would dispatch on its own.
  EXPECT_EQ(parse_chunks({"data: a\r", "\ndata: b\r\n\r\n"}),
            std::vector<SseEvent>{event("message", "a\nb")});
  EXPECT_EQ(parse_chunks({"data: a\r", "", "\ndata: b\r", "\n\r", "\n"}),
            std::vector<SseEvent>{event("message", "a\nb")});
  // A lone '\r' followed by a new chunk without '\n' is a line ending by itself.
  EXPECT_EQ(parse_chunks({"data: a\r", "\r"}), std::vector<SseEvent>{event("message", "a")});
  EXPECT_EQ(parse_chunks({"data: a\r", "data: b\r\r"}), std::vector<SseEvent>{event("message", "a\nb")});
}

void expect_split_invariant(std::string_view stream, std::size_t expected_events) {
  const std::vector<SseEvent> whole = parse(stream);
  ASSERT_EQ(whole.size(), expected_events);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    ASSERT_EQ(parse_chunks({stream.substr(0, cut), stream.substr(cut)}), whole) << "cut at " << cut;
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
  EXPECT_EQ(parse_chunks(bytes), whole) << "byte by byte";
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string_view> chunks;
    std::size_t at = 0;
    while (at < stream.size()) {
      const std::size_t length = std::min<std::size_t>(stream.size() - at, random() % 40);
      chunks.push_back(stream.substr(at, length));
      at += length;
    }
    ASSERT_EQ(parse_chunks(chunks), whole) << "random round " << round;
  }
}

TEST(SseParser, OpenAiSampleSplitAnywhere) {
  for (const std::string_view ending : {"\n", "\r\n", "\r"}) {
    expect_split_invariant(test::with_line_endings(test::kOpenAiStream, ending), test::kOpenAiStreamEvents);
  }
}

TEST(SseParser, AnthropicSampleSplitAnywhere) {
  for (const std::string_view ending : {"\n", "\r\n", "\r"}) {
    expect_split_invariant(test::with_line_endings(test::kAnthropicStream, ending),
                           test::kAnthropicStreamEvents);
  }
}

TEST(SseParser, CrLfSampleSplitAtEveryPairOfPositions) {
  const std::string stream =
      "\xEF\xBB\xBFid: 1\r\nevent: a\r\ndata: x\r\n: c\r\ndata: y\r\n\r\ndata: z\r\n\r\n";
  const std::vector<SseEvent> whole = parse(stream);
  ASSERT_EQ(whole, (std::vector<SseEvent>{event("a", "x\ny", "1"), event("message", "z", "1")}));
  const std::string_view view = stream;
  for (std::size_t first = 0; first <= view.size(); ++first) {
    for (std::size_t second = first; second <= view.size(); ++second) {
      ASSERT_EQ(
          parse_chunks({view.substr(0, first), view.substr(first, second - first), view.substr(second)}),
          whole)
          << first << "," << second;
    }
  }
}

TEST(SseParser, EventsAreAppendedNotReplaced) {
  SseParser parser;
  std::vector<SseEvent> events = {event("old", "x")};
  EXPECT_FALSE(parser.feed("data: new\n\n", events).has_value());
  EXPECT_EQ(events, (std::vector<SseEvent>{event("old", "x"), event("message", "new")}));
}

TEST(SseParser, Retry) {
  SseParser parser;
  std::vector<SseEvent> events;
  EXPECT_EQ(parser.retry_ms(), std::nullopt);
  parser.feed("retry: 3000\n\n", events);
  EXPECT_EQ(parser.retry_ms(), 3000U);
  parser.feed("retry: 3s\nretry:\nretry: -1\n\n", events);
  EXPECT_EQ(parser.retry_ms(), 3000U);
  parser.feed("retry:99999999999999999999999\n", events);
  EXPECT_EQ(parser.retry_ms(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_TRUE(events.empty());
}

TEST(SseParser, EventSizeLimitIsInclusiveAndSplitInvariant) {
  SseParserOptions options;
  options.max_event_bytes = 16;
  // Lines count without terminators: "data: 1234567890" is 16 bytes.
  const std::string fits = "data: 1234567890\n\n";
  const std::string too_big = "data: 12345678901\n\n";
  const std::string two_lines_too_big = "data: 1234\ndata: 1\n\n";  // 10 + 7
  for (std::size_t cut = 0; cut <= fits.size(); ++cut) {
    SseParser parser(options);
    std::vector<SseEvent> events;
    EXPECT_FALSE(parser.feed(std::string_view(fits).substr(0, cut), events).has_value()) << cut;
    EXPECT_FALSE(parser.feed(std::string_view(fits).substr(cut), events).has_value()) << cut;
    EXPECT_EQ(events, std::vector<SseEvent>{event("message", "1234567890")}) << cut;
  }
  for (const std::string& stream : {too_big, two_lines_too_big}) {
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      SseParser parser(options);
      std::vector<SseEvent> events;
      std::optional<SseError> error = parser.feed(std::string_view(stream).substr(0, cut), events);
      if (!error) error = parser.feed(std::string_view(stream).substr(cut), events);
      ASSERT_TRUE(error.has_value()) << stream << " cut at " << cut;
      EXPECT_EQ(error->message, "SSE event exceeds max_event_bytes 16");
      EXPECT_TRUE(events.empty());
      EXPECT_TRUE(parser.failed());
    }
  }
}

TEST(SseParser, LimitResetsPerEventAndFailureIsSticky) {
  SseParserOptions options;
  options.max_event_bytes = 10;
  SseParser parser(options);
  std::vector<SseEvent> events;
  EXPECT_FALSE(parser.feed("data: 1234\n\ndata: 5678\n\n", events).has_value());
  EXPECT_EQ(events.size(), 2U);
  const auto error = parser.feed("data: ok\n\ndata: this line is far too long\n\ndata: later\n\n", events);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(events.size(), 3U);  // the event before the oversized one was still delivered
  EXPECT_EQ(parser.feed("data: x\n\n", events), error);
  EXPECT_EQ(events.size(), 3U);
  // A comment flood without blank lines is bounded too.
  SseParser flooded(options);
  std::vector<SseEvent> none;
  EXPECT_FALSE(flooded.feed(": 12345\n", none).has_value());
  EXPECT_TRUE(flooded.feed(": 12345\n", none).has_value());
}

TEST(SseParser, HugeUnterminatedLineIsRejectedWithoutBufferingIt) {
  SseParser parser;  // 1 MiB default
  std::vector<SseEvent> events;
  const std::string chunk(64 * 1024, 'x');
  std::optional<SseError> error;
  int fed = 0;
  while (!error && fed < 100) {
    error = parser.feed(chunk, events);
    ++fed;
  }
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message, "SSE event exceeds max_event_bytes 1048576");
  EXPECT_EQ(fed, 17);
}

TEST(SseParser, FinishReportsTruncatedEvent) {
  SseParser parser;
  std::vector<SseEvent> events;
  parser.feed("data: complete\n\nid: 4\nevent: partial\ndata: first\ndata: sec", events);
  EXPECT_EQ(events.size(), 1U);
  const SseEnd end = parser.finish();
  ASSERT_TRUE(end.truncated_event.has_value());
  EXPECT_EQ(*end.truncated_event, event("partial", "first\nsec", "4"));
  EXPECT_EQ(end.unterminated_line_bytes, 9U);
}

TEST(SseParser, FinishCases) {
  struct Case {
    const char* name;
    std::string stream;
    std::optional<SseEvent> truncated;
    std::size_t unterminated;
  };
  const Case cases[] = {
      {"clean end", "data: a\n\n", std::nullopt, 0},
      {"empty stream", "", std::nullopt, 0},
      {"missing final blank line", "data: [DONE]\n", event("message", "[DONE]"), 0},
      {"unterminated data line", "data: [DONE]", event("message", "[DONE]"), 12},
      {"unterminated comment", ": keep", std::nullopt, 6},
      {"event name only", "event: x\n", std::nullopt, 0},
      {"ended after CR", "data: a\r", event("message", "a"), 0},
  };
  for (const auto& c : cases) {
    SseParser parser;
    std::vector<SseEvent> events;
    parser.feed(c.stream, events);
    const SseEnd end = parser.finish();
    EXPECT_EQ(end.truncated_event, c.truncated) << c.name;
    EXPECT_EQ(end.unterminated_line_bytes, c.unterminated) << c.name;
  }
}

TEST(SseParser, FinishResetsForANewStream) {
  SseParserOptions options;
  options.max_event_bytes = 8;
  SseParser parser(options);
  std::vector<SseEvent> events;
  parser.feed("id: 1\ndata: 0123456789\n", events);
  EXPECT_TRUE(parser.failed());
  const SseEnd end = parser.finish();
  EXPECT_FALSE(end.truncated_event.has_value());
  EXPECT_FALSE(parser.failed());
  EXPECT_FALSE(parser.feed("data: a\n\n", events).has_value());
  EXPECT_EQ(events, std::vector<SseEvent>{event("message", "a", "")});
}

TEST(SseParser, NeverThrowsOnRandomBytes) {
  std::mt19937 random(99);
  const std::string alphabet = "data:event:id:retry: \r\n\n\n:\xEF\xBB\xBF\xFF\0x"s;
  for (int round = 0; round < 2000; ++round) {
    SseParserOptions options;
    options.max_event_bytes = 1 + random() % 64;
    SseParser parser(options);
    std::vector<SseEvent> events;
    std::string stream;
    const std::size_t length = random() % 200;
    for (std::size_t i = 0; i < length; ++i) stream.push_back(alphabet[random() % alphabet.size()]);
    std::size_t at = 0;
    while (at < stream.size()) {
      const std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + random() % 16);
      ASSERT_NO_THROW(parser.feed(std::string_view(stream).substr(at, n), events));
      at += n;
    }
    ASSERT_NO_THROW(parser.finish());
    for (const auto& e : events) EXPECT_LE(e.data.size(), options.max_event_bytes);
  }
}

}  // namespace
}  // namespace kafka_llm::format
