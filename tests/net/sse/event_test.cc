// SSE framing (event.h) and the client-side parser (event_parser.h): the
// bytes each event becomes, and the WHATWG parsing rules read back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/sse/event.h"
#include "net/sse/event_parser.h"

namespace ringo::net::sse {
namespace {

using namespace std::chrono_literals;

std::string framed(const Event& e) {
  std::string out;
  auto r = append_event(out, e);
  EXPECT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(out.size(), framed_size(e));
  return out;
}

struct Got {
  std::string type, data, id;
  bool operator==(const Got&) const = default;
};

std::vector<Got> parse_all(std::string_view bytes, std::size_t piece = 0) {
  EventParser p;
  std::vector<Got> got;
  auto sink = [&](const ParsedEvent& e) { got.push_back({std::string(e.type), std::string(e.data), std::string(e.id)}); };
  if (piece == 0) piece = bytes.size() + 1;
  for (std::size_t i = 0; i < bytes.size(); i += piece) EXPECT_TRUE(p.feed(bytes.substr(i, piece), sink).ok());
  return got;
}

TEST(SseEvent, TickerBytesAreExactlyTheGoPeers) {
  EXPECT_EQ(framed({.data = "tick 7", .id = "7"}), "id: 7\ndata: tick 7\n\n");
}

TEST(SseEvent, MultiLineDataIsOneDataLinePerLineForEveryLineEnding) {
  EXPECT_EQ(framed({.data = "a\nb"}), "data: a\ndata: b\n\n");
  EXPECT_EQ(framed({.data = "a\r\nb"}), "data: a\ndata: b\n\n");
  EXPECT_EQ(framed({.data = "a\rb"}), "data: a\ndata: b\n\n");
  EXPECT_EQ(framed({.data = "a\r\rb"}), "data: a\ndata: \ndata: b\n\n");
  EXPECT_EQ(framed({.data = "a\n"}), "data: a\ndata: \n\n");
  EXPECT_EQ(framed({.data = ""}), "data: \n\n");
  EXPECT_EQ(framed({.data = " lead"}), "data:  lead\n\n");
}

TEST(SseEvent, EventIdRetryFieldsInOrder) {
  EXPECT_EQ(framed({.data = "x", .event = "update", .id = "42", .retry = 1500ms}),
            "event: update\nid: 42\nretry: 1500\ndata: x\n\n");
  EXPECT_EQ(framed({.data = "x", .id = ""}), "id: \ndata: x\n\n");
}

TEST(SseEvent, RejectsNewlinesInIdAndEventAndNulInId) {
  for (const Event& bad : {Event{.data = "x", .id = "1\n2"}, Event{.data = "x", .id = "1\r"},
                           Event{.data = "x", .id = std::string_view("a\0b", 3)},
                           Event{.data = "x", .event = "a\nb"}, Event{.data = "x", .event = "\r"},
                           Event{.data = "x", .retry = -1ms}}) {
    std::string out = "kept";
    auto r = append_event(out, bad);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(EINVAL));
    EXPECT_EQ(out, "kept");
    EXPECT_EQ(framed_size(bad), 0u);
  }
}

TEST(SseEvent, Comments) {
  std::string out;
  append_comment(out, "keep-alive");
  append_comment(out, "");
  append_comment(out, "a\r\nb");
  EXPECT_EQ(out, ": keep-alive\n:\n: a\n: b\n");
  out.clear();
  append_retry(out, 3000ms);
  EXPECT_EQ(out, "retry: 3000\n\n");
}

TEST(SseParser, RoundTripsFramedEventsWhateverThePieceSize) {
  std::string stream;
  const std::vector<Event> events = {
      {.data = "one", .id = "1"}, {.data = "two\nlines", .event = "multi"}, {.data = "", .id = "3"},
      {.data = "x\r\ny\rz\n"},    {.data = ":not a comment"},
  };
  for (const Event& e : events) stream += framed(e);
  append_comment(stream, "ignored");
  const std::vector<Got> want = {{"message", "one", "1"},        {"multi", "two\nlines", "1"},
                                 {"message", "", "3"},           {"message", "x\ny\nz\n", "3"},
                                 {"message", ":not a comment", "3"}};
  for (std::size_t piece : {0, 1, 2, 3, 7}) EXPECT_EQ(parse_all(stream, piece), want) << "piece " << piece;
}

TEST(SseParser, SpecRules) {
  // A field without a colon, no space after the colon, unknown fields,
  // comments, CR and CRLF line ends, an id with NUL ignored.
  EXPECT_EQ(parse_all("data\n\n"), (std::vector<Got>{{"message", "", ""}}));
  EXPECT_EQ(parse_all("data:x\r\ndata:  y\r\rfoo: bar\n: c\nevent\ndata: z\n\n"),
            (std::vector<Got>{{"message", "x\n y", ""}, {"message", "z", ""}}));
  EXPECT_EQ(parse_all(std::string_view("id: a\0b\ndata: q\n\n", 18)), (std::vector<Got>{{"message", "q", ""}}));
  // No data: nothing dispatched, and the type does not leak into the next event.
  EXPECT_EQ(parse_all("event: e\n\ndata: d\n\n"), (std::vector<Got>{{"message", "d", ""}}));
  // An unfinished event at the end is not dispatched.
  EXPECT_EQ(parse_all("data: a\n\ndata: b\n"), (std::vector<Got>{{"message", "a", ""}}));
}

TEST(SseParser, BomCrSplitAndRetry) {
  const std::string s = "\xEF\xBB\xBFretry: 250\rdata: a\r\r\ndata: b\r\n\r\nretry: x\n";
  for (std::size_t piece : {0, 1, 2}) {
    EventParser p;
    std::vector<std::string> data;
    for (std::size_t i = 0; i < s.size(); i += piece == 0 ? s.size() : piece) {
      ASSERT_TRUE(p.feed(std::string_view(s).substr(i, piece == 0 ? s.size() : piece),
                         [&](const ParsedEvent& e) { data.emplace_back(e.data); })
                      .ok());
    }
    EXPECT_EQ(data, (std::vector<std::string>{"a", "b"})) << piece;
    ASSERT_TRUE(p.retry().has_value());
    EXPECT_EQ(*p.retry(), 250ms);
  }
  // A BOM later in the stream is data, and a stream not starting with one keeps its first bytes.
  EXPECT_EQ(parse_all("\xEF" "data: a\n\n", 1).size(), 0u);
  EXPECT_EQ(parse_all("data: \xEF\xBB\xBF\n\n"), (std::vector<Got>{{"message", "\xEF\xBB\xBF", ""}}));
}

TEST(SseParser, LimitsFailWithEmsgsize) {
  EventParser p(EventParser::Limits{.max_line = 16, .max_data = 32});
  auto ignore = [](const ParsedEvent&) {};
  EXPECT_TRUE(p.feed("data: 0123456789\n", ignore).ok());
  auto r = p.feed("data: 01234567890123\n", ignore);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(EMSGSIZE));
  EXPECT_FALSE(p.feed("\n", ignore).ok());  // stays failed

  EventParser q(EventParser::Limits{.max_line = 64, .max_data = 8});
  auto d = q.feed("data: 12345\ndata: 12345\n\n", ignore);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().is(EMSGSIZE));
}

}  // namespace
}  // namespace ringo::net::sse
