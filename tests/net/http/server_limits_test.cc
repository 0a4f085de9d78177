// http::Server's limits, timeouts and errors, each with its status and a
// closed connection, on each backend (server_fixture.h).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/net/http/server_fixture.h"

namespace ringo::net::http {
namespace {

using namespace std::chrono_literals;
using testing::kGet;
using testing::RawClient;

class HttpServerLimitsTest : public testing::HttpServerTest {};

TEST_P(HttpServerLimitsTest, ExpectContinueOverTheLimitIs413WithoutContinue) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "request body too large: Content-Length 5000 exceeds the limit of 4096 bytes\n");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, UnknownExpectationIs417) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 4\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 417);
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, HeadTooLargeIs431AndCloses) {
  start();
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /plaintext HTTP/1.1\r\nX-Big: " + std::string(3000, 'a') + "\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->body, "request header fields too large: more than 2048 bytes\n");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_without_data());
  EXPECT_EQ(server_->stats().bad_requests, 1u);
}

TEST_P(HttpServerLimitsTest, TooManyHeadersIs431) {
  start();
  RawClient c(port());
  std::string req = "GET /plaintext HTTP/1.1\r\n";
  for (int i = 0; i < 11; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  ASSERT_TRUE(c.send(req + "\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->body, "request header fields too large: more than 10 fields\n");
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, BodyTooLargeIs413) {
  start();
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 4097\r\n\r\n" + std::string(4097, 'b')));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.closed_without_data());
  }
  RawClient c(port());
  std::string chunked = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) chunked += "3e8\r\n" + std::string(1000, 'c') + "\r\n";
  ASSERT_TRUE(c.send(chunked + "0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "request body too large: more than 4096 bytes\n");
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, MalformedAndSmugglingRequestsAre400) {
  start();
  const char* cases[] = {
      "GARBAGE\r\n\r\n",
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nBad Name: x\r\n\r\n",
  };
  for (const char* req : cases) {
    RawClient c(port());
    ASSERT_TRUE(c.send(req));
    auto r = c.read_response();
    ASSERT_TRUE(r) << req;
    EXPECT_EQ(r->status, 400) << req;
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_EQ(r->body.substr(0, 12), "bad request:") << r->body;
    EXPECT_TRUE(c.closed_without_data()) << req;
  }
}

TEST_P(HttpServerLimitsTest, SlowlorisHeadIsCutOffAfterTheHeaderTimeout) {
  HttpLimits l = test_limits();
  l.header_timeout = 200ms;
  start(l);
  RawClient c(port());
  const auto t0 = std::chrono::steady_clock::now();
  // A byte every 20 ms would keep a per-read timeout alive forever.
  std::string head = "GET /plaintext HTTP/1.1\r\nX-Slow: " + std::string(200, 's') + "\r\n\r\n";
  (void)c.trickle(head, 20ms);
  auto r = c.read_response();
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->body, "request timeout: the request head did not arrive within 200 ms\n");
  EXPECT_TRUE(c.closed_without_data());
  EXPECT_LT(elapsed, 3s);  // the head alone would take 4.6 s to trickle
  EXPECT_EQ(server_->stats().timeouts, 1u);
}

TEST_P(HttpServerLimitsTest, IdleKeepAliveConnectionIsClosedSilently) {
  HttpLimits l = test_limits();
  l.idle_timeout = 50ms;
  start(l);
  RawClient c(port());
  ASSERT_TRUE(c.send(kGet));
  ASSERT_TRUE(c.read_response());
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, SilentNewConnectionIsClosedAfterTheHeaderTimeout) {
  HttpLimits l = test_limits();
  l.header_timeout = 50ms;
  start(l);
  RawClient c(port());
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, SlowBodyIs408) {
  HttpLimits l = test_limits();
  l.body_timeout = 100ms;
  start(l);
  RawClient c(port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->body, "request timeout: the request body did not arrive within 100 ms\n");
  EXPECT_TRUE(c.closed_without_data());
}

TEST_P(HttpServerLimitsTest, ClientVanishingMidRequestLeaksNothing) {
  start();
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial"));
  }
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("GET /plaint"));
  }
  for (int i = 0; i < 500 && server_->stats().tcp.accepted < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server_->stats().tcp.accepted, 2u);
  EXPECT_TRUE(connections_drain());
  RawClient c(port());
  ASSERT_TRUE(c.send(kGet));
  EXPECT_TRUE(c.read_response());
}

TEST_P(HttpServerLimitsTest, ThrowingHandlerGets500AndTheServerGoesOn) {
  start();
  {
    RawClient c(port());
    ASSERT_TRUE(c.send("GET /throw HTTP/1.1\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_without_data());
  }
  EXPECT_EQ(server_->stats().handler_errors, 1u);
  RawClient c(port());
  ASSERT_TRUE(c.send(kGet));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_P(HttpServerLimitsTest, ClientThatDoesNotReadIsClosedAfterTheWriteTimeout) {
  HttpLimits l = test_limits();
  l.write_timeout = 100ms;
  start(l);
  RawClient c(port());
  ASSERT_TRUE(c.send("GET /big HTTP/1.1\r\n\r\n"));
  // Never reads: the 64 MiB response cannot leave.
  for (int i = 0; i < 500 && server_->stats().requests == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(connections_drain());
  const ServerStats st = server_->stats();
  EXPECT_EQ(st.timeouts, 1u) << st.requests << " " << st.bad_requests << " " << st.handler_errors;
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpServerLimitsTest, reactor::testing::kAllBackends,
                         reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net::http
