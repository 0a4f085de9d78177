// Fiber I/O (fiber/io.h) on both backends: echo over loopback TCP between
// fibers, pipes, writev, poll, connect errors; and for every blocking call
// (accept, connect, read, recv, write, send, writev, poll) cancellation from
// another fiber and from a plain thread, deadlines (lower bounds only: the
// test machines are busy), tokens that are already cancelled or expired
// (nothing submitted, no park), the fiber's inherited token, and a
// cancellation racing a completion (the data is returned, never dropped).
// After each cancelled call the backend holds no operation; the fd listener
// (tests/support) checks that nothing leaks.
#include "fiber/io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fiber/cancel.h"
#include "reactor/clock.h"
#include "syscall/events.h"
#include "syscall/io.h"
#include "syscall/socket.h"
#include "tests/fiber/fiber_fixture.h"
#include "tests/reactor/backend_test_util.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;
using reactor::testing::listener_on;
using reactor::testing::must;
using reactor::testing::put;
using reactor::testing::tcp_pair;
using ::testing::HasSubstr;

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// `n` bytes that a shifted or reordered copy would not match.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

template <class T>
int errno_of(const sys::Result<T>& r) {
  return r.ok() ? 0 : r.error().errnum();
}

std::chrono::nanoseconds since(std::int64_t t0) { return std::chrono::nanoseconds(reactor::now_ns() - t0); }

// Writes into non-blocking `fd` until it is full and stays full: a later
// write or send of any size waits. Loopback ACKs may free socket space a
// moment after EAGAIN, hence the wait and the retry.
void fill(int fd) {
  std::vector<std::byte> chunk(1 << 16);
  for (;;) {
    sys::Result<std::size_t> n = sys::write(fd, chunk);
    while (n) n = sys::write(fd, chunk);
    if (!n.error().is(EAGAIN)) throw std::runtime_error(n.error().message());
    pollfd p{fd, POLLOUT, 0};
    (void)::poll(&p, 1, 10);
    if (n = sys::write(fd, std::span(chunk).first(1)); !n && n.error().is(EAGAIN)) return;
  }
}

