// http::Parser: requests and responses, split at every byte boundary,
// pipelining, chunked bodies, limits, and the framing conflicts that enable
// request smuggling.
#include "net/http/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace ringo::net::http {
namespace {

using Event = Parser::Event;

// What a parse of a whole stream produced.
struct Message {
  std::string method, target, reason;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;
  bool expect_continue = false;
};

struct Outcome {
  std::vector<Message> messages;
  int error_status = 0;
  std::string error;
  bool incomplete = false;  // stream ended without completing the last message
};

// Feeds `input` in pieces of `step` bytes (0: all at once) through a buffer
// that keeps the unconsumed bytes contiguous (as a server's read buffer does).
Outcome parse_all(Parser& p, std::string_view input, std::size_t step = 0, bool eof = false) {
  Outcome out;
  std::string buf;
  buf.reserve(input.size() + 1);  // never moves: views stay valid
  std::size_t fed = 0, pos = 0;
  Message cur;
  while (true) {
    Parser::Step s = p.parse(std::string_view(buf).substr(pos));
    pos += s.consumed;
    switch (s.event) {
      case Event::head:
        cur = {};
        cur.method = std::string(p.method());
        cur.target = std::string(p.target());
        cur.reason = std::string(p.reason());
        cur.status = p.status();
        for (const HeaderField& h : p.headers()) cur.headers.emplace_back(h.name, h.value);
        cur.expect_continue = p.expect_continue();
        break;
      case Event::body:
        cur.body.append(s.body);
        break;
      case Event::message:
        cur.keep_alive = p.keep_alive();
        out.messages.push_back(cur);
        break;
      case Event::error:
        out.error_status = p.error().status;
        out.error = p.error().message;
        return out;
      case Event::need_more:
        if (fed == input.size()) {
          if (eof) {
            Parser::Step f = p.finish();
            if (f.event == Event::message) {
              cur.keep_alive = p.keep_alive();
              out.messages.push_back(cur);
            } else if (f.event == Event::error) {
              out.error_status = p.error().status;
              out.error = p.error().message;
            }
          } else {
            out.incomplete = p.in_message();
          }
          return out;
        }
        const std::size_t n = step == 0 ? input.size() - fed : std::min(step, input.size() - fed);
        buf.append(input.substr(fed, n));
        fed += n;
        break;
    }
  }
}

Outcome parse_request(std::string_view input, std::size_t step = 0, ParserLimits limits = {}) {
  Parser p(Parser::Mode::request, limits);
  return parse_all(p, input, step);
}

TEST(HttpParser, SimpleGet) {
  for (std::size_t step : {0, 1, 3, 7}) {
    Outcome o = parse_request("GET /plaintext?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", step);
    ASSERT_EQ(o.messages.size(), 1u) << step;
    EXPECT_EQ(o.messages[0].method, "GET");
    EXPECT_EQ(o.messages[0].target, "/plaintext?x=1");
    ASSERT_EQ(o.messages[0].headers.size(), 2u);
    EXPECT_EQ(o.messages[0].headers[0].first, "Host");
    EXPECT_EQ(o.messages[0].headers[0].second, "a");
    EXPECT_EQ(o.messages[0].headers[1].second, "*/*");
    EXPECT_TRUE(o.messages[0].keep_alive);
    EXPECT_TRUE(o.messages[0].body.empty());
    EXPECT_FALSE(o.incomplete);
  }
}

TEST(HttpParser, ConsumedCoversTheMessageExactly) {
  Parser p(Parser::Mode::request);
  std::string_view req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
  Parser::Step s = p.parse(req);
  EXPECT_EQ(s.event, Event::head);
  std::size_t used = s.consumed;
  s = p.parse(req.substr(used));
  EXPECT_EQ(s.event, Event::message);
  used += s.consumed;
  EXPECT_EQ(used, std::string_view("GET / HTTP/1.1\r\nHost: a\r\n\r\n").size());
  EXPECT_FALSE(p.in_message());
  s = p.parse(req.substr(used));
  EXPECT_EQ(s.event, Event::head);
  EXPECT_EQ(p.target(), "/2");
}

TEST(HttpParser, PipelinedRequestsInOrder) {
  std::string in;
  for (int i = 0; i < 16; ++i) in += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t step : {0, 1, 5}) {
    Outcome o = parse_request(in, step);
    ASSERT_EQ(o.messages.size(), 16u);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(o.messages[i].target, "/r" + std::to_string(i));
  }
}

