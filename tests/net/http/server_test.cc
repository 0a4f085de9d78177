// http::Server over real loopback sockets, on each backend: the server runs
// on a LoopGroup of one loop; the clients are blocking sockets on the test's
// thread writing raw bytes (server_test_util.h).
#include "net/http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <mutex>
#include <string>
#include <thread>

#include "fiber/fiber.h"
#include "net/http/internal/connection.h"
#include "tests/net/http/server_fixture.h"

namespace ringo::net::http {
namespace {

using namespace std::chrono_literals;
using testing::HttpServerTest;
using testing::kGet;
using testing::RawClient;

TEST_P(HttpServerTest, KeepAliveServesSeveralRequests) {
  start();
  RawClient c(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send(kGet));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "Hello, World!");
    EXPECT_EQ(r->header("content-type"), "text/plain");
    EXPECT_EQ(r->header("content-length"), "13");
    EXPECT_EQ(r->header("server"), "ringo");
    ASSERT_TRUE(r->header("date"));
    EXPECT_EQ(r->header("date")->size(), 29u);
    EXPECT_EQ(r->header("date")->substr(25), " GMT");
    EXPECT_FALSE(r->header("connection"));
    EXPECT_TRUE(r->keep_alive);
  }
  EXPECT_EQ(server_->stats().tcp.accepted, 1u);
  EXPECT_EQ(server_->stats().requests, 3u);
}

TEST_P(HttpServerTest, PipelinedRequestsAnsweredInOrderWithOneWrite) {
  start();
  RawClient c(port());
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += "GET /path/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_TRUE(c.send(batch));
  // One write of all 16 responses arrives as one unit: the first recv
  // already holds all of them (16 writes would show up piecemeal).
  ASSERT_GT(c.recv_once(), 0);
  std::size_t complete = 0;
  for (std::size_t at = 0; (at = c.raw().find("HTTP/1.1 200", at)) != std::string::npos; ++at) ++complete;
  EXPECT_EQ(complete, 16u);
  for (int i = 0; i < 16; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "/path/" + std::to_string(i));
  }
  EXPECT_EQ(server_->stats().requests, 16u);
}

TEST_P(HttpServerTest, HeadHasGetsHeadersAndNoBody) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("HEAD /plaintext HTTP/1.1\r\n\r\n"));
  auto r = c.read_response(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-length"), "13");
  EXPECT_EQ(r->body, "");
  // Had a body been sent, it would now be read as the next response.
  ASSERT_TRUE(c.send(kGet));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello, World!");
}

TEST_P(HttpServerTest, ContentLengthAndChunkedBodies) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello world");
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello world");
  // A body that arrives in pieces, across reads and buffer compactions.
  std::string big(3000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 3000\r\n\r\n"));
  for (std::size_t i = 0; i < big.size(); i += 700) {
    ASSERT_TRUE(c.send(std::string_view(big).substr(i, 700)));
    std::this_thread::sleep_for(2ms);
  }
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, big);
}

TEST_P(HttpServerTest, ExpectContinue) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  EXPECT_EQ(c.read_exact(25), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.send("body"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "body");
}

TEST_P(HttpServerTest, HijackHandsTheStreamOverAfterEarlierResponses) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send(std::string(kGet) + "GET /hijack HTTP/1.1\r\n\r\n" + std::string(kGet)));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello, World!");
  const std::string rest = c.read_to_end();
  EXPECT_EQ(rest.substr(0, 17), "HTTP/1.1 200 OK\r\n");
  EXPECT_NE(rest.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(rest.find("Connection: close\r\n\r\ndata: one\n\ndata: two\n\n"), std::string::npos) << rest;
  EXPECT_EQ(rest.find("Hello"), std::string::npos);  // the request after the hijack is not served
  EXPECT_EQ(server_->stats().hijacked, 1u);
}

