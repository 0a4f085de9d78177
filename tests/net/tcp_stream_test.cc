// TcpListener, TcpStream, BufferedReader/Writer and HangupWatch on one loop of
// each backend: both ends of every connection are fibers of the test's loop.
#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo::net {
namespace {

using namespace std::chrono_literals;

class TcpStreamTest : public fiber::testing::FiberLoopTest {};

struct Pair {
  TcpStream client;
  TcpStream server;
};

// A connected pair through a real listener (in a fiber).
Pair connected_pair(TcpListener& l) {
  auto addr = l.local_address().value();
  auto accepted = go([&l] { return l.accept().value(); });
  Pair p;
  p.client = TcpStream::connect(addr).value();
  p.server = accepted.join();
  return p;
}

TEST_P(TcpStreamTest, ConnectAcceptAndEchoBothWays) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    ASSERT_TRUE(p.client.write_all("hello").ok());
    std::byte buf[16];
    auto n = p.server.read(buf).value();
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "hello");
    ASSERT_TRUE(p.server.write_all("back").ok());
    n = p.client.read(buf).value();
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "back");
    EXPECT_EQ(p.client.peer_address().value().port(), l.local_address().value().port());
    ASSERT_TRUE(p.client.shutdown_write().ok());
    EXPECT_EQ(p.server.read(buf).value(), 0u);  // end of stream
  });
}

TEST_P(TcpStreamTest, ConnectionsArrivingBeforeAcceptAreQueuedNotLost) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    auto addr = l.local_address().value();
    std::vector<TcpStream> clients;
    for (int i = 0; i < 5; ++i) clients.push_back(TcpStream::connect(addr).value());
    // The first accept arms the multishot operation, which may hand over all
    // five at once; the rest must come from the queue.
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(l.accept(CancelToken().with_timeout(2s)).ok()) << i;
    auto none = l.accept(CancelToken().with_timeout(20ms));
    ASSERT_FALSE(none.ok());
    EXPECT_TRUE(none.error().is(ETIMEDOUT)) << none.error().message();
  });
}

TEST_P(TcpStreamTest, AcceptIsCancelledByItsToken) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    CancelSource source;
    auto waiter = go([&] { return l.accept(source.token()); });
    this_fiber::sleep_for(5ms);
    source.cancel();
    auto r = waiter.join();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ECANCELED)) << r.error().message();
  });
}

TEST_P(TcpStreamTest, SingleShotListenerAcceptsToo) {
  run_main([] {
    ListenOptions o;
    o.multishot = false;
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0), o).value();
    Pair p = connected_pair(l);
    ASSERT_TRUE(p.client.write_all("x").ok());
    std::byte b[1];
    EXPECT_EQ(p.server.read(b).value(), 1u);
  });
}

TEST_P(TcpStreamTest, ReadTimesOutAtTheTokensDeadline) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    std::byte b[8];
    auto r = p.server.read(b, CancelToken().with_timeout(20ms));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ETIMEDOUT)) << r.error().message();
  });
}

TEST_P(TcpStreamTest, WritevAllSendsEveryByteInOrderPastIovMax) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    // 3,000 iovecs of 1 KiB: more than IOV_MAX, and more than a socket buffer
    // holds, so writes are partial and sliced.
    std::vector<std::string> parts;
    std::vector<iovec> iov;
    for (int i = 0; i < 3000; ++i) parts.push_back(std::string(1024, static_cast<char>('a' + i % 26)));
    for (auto& s : parts) iov.push_back({s.data(), s.size()});
    auto reader = go([&p] {
      std::string got;
      std::byte buf[64 * 1024];
      while (got.size() < 3000u * 1024) {
        auto n = p.server.read(buf).value();
        if (n == 0) break;
        got.append(reinterpret_cast<char*>(buf), n);
      }
      return got;
    });
    ASSERT_TRUE(p.client.writev_all(iov).ok());
    std::string got = reader.join();
    ASSERT_EQ(got.size(), 3000u * 1024);
    for (int i = 0; i < 3000; ++i) ASSERT_EQ(got[i * 1024], 'a' + i % 26) << i;
  });
}

TEST_P(TcpStreamTest, BufferedReaderLinesExactAndLimits) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    ASSERT_TRUE(p.client.write_all("one\r\ntwo\nabcdef").ok());
    BufferedReader r(p.server, 16);
    EXPECT_EQ(r.read_line().value(), "one");
    EXPECT_EQ(r.read_line().value(), "two");
    std::byte six[6];
    ASSERT_TRUE(r.read_exact(six).ok());
    EXPECT_EQ(std::string(reinterpret_cast<char*>(six), 6), "abcdef");
    // A line longer than the buffer: EMSGSIZE, never growth.
    ASSERT_TRUE(p.client.write_all(std::string(40, 'x') + "\n").ok());
    auto too_long = r.read_line();
    ASSERT_FALSE(too_long.ok());
    EXPECT_TRUE(too_long.error().is(EMSGSIZE)) << too_long.error().message();
    p.client.close();
    BufferedReader r2(p.server, 64);
    auto rest = r2.read_line();  // the 40 x's that were left, then the end
    ASSERT_TRUE(rest.ok() || rest.error().is(ENODATA));
  });
}

TEST_P(TcpStreamTest, BufferedWriterGathersSmallWrites) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    BufferedWriter w(p.client, 64);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(w.write("abc").ok());
    EXPECT_EQ(w.buffered(), 30u);
    std::byte b[256];
    EXPECT_FALSE(p.server.read(b, CancelToken().with_timeout(10ms)).ok());  // nothing sent yet
    ASSERT_TRUE(w.write(std::string(100, 'z')).ok());  // overflows: flush, then the big one directly
    EXPECT_EQ(w.buffered(), 0u);
    std::string got;
    while (got.size() < 130) {
      auto n = p.server.read(b).value();
      got.append(reinterpret_cast<char*>(b), n);
    }
    EXPECT_EQ(got.substr(0, 30), std::string("abc").append("abcabcabcabcabcabcabcabcabc"));
  });
}

TEST_P(TcpStreamTest, HangupWatchCancelsWhileTheFiberWaitsOnSomethingElse) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    CancelSource source;
    auto handler = go([&] {
      HangupWatch watch(p.server, source);
      // Sleeps on the source's token: the hang-up must end it early.
      auto r = this_fiber::sleep_for(10s, source.token());
      return std::make_pair(r.ok() ? 0 : r.error().errnum(), watch.fired());
    });
    this_fiber::sleep_for(5ms);
    p.client.close();
    auto [err, fired] = handler.join();
    EXPECT_EQ(err, ECANCELED);
    EXPECT_TRUE(fired);
  });
}

TEST_P(TcpStreamTest, HangupWatchStaysQuietWhileThePeerSendsAndIsReleased) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    CancelSource source;
    {
      HangupWatch watch(p.server, source);
      ASSERT_TRUE(p.client.write_all("more request bytes").ok());  // readable is not a hang-up
      this_fiber::sleep_for(10ms);
      EXPECT_FALSE(watch.fired());
    }  // cancelled and released here; the stream is readable as before
    EXPECT_FALSE(source.cancelled());
    std::byte b[64];
    EXPECT_EQ(p.server.read(b).value(), 18u);
  });
}

TEST_P(TcpStreamTest, UnsentBytesIsZeroOnAnIdleSocket) {
  run_main([] {
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    Pair p = connected_pair(l);
    EXPECT_EQ(p.client.unsent_bytes().value(), 0);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, TcpStreamTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net