TEST(HttpParser, ContentLengthBody) {
  for (std::size_t step : {0, 1, 4}) {
    Outcome o = parse_request("POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\n\r\n", step);
    ASSERT_EQ(o.messages.size(), 2u);
    EXPECT_EQ(o.messages[0].body, "hello world");
    EXPECT_EQ(o.messages[1].method, "GET");
  }
}

TEST(HttpParser, ChunkedBody) {
  std::string_view in =
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  for (std::size_t step : {0, 1, 2, 9}) {
    Outcome o = parse_request(in, step);
    ASSERT_EQ(o.messages.size(), 1u) << o.error;
    EXPECT_EQ(o.messages[0].body, "hello world");
    EXPECT_EQ(o.messages[0].headers.size(), 1u);  // the trailer is dropped
  }
}

TEST(HttpParser, KeepAliveRules) {
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").messages[0].keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n").messages[0].keep_alive);
  EXPECT_TRUE(parse_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").messages[0].keep_alive);
}

TEST(HttpParser, ExpectContinue) {
  Parser p(Parser::Mode::request);
  std::string_view in = "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
  Parser::Step s = p.parse(in);
  ASSERT_EQ(s.event, Event::head);
  EXPECT_EQ(s.consumed, in.size());
  EXPECT_TRUE(p.expect_continue());
  EXPECT_TRUE(p.has_body());
  EXPECT_EQ(p.content_length(), 3u);
  s = p.parse("");
  EXPECT_EQ(s.event, Event::need_more);
  s = p.parse("abc");
  EXPECT_EQ(s.event, Event::body);
  EXPECT_EQ(s.body, "abc");
  s = p.parse(std::string_view("abc").substr(s.consumed));
  EXPECT_EQ(s.event, Event::message);
}

TEST(HttpParser, HeadLimitIsExact) {
  std::string head = "GET / HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  ParserLimits limits;
  limits.max_head_bytes = 200;
  head += std::string(200 - head.size() - end.size(), 'a');
  head += end;
  ASSERT_EQ(head.size(), 200u);
  for (std::size_t step : {0, 1, 13}) {
    EXPECT_EQ(parse_request(head, step, limits).messages.size(), 1u);
    std::string over = head;
    over.insert(20, "b");
    Outcome o = parse_request(over, step, limits);
    EXPECT_EQ(o.error_status, 431);
    EXPECT_EQ(o.error, "request header fields too large: more than 200 bytes");
  }
}

TEST(HttpParser, HeadLimitAppliesPerMessage) {
  ParserLimits limits;
  limits.max_head_bytes = 64;
  std::string in;
  for (int i = 0; i < 10; ++i) in += "GET / HTTP/1.1\r\nHost: aaaaa\r\n\r\n";
  EXPECT_EQ(parse_request(in, 0, limits).messages.size(), 10u);
}

TEST(HttpParser, HeaderCountLimit) {
  ParserLimits limits;
  limits.max_headers = 3;
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, limits).messages.size(), 1u);
  Outcome o = parse_request("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 0, limits);
  EXPECT_EQ(o.error_status, 431);
  EXPECT_EQ(o.error, "request header fields too large: more than 3 fields");
}

