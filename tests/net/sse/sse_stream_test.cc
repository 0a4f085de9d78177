// SseStream over a raw TCP connection, on both backends: coalescing, the
// slow-reader bound and stall, hang-up cancellation, draining on close.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "fiber/fiber.h"
#include "net/sse/sse_stream.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "reactor/clock.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo::net::sse {
namespace {

using namespace std::chrono_literals;

class SseStreamTest : public fiber::testing::FiberLoopTest {};

struct Pair {
  TcpStream client;
  TcpStream server;
};

Pair connected_pair(const SocketOptions& client_options = {}) {
  auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
  auto addr = l.local_address().value();
  auto accepted = go([&l] { return l.accept().value(); });
  Pair p;
  p.client = TcpStream::connect(addr, this_fiber::token(), client_options).value();
  p.server = accepted.join();
  return p;
}

SocketOptions small_window() {
  SocketOptions o;
  o.receive_buffer = 4096;
  return o;
}

std::string read_some(TcpStream& s, std::size_t max = 1 << 16) {
  std::string buf(max, '\0');
  auto n = s.read(std::as_writable_bytes(std::span(buf.data(), buf.size())), CancelToken().with_timeout(2s));
  EXPECT_TRUE(n.ok()) << n.error().message();
  buf.resize(n.ok() ? *n : 0);
  return buf;
}

TEST_P(SseStreamTest, EventsOfOneTurnLeaveInOneSend) {
  run_main([] {
    Pair p = connected_pair();
    SseStream s(p.server, CancelToken());
    for (int i = 1; i <= 5; ++i) {
      const std::string id = std::to_string(i);
      ASSERT_TRUE(s.send({.data = "tick " + id, .id = id}).ok());
    }
    EXPECT_EQ(s.stats().sends, 0u);  // nothing leaves before the writer moves on
    this_fiber::sleep_for(5ms);
    EXPECT_EQ(s.stats().sends, 1u);
    EXPECT_EQ(s.stats().events, 5u);
    std::string want;
    for (int i = 1; i <= 5; ++i) want += "id: " + std::to_string(i) + "\ndata: tick " + std::to_string(i) + "\n\n";
    EXPECT_EQ(read_some(p.client), want);  // one recv gets all five
    EXPECT_EQ(s.stats().bytes_sent, want.size());

    // A second turn is a second send.
    ASSERT_TRUE(s.send_comment("keep-alive").ok());
    ASSERT_TRUE(s.send_retry(2s).ok());
    this_fiber::sleep_for(5ms);
    EXPECT_EQ(s.stats().sends, 2u);
    EXPECT_EQ(read_some(p.client), ": keep-alive\nretry: 2000\n\n");
  });
}

TEST_P(SseStreamTest, InvalidEventIsRefusedAndTheStreamGoesOn) {
  run_main([] {
    Pair p = connected_pair();
    SseStream s(p.server, CancelToken());
    auto r = s.send({.data = "x", .id = "1\n2"});
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(EINVAL));
    EXPECT_EQ(s.buffered(), 0u);
    ASSERT_TRUE(s.send({.data = "ok"}).ok());
    ASSERT_TRUE(s.drain().ok());
    EXPECT_EQ(read_some(p.client), "data: ok\n\n");
  });
}