// hijack() frees the read buffer and the parser (a stream may stay open for
// hours) and moves the request into a block of its own: every view of the
// request stays valid, with the same bytes, until the handler returns (under
// ASan a view left pointing into the freed buffer is a use after free).
TEST_P(HttpServerTest, HijackReleasesTheReadBufferAndKeepsTheRequestValid) {
  using Held = internal::Connection::Held;
  std::mutex mu;  // the handler runs on the server's thread
  Held before, after;
  Router router;
  router.post("/streams/{name}/{rest...}", [&](Request& req, ResponseWriter& w) {
    std::unique_lock lock(mu);
    before = internal::Connection::of(w).held();
    TcpStream& s = w.hijack();
    after = internal::Connection::of(w).held();
    lock.unlock();
    std::string seen;
    seen.append(req.method()).append("|").append(req.target()).append("|").append(req.path()).append("|");
    seen.append(req.query()).append("|").append(req.query_param("x").value_or("-")).append("|");
    seen.append(req.param("name")).append("|").append(req.param("rest")).append("|");
    seen.append(req.header("x-one").value_or("-")).append("|").append(req.header("X-Two").value_or("-")).append("|");
    seen.append(std::to_string(req.headers().size())).append("|").append(req.body()).append("\n");
    (void)s.write_all(std::string_view(seen));
    (void)w.hijack();  // again: nothing more to release
  });
  start_with(test_limits(), std::move(router));
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /streams/abc/d/e?x=1&y=2 HTTP/1.1\r\nX-One: first\r\nX-Two: second\r\n"
                     "Content-Length: 5\r\n\r\nhello"
                     "GET /plaintext HTTP/1.1\r\n\r\n"));  // pipelined after it: dropped with the buffer
  EXPECT_EQ(c.read_to_end(),
            "POST|/streams/abc/d/e?x=1&y=2|/streams/abc/d/e|x=1&y=2|1|abc|d/e|first|second|3|hello\n");
  std::lock_guard lock(mu);
  EXPECT_EQ(before.read_buffer, 1024u);
  EXPECT_TRUE(before.parser);
  EXPECT_EQ(before.request_copy, 0u);
  EXPECT_EQ(after.read_buffer, 0u);
  EXPECT_FALSE(after.parser);
  EXPECT_GT(after.request_copy, 0u);
  EXPECT_LT(after.request_copy, 256u);  // the request's bytes and its 3 fields, not a buffer
  EXPECT_EQ(server_->stats().hijacked, 1u);
}

TEST_P(HttpServerTest, StopCancelsHandlersAndClosesOpenConnections) {
  start();
  RawClient idle(port());
  RawClient waiting(port());
  ASSERT_TRUE(idle.send(kGet));
  ASSERT_TRUE(idle.read_response());
  ASSERT_TRUE(waiting.send("GET /wait HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(wait_for(waiting_));
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(wait_result_.load(), ECANCELED);
  EXPECT_EQ(server_->stats().tcp.active, 0u);
  idle.set_timeout(1s);
  EXPECT_EQ(idle.read_to_end(), "");
}

TEST_P(HttpServerTest, WatchHangupCancelsTheHandlerWhenTheClientLeaves) {
  start();
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("GET /watch HTTP/1.1\r\n\r\n"));
    ASSERT_TRUE(wait_for(waiting_));
  }
  for (int i = 0; i < 500 && wait_result_.load() == -1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(wait_result_.load(), ECANCELED);
  EXPECT_TRUE(hung_up_.load());
  EXPECT_TRUE(connections_drain());
}

TEST_P(HttpServerTest, PathParamsAndRawQueryParams) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /v1/models/gpt-4?q=a%20b HTTP/1.1\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "gpt-4");
  EXPECT_EQ(r->header("x-query"), "a%20b");
}

TEST_P(HttpServerTest, Http10ClosesUnlessAskedToKeepAlive) {
  start();
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("GET /plaintext HTTP/1.0\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_without_data());
  }
  RawClient c(port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "keep-alive");
    EXPECT_EQ(r->body, "Hello, World!");
  }
}