TEST(HttpParser, BodyLimit) {
  ParserLimits limits;
  limits.max_body_bytes = 10;
  EXPECT_EQ(parse_request("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 0, limits).messages.size(), 1u);
  Outcome o = parse_request("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 0, limits);
  EXPECT_EQ(o.error_status, 413);
  EXPECT_EQ(o.error, "request body too large: Content-Length 11 exceeds the limit of 10 bytes");
  o = parse_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n", 0,
                    limits);
  EXPECT_EQ(o.error_status, 413);
  EXPECT_EQ(o.error, "request body too large: more than 10 bytes");
}

// Request smuggling: every ambiguous framing is a 400.
TEST(HttpParser, ConflictingFramingRejected) {
  const char* cases[] = {
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
      "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
      "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello",
      "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
      "GARBAGE\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
  };
  for (const char* c : cases) {
    for (std::size_t step : {0, 1}) {
      Outcome o = parse_request(c, step);
      EXPECT_EQ(o.error_status, 400) << c << " -> " << o.messages.size() << " messages";
      EXPECT_TRUE(o.messages.empty()) << c;
    }
  }
}

TEST(HttpParser, ErrorIsSticky) {
  Parser p(Parser::Mode::request);
  EXPECT_EQ(p.parse("BAD\r\n\r\n").event, Event::error);
  EXPECT_EQ(p.parse("GET / HTTP/1.1\r\n\r\n").event, Event::error);
  p.reset();
  EXPECT_EQ(p.parse("GET / HTTP/1.1\r\n\r\n").event, Event::head);
}

TEST(HttpParser, RebaseFollowsMovedBytes) {
  Parser p(Parser::Mode::request);
  std::string a = "GET /abc HTTP/1.1\r\nHo";
  std::string b(256, '\0');
  EXPECT_EQ(p.parse(a).event, Event::need_more);
  // Move the bytes elsewhere and continue there.
  std::copy(a.begin(), a.end(), b.begin());
  p.rebase(a.data(), a.data() + a.size(), b.data() - a.data());
  std::string rest = "st: x\r\n\r\n";
  std::copy(rest.begin(), rest.end(), b.begin() + a.size());
  a.assign(a.size(), 'Z');  // the old bytes are gone
  Parser::Step s = p.parse(std::string_view(b.data() + a.size(), rest.size()));
  ASSERT_EQ(s.event, Event::head);
  EXPECT_EQ(p.target(), "/abc");
  ASSERT_EQ(p.headers().size(), 1u);
  EXPECT_EQ(p.headers()[0].name, "Host");
  EXPECT_EQ(p.headers()[0].value, "x");
}

TEST(HttpParser, IncompleteAtEofIsAnError) {
  Parser p(Parser::Mode::request);
  Outcome o = parse_all(p, "GET / HTTP/1.1\r\nHost:", 0, true);
  EXPECT_EQ(o.error_status, 400);
  Parser q(Parser::Mode::request);
  o = parse_all(q, "GET / HTTP/1.1\r\n\r\n", 0, true);
  EXPECT_EQ(o.messages.size(), 1u);
  EXPECT_EQ(o.error_status, 0);
}

// Any split of a valid stream gives the same messages; random bytes never
// crash the parser (run under ASan/UBSan) and always end in an error or
// need_more.
TEST(HttpParser, RandomSplitsAndGarbage) {
  std::string stream;
  for (int i = 0; i < 5; ++i) {
    stream += "POST /u" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n" + std::to_string(i + 1) + "\r\n" + std::string(static_cast<std::size_t>(i + 1), 'x') +
              "\r\n0\r\n\r\n";
    stream += "GET /g" + std::to_string(i) + " HTTP/1.1\r\nA: b\r\n\r\n";
    stream += "PUT /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nwxyz";
  }
  const Outcome whole = parse_request(stream);
  ASSERT_EQ(whole.messages.size(), 15u) << whole.error;
  unsigned seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fff;
  };
  for (int round = 0; round < 200; ++round) {
    const Outcome split = parse_request(stream, 1 + next() % 40);
    ASSERT_EQ(split.messages.size(), whole.messages.size());
    for (std::size_t i = 0; i < split.messages.size(); ++i) {
      EXPECT_EQ(split.messages[i].target, whole.messages[i].target);
      EXPECT_EQ(split.messages[i].body, whole.messages[i].body);
      EXPECT_EQ(split.messages[i].headers, whole.messages[i].headers);
    }
  }
  for (int round = 0; round < 500; ++round) {
    std::string junk = round % 2 == 0 ? std::string("GET / HTTP/1.1\r\n") : std::string();
    const std::size_t n = next() % 300;
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned r = next();
      // Mostly header-ish bytes, some control characters and high bytes.
      junk.push_back(r % 10 == 0 ? static_cast<char>(r % 256) : "abc:; \r\n\t0123456789-,"[r % 22]);
    }
    ParserLimits limits;
    limits.max_head_bytes = 128;
    limits.max_headers = 5;
    limits.max_body_bytes = 64;
    Parser p(Parser::Mode::request, limits);
    const Outcome o = parse_all(p, junk, 1 + next() % 17, true);
    if (o.error_status != 0) {
      EXPECT_TRUE(o.error_status == 400 || o.error_status == 413 || o.error_status == 431) << o.error_status;
    }
  }
}