// A loopback pair whose client side is full (small buffers, the server never reads).
reactor::testing::TcpPair full_tcp_pair() {
  auto p = tcp_pair();
  const int small = 4096;
  ::setsockopt(p.client.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(p.server.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  fill(p.client.get());
  return p;
}

// ---- one blocking situation per call

enum class Call { accept, connect, read, recv, write, send, writev, poll };
constexpr Call kAllCalls[] = {Call::accept, Call::connect, Call::read,   Call::recv,
                              Call::write,  Call::send,    Call::writev, Call::poll};

const char* name_of(Call c) {
  switch (c) {
    case Call::accept: return "accept";
    case Call::connect: return "connect";
    case Call::read: return "read";
    case Call::recv: return "recv";
    case Call::write: return "write";
    case Call::send: return "send";
    case Call::writev: return "writev";
    case Call::poll: return "poll";
  }
  return "?";
}

// Descriptors on which one call waits until its token fires, and the call
// (returning its errno, 0 on success). Heap-allocated: `call` points into it.
struct Blocked {
  std::vector<sys::Fd> fds;
  std::vector<std::byte> buf = std::vector<std::byte>(4096);
  std::array<iovec, 2> iov{};
  sys::SockAddr target;
  std::function<int(const CancelToken&)> call;
};

std::unique_ptr<Blocked> blocked(Call c) {
  auto b = std::make_unique<Blocked>();
  Blocked& s = *b;
  const std::span<std::byte> buf(s.buf);
  switch (c) {
    case Call::accept: {
      s.fds.push_back(listener_on(sys::SockAddr::ipv4_loopback(0)));
      s.call = [&s](const CancelToken& t) { return errno_of(io::accept(s.fds[0].get(), t)); };
      break;
    }
    case Call::connect: {
      // Backlog 0 holds one connection, never accepted: the accept queue is
      // full, so the kernel drops the next SYN (and retries only after 1 s).
      s.fds.push_back(listener_on(sys::SockAddr::ipv4_loopback(0), 0));
      s.target = must(sys::getsockname(s.fds[0].get()));
      s.fds.push_back(must(sys::socket(AF_INET, SOCK_STREAM)));
      must(sys::connect(s.fds[1].get(), s.target));
      pollfd queued{s.fds[0].get(), POLLIN, 0};  // until the handshake's last ACK queued it
      if (::poll(&queued, 1, 2000) != 1) throw std::runtime_error("the first connection never queued");
      s.fds.push_back(must(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK)));
      s.call = [&s](const CancelToken& t) { return errno_of(io::connect(s.fds[2].get(), s.target, t)); };
      break;
    }
    case Call::read:
    case Call::poll:
    case Call::write: {
      sys::Pipe p = must(sys::pipe2());
      if (c == Call::write) fill(p.write.get());
      s.fds.push_back(std::move(p.read));
      s.fds.push_back(std::move(p.write));
      const int rd = s.fds[0].get(), wr = s.fds[1].get();
      if (c == Call::read) s.call = [rd, buf](const CancelToken& t) { return errno_of(io::read(rd, buf, t)); };
      if (c == Call::poll) s.call = [rd](const CancelToken& t) { return errno_of(io::poll(rd, POLLIN, t)); };
      if (c == Call::write) s.call = [wr, buf](const CancelToken& t) { return errno_of(io::write(wr, buf, t)); };
      break;
    }
    case Call::recv: {
      auto p = tcp_pair();
      s.fds.push_back(std::move(p.server));
      s.fds.push_back(std::move(p.client));
      s.call = [fd = s.fds[0].get(), buf](const CancelToken& t) { return errno_of(io::recv(fd, buf, t)); };
      break;
    }
    case Call::send:
    case Call::writev: {
      auto p = full_tcp_pair();
      s.fds.push_back(std::move(p.client));
      s.fds.push_back(std::move(p.server));
      s.iov = {iovec{s.buf.data(), 2048}, iovec{s.buf.data() + 2048, 2048}};
      const int fd = s.fds[0].get();
      if (c == Call::send) s.call = [fd, buf](const CancelToken& t) { return errno_of(io::send(fd, buf, t)); };
      if (c == Call::writev) s.call = [fd, &s](const CancelToken& t) { return errno_of(io::writev(fd, s.iov, t)); };
      break;
    }
  }
  return b;
}

class IoTest : public fiber::testing::FiberLoopTest {
 protected:
  void TearDown() override {
    if (loop_) {
      EXPECT_EQ(in_flight(), 0u) << "operations left in flight";
    }
    FiberLoopTest::TearDown();
  }
  std::size_t in_flight() const { return loop_->backend().in_flight(); }

  // Runs `fn(call, situation)` for every blocking call, each in a fresh situation.
  template <class F>
  void for_each_call(F&& fn) {
    for (Call c : kAllCalls) {
      SCOPED_TRACE(name_of(c));
      std::unique_ptr<Blocked> b = blocked(c);
      fn(c, *b);
      EXPECT_EQ(in_flight(), 0u) << "an operation outlived its call";
    }
  }
};

// ---- plain use

TEST_P(IoTest, EchoOverLoopbackTcpBetweenFibers) {
  run_main([] {
    sys::Fd listener = listener_on(sys::SockAddr::ipv4_loopback(0));
    const sys::SockAddr where = must(sys::getsockname(listener.get()));
    constexpr int kClients = 4;
    auto server = go([&] {
      std::vector<JoinHandle<std::size_t>> handlers;
      for (int i = 0; i < kClients; ++i) {
        sys::SockAddr peer;
        sys::Fd conn = must(io::accept(listener.get(), &peer));
        EXPECT_EQ(peer.to_string().rfind("127.0.0.1:", 0), 0u) << peer.to_string();
        handlers.push_back(go([conn = std::move(conn)] {
          std::vector<std::byte> buf(16384);
          std::size_t echoed = 0;
          while (const std::size_t n = must(io::recv(conn.get(), buf))) {
            must(io::send_all(conn.get(), std::span(buf).first(n)));
            echoed += n;
          }
          return echoed;
        }));
      }
      std::size_t total = 0;
      for (auto& h : handlers) total += h.join();
      return total;
    }, {.name = "echo-server"});

    const std::string message = pattern(256 * 1024);  // many partial sends and recvs
    std::vector<JoinHandle<std::string>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(go([&] {
        sys::Fd fd = must(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK));
        must(io::connect(fd.get(), where));
        auto writer = go([&] {  // one writer and one reader per socket
          must(io::send_all(fd.get(), bytes_of(message)));
          must(sys::shutdown(fd.get(), SHUT_WR));
        });
        std::string got;
        std::vector<std::byte> buf(65536);
        while (const std::size_t n = must(io::recv(fd.get(), buf))) got += text_of(std::span(buf).first(n));
        writer.join();
        return got;
      }));
    }
    for (auto& c : clients) {
      EXPECT_TRUE(c.join() == message) << "echo differs";
    }
    EXPECT_EQ(server.join(), kClients * message.size());
  });
}