TEST_P(SseStreamTest, SlowReaderParksTheWriterWithinTheBoundThenIsDisconnected) {
  run_main([] {
    // A reader that never reads, with a small receive window: the socket
    // fills, TCP_NOTSENT_LOWAT stops the kernel from taking more, the send
    // operation waits for POLLOUT, the stream's buffer fills, send() parks.
    Pair p = connected_pair(small_window());
    StreamOptions o;
    o.notsent_lowat = 4096;
    o.max_buffered = 8192;
    o.stall_timeout = 60ms;
    SseStream s(p.server, CancelToken(), o);
    const std::string payload(1000, 'x');
    int sent = 0;
    int max_unsent = 0;
    sys::Result<void> r;
    const std::int64_t start = reactor::now_ns();
    while ((r = s.send({.data = payload})).ok()) {
      ++sent;
      EXPECT_LE(s.buffered(), o.max_buffered + payload.size() + 8);
      max_unsent = std::max(max_unsent, p.server.unsent_bytes().value_or(0));
      ASSERT_LT(reactor::now_ns() - start, 10'000'000'000) << "never stalled";
    }
    EXPECT_TRUE(r.error().is(ETIMEDOUT)) << r.error().message();
    EXPECT_NE(r.error().message().find("drained nothing"), std::string::npos) << r.error().message();
    EXPECT_GT(s.stats().parks, 0u) << "the writer never parked";
    EXPECT_LE(s.stats().max_buffered, o.max_buffered + payload.size() + 8);
    // The kernel took a bounded amount: the peer's small window plus about
    // the low-water mark (one segment of overshoot), not everything written.
    EXPECT_LT(s.stats().bytes_sent, 512u * 1024) << sent << " events written";
    EXPECT_LT(max_unsent, 256 * 1024);
    RecordProperty("bytes_sent", static_cast<int>(s.stats().bytes_sent));
    RecordProperty("max_unsent", max_unsent);
    RecordProperty("parks", static_cast<int>(s.stats().parks));
    EXPECT_TRUE(s.failed());
    EXPECT_TRUE(s.token().cancelled());  // a handler waiting elsewhere wakes
    // Every later call reports the stall.
    auto again = s.send({.data = "late"});
    ASSERT_FALSE(again.ok());
    EXPECT_TRUE(again.error().is(ETIMEDOUT));
  });
}

TEST_P(SseStreamTest, TrySendSaysEagainWhenFull) {
  run_main([] {
    Pair p = connected_pair(small_window());
    StreamOptions o;
    o.notsent_lowat = 4096;
    o.max_buffered = 4096;
    SseStream s(p.server, CancelToken(), o);
    const std::string payload(1000, 'y');
    sys::Result<void> r;
    for (int i = 0; i < 10'000 && (r = s.try_send({.data = payload})).ok(); ++i) {
      if (i % 4 == 0) this_fiber::sleep_for(1ms);  // let sends go out
    }
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(EAGAIN)) << r.error().message();
    EXPECT_FALSE(s.failed());  // a full buffer is not a failure
    p.client.close();          // the destructor must not wait for the drain
  });
}

TEST_P(SseStreamTest, PeerHangUpCancelsTheTokenWhileTheHandlerSleeps) {
  run_main([] {
    Pair p = connected_pair();
    auto closer = go([&] {
      this_fiber::sleep_for(20ms);
      p.client.close();
    });
    SseStream s(p.server, CancelToken());
    ASSERT_TRUE(s.send({.data = "hello"}).ok());
    const std::int64_t t0 = reactor::now_ns();
    auto slept = this_fiber::sleep_for(10s, s.token());
    const std::int64_t waited_ms = (reactor::now_ns() - t0) / 1'000'000;
    ASSERT_FALSE(slept.ok());
    EXPECT_TRUE(slept.error().is(ECANCELED));
    EXPECT_LT(waited_ms, 2000);
    EXPECT_TRUE(s.hung_up());
    auto r = s.send({.data = "gone"});
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ECANCELED));
    EXPECT_NE(r.error().message().find("hung up"), std::string::npos) << r.error().message();
    closer.join();
  });
}

TEST_P(SseStreamTest, ParentCancellationReachesTheStream) {
  run_main([] {
    Pair p = connected_pair();
    CancelSource request;
    SseStream s(p.server, request.token(), StreamOptions{.watch_hangup = false});
    auto canceller = go([&] {
      this_fiber::sleep_for(5ms);
      request.cancel();
    });
    auto slept = this_fiber::sleep_for(10s, s.token());
    EXPECT_TRUE(!slept.ok() && slept.error().is(ECANCELED));
    canceller.join();
  });
}

TEST_P(SseStreamTest, DestructorSendsWhatIsBuffered) {
  run_main([] {
    Pair p = connected_pair();
    std::string want;
    {
      SseStream s(p.server, CancelToken());
      for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(s.send({.data = std::string(500, 'a' + i % 26)}).ok());
        want += "data: " + std::string(500, 'a' + i % 26) + "\n\n";
      }
    }
    p.server.close();
    std::string got;
    for (;;) {
      std::string piece = read_some(p.client);
      if (piece.empty()) break;
      got += piece;
    }
    EXPECT_EQ(got, want);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, SseStreamTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net::sse