// Responses (the client's side).

Outcome parse_response(std::string_view input, std::size_t step = 0, bool eof = false, bool head = false) {
  Parser p(Parser::Mode::response, {.max_body_bytes = 0});
  p.set_head_request(head);
  return parse_all(p, input, step, eof);
}

TEST(HttpParserResponse, ContentLength) {
  for (std::size_t step : {0, 1, 6}) {
    Outcome o = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", step);
    ASSERT_EQ(o.messages.size(), 1u);
    EXPECT_EQ(o.messages[0].status, 200);
    EXPECT_EQ(o.messages[0].reason, "OK");
    EXPECT_EQ(o.messages[0].body, "hello");
    EXPECT_TRUE(o.messages[0].keep_alive);
  }
}

TEST(HttpParserResponse, Chunked) {
  for (std::size_t step : {0, 1, 3}) {
    Outcome o = parse_response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", step);
    ASSERT_EQ(o.messages.size(), 1u);
    EXPECT_EQ(o.messages[0].body, "abcde");
  }
}

TEST(HttpParserResponse, CloseDelimited) {
  for (std::size_t step : {0, 1}) {
    Outcome o = parse_response("HTTP/1.1 200 OK\r\n\r\nuntil the end", step, true);
    ASSERT_EQ(o.messages.size(), 1u) << o.error;
    EXPECT_EQ(o.messages[0].body, "until the end");
    EXPECT_FALSE(o.messages[0].keep_alive);
  }
}

TEST(HttpParserResponse, TruncatedBodyIsAnError) {
  Outcome o = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, true);
  EXPECT_TRUE(o.messages.empty());
  EXPECT_EQ(o.error_status, 400);
}

TEST(HttpParserResponse, HeadAndBodilessStatuses) {
  Outcome o = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 0, false,
                             true);
  // The HEAD response has no body; the next response follows at once.
  ASSERT_EQ(o.messages.size(), 2u) << o.error;
  EXPECT_EQ(o.messages[0].body, "");
  EXPECT_EQ(o.messages[1].status, 204);
  o = parse_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(o.messages.size(), 3u) << o.error;
  EXPECT_EQ(o.messages[0].status, 304);
  EXPECT_EQ(o.messages[1].status, 100);
  EXPECT_EQ(o.messages[2].body, "ok");
}

TEST(HttpParserResponse, BodyPiecesArriveAsTheyCome) {
  Parser p(Parser::Mode::response, {.max_body_bytes = 0});
  std::string buf = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc";
  Parser::Step s = p.parse(buf);
  ASSERT_EQ(s.event, Event::head);
  std::size_t pos = s.consumed;
  s = p.parse(std::string_view(buf).substr(pos));
  ASSERT_EQ(s.event, Event::body);
  EXPECT_EQ(s.body, "abc");
  pos += s.consumed;
  EXPECT_EQ(p.parse(std::string_view(buf).substr(pos)).event, Event::need_more);
  s = p.parse("def");
  ASSERT_EQ(s.event, Event::body);
  EXPECT_EQ(s.body, "def");
  EXPECT_EQ(p.parse(std::string_view("def").substr(s.consumed)).event, Event::message);
}

}  // namespace
}  // namespace ringo::net::http