TEST_P(IoTest, ReadAndWriteThroughAPipe) {
  run_main([] {
    sys::Pipe p = must(sys::pipe2());
    const std::string data = pattern(256 * 1024);  // four pipes' worth: the writer parks
    auto writer = go([&] {
      must(io::write_all(p.write.get(), bytes_of(data)));
      p.write.reset();  // end of file for the reader
    });
    std::string got;
    std::array<std::byte, 4096> buf;
    while (const std::size_t n = must(io::read(p.read.get(), buf))) got += text_of(std::span(buf).first(n));
    writer.join();
    EXPECT_TRUE(got == data) << "got " << got.size() << " bytes";
  });
}

TEST_P(IoTest, WritevSendsTheIovecsInOrder) {
  run_main([] {
    auto p = tcp_pair();
    const std::string_view parts[] = {"hello, ", "fibered ", "world"};
    std::array<iovec, 3> iov;
    for (std::size_t i = 0; i < iov.size(); ++i) iov[i] = {const_cast<char*>(parts[i].data()), parts[i].size()};
    EXPECT_EQ(must(io::writev(p.client.get(), iov)), 20u);
    std::string got;
    std::array<std::byte, 64> buf;
    while (got.size() < 20) got += text_of(std::span(buf).first(must(io::recv(p.server.get(), buf))));
    EXPECT_EQ(got, "hello, fibered world");
  });
}

TEST_P(IoTest, PollWaitsForReadinessAndReturnsTheRevents) {
  run_main([] {
    sys::Pipe p = must(sys::pipe2());
    EXPECT_EQ(must(io::poll(p.write.get(), POLLOUT)) & POLLOUT, static_cast<std::uint32_t>(POLLOUT));
    auto writer = go([&] {
      this_fiber::sleep_for(5ms);
      put(p.write.get(), "x");
    });
    const std::int64_t t0 = reactor::now_ns();
    EXPECT_EQ(must(io::poll(p.read.get(), POLLIN)), static_cast<std::uint32_t>(POLLIN));
    EXPECT_GE(since(t0), 5ms);
    writer.join();
    p.write.reset();
    std::array<std::byte, 4> buf;
    EXPECT_EQ(must(io::read(p.read.get(), buf)), 1u);
    EXPECT_NE(must(io::poll(p.read.get(), POLLIN)) & POLLHUP, 0u);  // the writer is gone
  });
}

TEST_P(IoTest, ConnectToAClosedPortReturnsEconnrefused) {
  run_main([] {
    // Bound but not listening: the port answers SYN with RST, and stays ours.
    sys::Fd bound = must(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK));
    must(sys::bind(bound.get(), sys::SockAddr::ipv4_loopback(0)));
    sys::Fd client = must(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK));
    const sys::Result<void> r = io::connect(client.get(), must(sys::getsockname(bound.get())));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ECONNREFUSED));
    EXPECT_THAT(r.error().message(), HasSubstr("connect: ECONNREFUSED"));
  });
}

// ---- cancellation and deadlines, for every blocking call

TEST_P(IoTest, CancelFromAnotherFiberEndsEachCallWithEcanceled) {
  run_main([this] {
    for_each_call([&](Call c, Blocked& b) {
      CancelSource source;
      auto h = go([&] { return b.call(source.token()); }, {.name = "blocked"});
      this_fiber::sleep_for(5ms);  // it parks
      EXPECT_THAT(fiber_dump(), HasSubstr(std::string("[parked: io ") + name_of(c) + ","));
      source.cancel();
      EXPECT_EQ(h.join(), ECANCELED);
    });
  });
}