TEST_P(HttpServerTest, ConnectionCloseIsHonouredBothWays) {
  start();
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_without_data());
  }
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /close HTTP/1.1\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "bye");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerTest, NotFoundAndMethodNotAllowed) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /nope HTTP/1.1\r\n\r\nDELETE /plaintext HTTP/1.1\r\n\r\n" + std::string(kGet)));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "not found: no route for /nope\n");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
  r = c.read_response();  // the connection stays usable
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_P(HttpServerTest, HeadersAreCaseInsensitive) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /header HTTP/1.1\r\nX-TEST: Value\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Value");
}

TEST_P(HttpServerTest, LargeHeadGrowsTheBufferAcrossReads) {
  start();
  RawClient c(port());
  const std::string value(1800, 'v');
  const std::string req = "GET /header HTTP/1.1\r\nX-Test: " + value + "\r\n\r\n";
  for (std::size_t i = 0; i < req.size(); i += 300) {
    ASSERT_TRUE(c.send(std::string_view(req).substr(i, 300)));
    std::this_thread::sleep_for(2ms);
  }
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, value);
  ASSERT_TRUE(c.send(kGet));
  ASSERT_TRUE(c.read_response());
}

TEST_P(HttpServerTest, ChunkedBodyTrickledAcrossManyReadsThenPipelinedGet) {
  start();  // 1 KiB read buffer: the body's bytes are dropped from it as they are copied out
  RawClient c(port());
  std::string expect;
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Keep: head-survives\r\n\r\n"));
  for (int i = 0; i < 12; ++i) {
    const std::string piece(300, static_cast<char>('a' + i));
    expect += piece;
    ASSERT_TRUE(c.send("12c\r\n" + piece + "\r\n"));
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(c.send("0\r\n\r\n" + std::string(kGet)));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, expect);
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello, World!");
}

TEST_P(HttpServerTest, PipelinedPostsAndGetsKeepTheirBodies) {
  start();
  RawClient c(port());
  std::string batch;
  for (int i = 0; i < 8; ++i) {
    const std::string body = "body-" + std::to_string(i);
    batch += "POST /echo HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    batch += kGet;
  }
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 8; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "body-" + std::to_string(i));
    r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "Hello, World!");
  }
}

TEST_P(HttpServerTest, ExpectContinueWithTheBodyAlreadySentGetsNoInterimResponse) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);  // not 100
  EXPECT_EQ(r->body, "body");
}

TEST_P(HttpServerTest, PartialPipelinedHeadSurvivesCompactionAndGrowth) {
  start();  // 1 KiB read buffer
  for (const std::size_t first_pad : {650u, 100u}) {
    RawClient c(port());
    const std::string first = "GET /header HTTP/1.1\r\nX-Test: " + std::string(first_pad, 'f') + "\r\n\r\n";
    const std::string second = "GET /header HTTP/1.1\r\nX-Test: " + std::string(1200, 's') + "\r\n\r\n";
    // The first request and the start of the second in one read: the second's
    // head is moved to the buffer's front (650) or into a larger buffer (100).
    ASSERT_TRUE(c.send(first + second.substr(0, 250)));
    std::this_thread::sleep_for(5ms);
    ASSERT_TRUE(c.send(second.substr(250)));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, std::string(first_pad, 'f'));
    r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, std::string(1200, 's'));
  }
}

TEST_P(HttpServerTest, ResponseFieldsSetAddAndRefused) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /fields HTTP/1.1\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "abcd");
  EXPECT_EQ(r->header("content-length"), "4");
  int x_a = 0, cookies = 0;
  for (const auto& [name, value] : r->headers) {
    if (iequals(name, "x-a")) {
      ++x_a;
      EXPECT_EQ(value, "2");
    }
    if (name == "Set-Cookie") ++cookies;
    EXPECT_NE(name, "Injected");
    EXPECT_NE(name, "X-Bad");
  }
  EXPECT_EQ(x_a, 1);
  EXPECT_EQ(cookies, 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpServerTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net::http
