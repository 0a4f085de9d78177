// SSE end to end, on each backend: SseStream in an http::Server handler (a
// LoopGroup of one loop), read by http::Client and sse::SseReader on the
// test's loop. The head, Last-Event-ID, coalescing through the server, the
// ticker's exact bytes, and a client that vanishes mid-stream.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "fiber/fiber.h"
#include "fiber/sync.h"
#include "net/http/client.h"
#include "net/http/server.h"
#include "net/sse/sse_reader.h"
#include "net/sse/sse_stream.h"
#include "reactor/clock.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo::net::sse {
namespace {

using namespace std::chrono_literals;

class SseHttpTest : public fiber::testing::FiberLoopTest {
 protected:
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    if (group_) group_->stop();
    group_.reset();
    FiberLoopTest::TearDown();
  }
  void start(http::Router router) {
    group_ = start_group(1);
    ASSERT_TRUE(group_);
    http::ServerOptions options;
    options.tcp.address = sys::SockAddr::ipv4_loopback(0);
    auto s = http::Server::start(*group_, options, std::move(router));
    ASSERT_TRUE(s.ok()) << s.error().message();
    server_ = std::move(*s);
  }
  sys::SockAddr address() const { return server_->address(); }

  std::unique_ptr<reactor::LoopGroup> group_;
  std::unique_ptr<http::Server> server_;
};

TEST_P(SseHttpTest, StreamsEventsWithTheHeadersABrowserNeeds) {
  std::atomic<std::uint64_t> sends{0};
  http::Router router;
  router.get("/events", [&](http::Request& req, http::ResponseWriter& w) {
    w.set_header("Access-Control-Allow-Origin", "*");
    SseStream s(req, w);
    // Written in one turn with the head: one send for all of it.
    (void)s.send({.data = "resume after " + std::string(s.last_event_id()), .id = "42"});
    (void)s.send({.data = "two\nlines", .event = "multi", .id = "43"});
    (void)s.send_comment("keep-alive");
    (void)this_fiber::sleep_for(5ms, s.token());
    sends = s.stats().sends;
    (void)s.send({.data = "last", .id = "44"});
  });
  start(std::move(router));
  run_main([&] {
    http::Client client;
    const http::HeaderField fields[] = {{"Last-Event-ID", "41"}, {"Accept", "text/event-stream"}};
    auto r = client.send(address(), {.target = "/events", .headers = fields});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status(), 200);
    EXPECT_EQ(r->header("content-type").value_or(""), "text/event-stream");
    EXPECT_EQ(r->header("cache-control").value_or(""), "no-cache");
    EXPECT_EQ(r->header("x-accel-buffering").value_or(""), "no");
    EXPECT_EQ(r->header("connection").value_or(""), "close");
    EXPECT_EQ(r->header("access-control-allow-origin").value_or(""), "*");
    EXPECT_FALSE(r->header("content-length").has_value());
    SseReader reader(*r);
    auto e1 = reader.next().value();
    EXPECT_EQ(e1.data, "resume after 41");
    EXPECT_EQ(e1.id, "42");
    auto e2 = reader.next().value();
    EXPECT_EQ(e2.type, "multi");
    EXPECT_EQ(e2.data, "two\nlines");
    auto e3 = reader.next().value();
    EXPECT_EQ(e3.data, "last");
    EXPECT_EQ(e3.id, "44");
    auto end = reader.next();
    ASSERT_FALSE(end.ok());
    EXPECT_TRUE(end.error().is(ENODATA)) << end.error().message();
    EXPECT_EQ(reader.parser().comments(), 1u);
  });
  EXPECT_EQ(sends.load(), 1u) << "the head and the first turn's events should leave in one send";
}

TEST_P(SseHttpTest, TickerBytesOnTheWire) {
  http::Router router;
  router.get("/stream", [](http::Request& req, http::ResponseWriter& w) {
    SseStream s(req, w);
    for (int i = 1; i <= 3; ++i) {
      (void)s.send({.data = "tick " + std::to_string(i), .id = std::to_string(i)});
      (void)this_fiber::sleep_for(2ms, s.token());
    }
  });
  start(std::move(router));
  run_main([&] {
    http::Client client;
    auto r = client.get(address(), "/stream");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->read_all().value(), "id: 1\ndata: tick 1\n\nid: 2\ndata: tick 2\n\nid: 3\ndata: tick 3\n\n");
  });
}

TEST_P(SseHttpTest, ClientThatVanishesCancelsTheHandlerAtOnce) {
  fiber::Event handler_done;
  std::atomic<int> sleep_error{0};
  std::atomic<std::int64_t> waited_ms{-1};
  std::atomic<bool> hung_up{false};
  http::Router router;
  router.get("/wait", [&](http::Request& req, http::ResponseWriter& w) {
    {
      SseStream s(req, w);
      (void)s.send({.data = "first"});
      const std::int64_t t0 = reactor::now_ns();
      auto r = this_fiber::sleep_for(10s, s.token());
      waited_ms = (reactor::now_ns() - t0) / 1'000'000;
      sleep_error = r.ok() ? 0 : r.error().errnum();
      hung_up = s.hung_up();
    }
    handler_done.set();
  });
  start(std::move(router));
  run_main([&] {
    {
      http::Client client;
      auto r = client.get(address(), "/wait");
      ASSERT_TRUE(r.ok()) << r.error().message();
      SseReader reader(*r);
      EXPECT_EQ(reader.next().value().data, "first");
      this_fiber::sleep_for(10ms);
    }  // the response and the client go: the connection closes mid-stream
    ASSERT_TRUE(handler_done.wait(CancelToken().with_timeout(5s)).ok());
  });
  EXPECT_EQ(sleep_error.load(), ECANCELED);
  EXPECT_GE(waited_ms.load(), 0);
  EXPECT_LT(waited_ms.load(), 1000);
  EXPECT_TRUE(hung_up.load());
}

TEST_P(SseHttpTest, ManyStreamsInterleaved) {
  http::Router router;
  router.get("/n", [](http::Request& req, http::ResponseWriter& w) {
    SseStream s(req, w);
    for (int i = 1; i <= 20; ++i) {
      (void)s.send({.data = std::to_string(i)});
      (void)this_fiber::sleep_for(1ms, s.token());
    }
  });
  start(std::move(router));
  run_main([&] {
    http::Client client;
    fiber::WaitGroup wg;
    std::atomic<int> total{0};
    for (int k = 0; k < 20; ++k) {
      wg.add(1);
      go([&] {
        auto r = client.get(address(), "/n");
        if (r) {
          SseReader reader(*r);
          int n = 0;
          (void)reader.for_each([&](const ParsedEvent& e) {
            EXPECT_EQ(e.data, std::to_string(++n));
            return true;
          });
          total += n;
        }
        wg.done();
      });
    }
    ASSERT_TRUE(wg.wait().ok());
    EXPECT_EQ(total.load(), 400);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, SseHttpTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net::sse