TEST_P(IoTest, CancelFromAPlainThreadEndsEachCallWithEcanceled) {
  run_main([this] {
    for_each_call([&](Call, Blocked& b) {
      CancelSource source;
      const std::int64_t t0 = reactor::now_ns();
      std::thread canceller([&] {
        std::this_thread::sleep_for(10ms);
        source.cancel();
      });
      EXPECT_EQ(b.call(source.token()), ECANCELED);
      EXPECT_GE(since(t0), 10ms);
      canceller.join();
    });
  });
}

TEST_P(IoTest, DeadlineEndsEachCallWithEtimedout) {
  run_main([this] {
    for_each_call([&](Call, Blocked& b) {
      const std::int64_t t0 = reactor::now_ns();
      EXPECT_EQ(b.call(CancelToken().with_timeout(20ms)), ETIMEDOUT);
      EXPECT_GE(since(t0), 20ms);
    });
  });
}

TEST_P(IoTest, CancelledOrExpiredTokenReturnsAtOnceWithoutSubmitting) {
  run_main([this] {
    for_each_call([&](Call, Blocked& b) {
      CancelSource source;
      source.cancel();
      const std::uint64_t switches = this_fiber::current().switches();
      EXPECT_EQ(b.call(source.token()), ECANCELED);
      EXPECT_EQ(b.call(CancelToken().with_deadline_ns(reactor::now_ns() - 1)), ETIMEDOUT);
      EXPECT_EQ(b.call(CancelToken().with_timeout(0ns)), ETIMEDOUT);
      EXPECT_EQ(b.call(source.token().with_timeout(0ns)), ECANCELED);  // cancelled ranks first
      EXPECT_EQ(in_flight(), 0u);
      EXPECT_EQ(this_fiber::current().switches(), switches) << "the fiber parked";
    });
  });
}

TEST_P(IoTest, ErrorsCausedByTheTokenSaySo) {
  run_main([] {
    sys::Pipe p = must(sys::pipe2());
    std::array<std::byte, 8> buf;
    CancelSource source;
    auto reader = go([&] { return io::read(p.read.get(), buf, source.token().with_timeout(20ms)); });
    sys::Result<std::size_t> timed_out = reader.join();
    ASSERT_FALSE(timed_out.ok());
    EXPECT_THAT(timed_out.error().message(), HasSubstr("read: ETIMEDOUT"));
    EXPECT_THAT(timed_out.error().message(), HasSubstr("deadline passed"));

    reader = go([&] { return io::read(p.read.get(), buf, source.token()); });
    this_fiber::sleep_for(2ms);
    source.cancel();
    sys::Result<std::size_t> cancelled = reader.join();
    ASSERT_FALSE(cancelled.ok());
    EXPECT_THAT(cancelled.error().message(), HasSubstr("read: ECANCELED"));
    EXPECT_THAT(cancelled.error().message(), HasSubstr("cancelled by its token"));
  });
}

TEST_P(IoTest, TheFibersInheritedTokenBoundsItsIo) {
  run_main([] {
    sys::Pipe p = must(sys::pipe2());
    CancelSource request;
    // The child's token, and through it the grandchild's (spawned with defaults).
    auto child = go([&] {
      auto grandchild = go([&] {
        std::array<std::byte, 8> buf;
        return errno_of(io::read(p.read.get(), buf));  // this_fiber::token()
      }, {.name = "grandchild"});
      return grandchild.join();
    }, {.name = "child", .token = request.token()});
    this_fiber::sleep_for(5ms);
    EXPECT_THAT(fiber_dump(), HasSubstr("\"grandchild\" [parked: io read,"));
    request.cancel();
    EXPECT_EQ(child.join(), ECANCELED);

    // A deadline set on the running fiber's token applies to its next calls.
    auto timed = go([&] {
      this_fiber::set_token(this_fiber::token().with_timeout(20ms));
      return errno_of(io::poll(p.read.get(), POLLIN));
    });
    EXPECT_EQ(timed.join(), ETIMEDOUT);
  });
}

TEST_P(IoTest, ADeadlineCenturiesAwayIsNoDeadline) {
  run_main([] {
    sys::Pipe p = must(sys::pipe2());
    put(p.write.get(), "x");
    std::array<std::byte, 4> buf;
    // Added to the backend's clock, it would overflow into the past.
    EXPECT_EQ(must(io::read(p.read.get(), buf, CancelToken().with_deadline_ns(CancelToken::kNoDeadline - 1))), 1u);
  });
}

