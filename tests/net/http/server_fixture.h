// The fixture of the http::Server tests: a server on a LoopGroup of one loop
// of the test's backend, with routes that exercise every feature, and small
// limits and timeouts so that the limit tests stay fast.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "fiber/fiber.h"
#include "net/http/server.h"
#include "tests/fiber/fiber_fixture.h"
#include "tests/net/http/server_test_util.h"

namespace ringo::net::http::testing {

using namespace std::chrono_literals;

inline constexpr std::string_view kGet = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

class HttpServerTest : public fiber::testing::FiberLoopTest {
 protected:
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    if (group_) group_->stop();
    group_.reset();
    FiberLoopTest::TearDown();
  }

  // Starts the server with the test routes (or `router`) and `limits`.
  void start(HttpLimits limits = test_limits()) { start_with(limits, routes()); }
  void start_with(HttpLimits limits, Router router) {
    group_ = start_group(1);
    ASSERT_TRUE(group_);
    ServerOptions options;
    options.tcp.address = sys::SockAddr::ipv4_loopback(0);
    options.limits = limits;
    options.read_buffer_bytes = 1024;
    auto s = Server::start(*group_, options, std::move(router));
    ASSERT_TRUE(s.ok()) << s.error().message();
    server_ = std::move(*s);
  }

  static HttpLimits test_limits() {
    HttpLimits l;
    l.max_head_bytes = 2048;
    l.max_headers = 10;
    l.max_body_bytes = 4096;
    l.header_timeout = 2s;
    l.body_timeout = 2s;
    l.idle_timeout = 5s;
    l.write_timeout = 2s;
    l.linger_timeout = 500ms;
    return l;
  }

  Router routes() {
    Router r;
    r.get("/plaintext", [](Request&, ResponseWriter& w) { w.send(200, "text/plain", "Hello, World!"); });
    r.get("/path/{rest...}", [](Request& req, ResponseWriter& w) { w.send(200, "text/plain", req.path()); });
    r.post("/echo", [](Request& req, ResponseWriter& w) { w.send(200, "application/octet-stream", req.body()); });
    r.get("/v1/models/{id}", [](Request& req, ResponseWriter& w) {
      w.set_header("X-Query", req.query_param("q").value_or("-"));
      w.send(200, "text/plain", req.param("id"));
    });
    r.get("/header", [](Request& req, ResponseWriter& w) {
      w.send(200, "text/plain", req.header("x-test").value_or("none"));
    });
    r.get("/fields", [](Request&, ResponseWriter& w) {
      w.set_header("X-A", "1");
      w.set_header("x-a", "2");  // replaces, whatever the case
      w.add_header("Set-Cookie", "a=1");
      w.add_header("Set-Cookie", "b=2");
      w.set_header("X-Bad", "v\r\nInjected: 1");  // dropped
      w.set_header("Content-Length", "999");       // the server's own
      w.set_status(201);
      w.write("ab");
      w.write("cd");
    });
    r.get("/throw", [](Request&, ResponseWriter&) -> void { throw std::runtime_error("boom"); });
    r.get("/close", [](Request&, ResponseWriter& w) {
      w.close_connection();
      w.send(200, "text/plain", "bye");
    });
    r.get("/hijack", [](Request&, ResponseWriter& w) {
      w.set_header("Content-Type", "text/event-stream");
      TcpStream& s = w.hijack();
      (void)s.write_all(w.stream_head());
      (void)s.write_all(std::string_view("data: one\n\n"));
      (void)s.write_all(std::string_view("data: two\n\n"));
    });
    r.get("/big", [](Request&, ResponseWriter& w) { w.send(200, "text/plain", std::string(64 << 20, 'z')); });
    r.get("/wait", [this](Request& req, ResponseWriter& w) {
      waiting_.store(true);
      auto r2 = this_fiber::sleep_for(10s, req.token());
      wait_result_.store(r2 ? 0 : r2.error().errnum());
      w.send(200, "text/plain", "waited");
    });
    r.get("/watch", [this](Request&, ResponseWriter& w) {
      const CancelToken& t = w.watch_hangup();
      waiting_.store(true);
      auto r2 = this_fiber::sleep_for(10s, t);
      wait_result_.store(r2 ? 0 : r2.error().errnum());
      hung_up_.store(w.hung_up());
      w.send(200, "text/plain", "watched");
    });
    return r;
  }

  std::uint16_t port() const { return server_->port(); }
  // Waits (up to 5 s) for the server to have no open connections.
  // (Only once the connections were accepted: count requests first.)
  bool connections_drain() {
    for (int i = 0; i < 500; ++i) {
      if (server_->stats().tcp.active == 0) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  bool wait_for(const std::atomic<bool>& flag) {
    for (int i = 0; i < 500 && !flag.load(); ++i) std::this_thread::sleep_for(10ms);
    return flag.load();
  }

  std::unique_ptr<reactor::LoopGroup> group_;
  std::unique_ptr<Server> server_;
  std::atomic<bool> waiting_{false};
  std::atomic<int> wait_result_{-1};
  std::atomic<bool> hung_up_{false};
};

}  // namespace ringo::net::http::testing