// ---- a cancellation racing a completion: the result wins

TEST_P(IoTest, DataThatCompletesAsTheCancelArrivesIsReturned) {
  run_main([this] {
    sys::Pipe p = must(sys::pipe2());
    CancelSource source;
    // A timer writes and cancels in one go, on the loop's thread: the fiber is
    // poked (queued) in the timer phase, and the read completes in the same
    // turn's I/O phase, before the fiber runs and could cancel it.
    struct Race {
      int fd;
      CancelSource* source;
    } race{p.write.get(), &source};
    reactor::Timer timer;
    timer.user = &race;
    timer.deadline_ns = reactor::now_ns() + 5'000'000;
    timer.on_fire = [](reactor::Timer& t) {
      Race& r = *static_cast<Race*>(t.user);
      put(r.fd, "raced");
      r.source->cancel();
    };
    loop_->add_timer(timer);
    std::array<std::byte, 16> buf;
    const sys::Result<std::size_t> n = io::read(p.read.get(), buf, source.token());
    ASSERT_TRUE(n.ok()) << n.error().message();
    EXPECT_EQ(text_of(std::span(buf).first(*n)), "raced");
    EXPECT_TRUE(source.cancelled());
    EXPECT_EQ(errno_of(io::read(p.read.get(), buf, source.token())), ECANCELED);  // seen at the next call
    if (timer.armed()) loop_->cancel_timer(timer);
  });
}

TEST_P(IoTest, DataSentBeforeAThreadsCancelIsReturned) {
  run_main([] {
    sys::SocketPair pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
    CancelSource source;
    // AF_UNIX delivers within write(2), and the cancel's poke reaches the loop
    // through its inbox, whose drain precedes the I/O phase of the same turn.
    std::thread peer([&] {
      std::this_thread::sleep_for(5ms);
      put(pair.second.get(), "raced");
      source.cancel();
    });
    std::array<std::byte, 16> buf;
    const sys::Result<std::size_t> n = io::recv(pair.first.get(), buf, source.token());
    peer.join();
    ASSERT_TRUE(n.ok()) << n.error().message();
    EXPECT_EQ(text_of(std::span(buf).first(*n)), "raced");
  });
}

TEST_P(IoTest, AConnectionRacingTheCancelIsNeverLost) {
  run_main([this] {
    sys::Fd listener = listener_on(sys::SockAddr::ipv4_loopback(0));
    CancelSource source;
    sys::Fd client = must(sys::socket(AF_INET, SOCK_STREAM));
    struct Race {
      int fd;
      sys::SockAddr to;
      CancelSource* source;
    } race{client.get(), must(sys::getsockname(listener.get())), &source};
    reactor::Timer timer;
    timer.user = &race;
    timer.deadline_ns = reactor::now_ns() + 5'000'000;
    timer.on_fire = [](reactor::Timer& t) {
      Race& r = *static_cast<Race*>(t.user);
      must(sys::connect(r.fd, r.to));
      r.source->cancel();
    };
    loop_->add_timer(timer);
    sys::Result<sys::Fd> conn = io::accept(listener.get(), source.token());
    if (timer.armed()) loop_->cancel_timer(timer);
    if (!conn.ok()) {
      // The handshake's last ACK came too late for this turn: the connection
      // must still be waiting in the listener's queue.
      EXPECT_TRUE(conn.error().is(ECANCELED)) << conn.error().message();
      pollfd queued{listener.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&queued, 1, 2000), 1);
      conn = must(sys::accept4(listener.get(), nullptr));
    }
    EXPECT_TRUE(conn->valid());
    EXPECT_EQ(must(sys::getpeername(conn->get())).port(), must(sys::getsockname(client.get())).port());
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, IoTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

// ---- outside a fiber

TEST(IoDeathTest, ACallOutsideAFiberAbortsNamingIt) {
  sys::Pipe p = must(sys::pipe2());
  std::array<std::byte, 8> buf;
  EXPECT_DEATH((void)io::read(p.read.get(), buf), "io::read\\(\\) called outside a fiber");
}

}  // namespace
}  // namespace ringo
