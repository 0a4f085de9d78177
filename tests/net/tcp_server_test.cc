// TcpServer on a LoopGroup of each backend; clients are fibers of the test's
// own loop (tests/fiber/fiber_fixture.h).
#include <fcntl.h>
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/io.h"
#include "net/tcp_server.h"
#include "syscall/events.h"
#include "syscall/rlimit.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo::net {
namespace {

using namespace std::chrono_literals;

class TcpServerTest : public fiber::testing::FiberLoopTest {};

ServerOptions on_loopback() {
  ServerOptions o;
  o.address = sys::SockAddr::ipv4_loopback(0);
  return o;
}

void echo(TcpStream& conn, const Connection& c) {
  std::byte buf[4096];
  for (;;) {
    auto n = conn.read(buf, c.token());
    if (!n || *n == 0) return;
    if (!conn.write_all(std::span<const std::byte>(buf, *n), c.token())) return;
  }
}

// Sends `text` and reads the same number of bytes back.
std::string round_trip(TcpStream& s, const std::string& text) {
  if (!s.write_all(text)) return "<write failed>";
  std::string got;
  std::byte buf[4096];
  while (got.size() < text.size()) {
    auto n = s.read(buf, CancelToken().with_timeout(5s));
    if (!n || *n == 0) return got + "<ended>";
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  return got;
}

TEST_P(TcpServerTest, EchoesOnEveryLoopOfTheGroup) {
  auto group = start_group(2, true);
  ASSERT_TRUE(group);
  auto server = TcpServer::start(*group, on_loopback(), echo).value();
  const auto addr = server->address();
  run_main([&] {
    std::vector<JoinHandle<std::string>> clients;
    for (int i = 0; i < 40; ++i) {
      clients.push_back(go([addr, i] {
        TcpStream s = TcpStream::connect(addr).value();
        return round_trip(s, "client " + std::to_string(i));
      }));
    }
    for (int i = 0; i < 40; ++i) EXPECT_EQ(clients[i].join(), "client " + std::to_string(i));
  });
  EXPECT_EQ(server->stats().accepted, 40u);
  server->stop();
  EXPECT_EQ(server->stats().active, 0u);
}

TEST_P(TcpServerTest, StopCancelsOpenConnectionsAndWaitsForThem) {
  auto group = start_group(2, true);
  ASSERT_TRUE(group);
  std::atomic<int> cancelled{0};
  auto server = TcpServer::start(*group, on_loopback(),
                                 [&](TcpStream& conn, const Connection&) {
                                   std::byte b[16];
                                   auto n = conn.read(b);  // the fiber's token: the connection's
                                   if (!n && n.error().is(ECANCELED)) cancelled.fetch_add(1);
                                 })
                    .value();
  std::vector<TcpStream> clients;
  run_main([&] {
    for (int i = 0; i < 6; ++i) clients.push_back(TcpStream::connect(server->address()).value());
    while (server->stats().active < 6) this_fiber::sleep_for(1ms);
  });
  server->stop();
  EXPECT_EQ(cancelled.load(), 6);
  EXPECT_EQ(server->stats().active, 0u);
  run_main([&] {
    std::byte b[4];
    for (auto& c : clients) EXPECT_EQ(c.read(b, CancelToken().with_timeout(5s)).value(), 0u);  // closed by the server
  });
}

TEST_P(TcpServerTest, AHandlerThatThrowsClosesItsConnectionOnly) {
  auto group = start_group(1);
  ASSERT_TRUE(group);
  auto server = TcpServer::start(*group, on_loopback(),
                                 [](TcpStream& conn, const Connection& c) {
                                   std::byte b[1];
                                   if (conn.read(b).value_or(0) == 1 && b[0] == std::byte{'!'}) {
                                     throw std::runtime_error("boom");
                                   }
                                   echo(conn, c);
                                 })
                    .value();
  run_main([&] {
    TcpStream bad = TcpStream::connect(server->address()).value();
    ASSERT_TRUE(bad.write_all("!").ok());
    std::byte b[4];
    EXPECT_EQ(bad.read(b, CancelToken().with_timeout(5s)).value(), 0u);
    TcpStream good = TcpStream::connect(server->address()).value();
    ASSERT_TRUE(good.write_all("x").ok());  // the handler's one-byte check reads it
    EXPECT_EQ(round_trip(good, "ok"), "ok");
  });
}

TEST_P(TcpServerTest, PortInUseIsReportedAtStart) {
  auto group = start_group(1);
  ASSERT_TRUE(group);
  ServerOptions o = on_loopback();
  o.listen.reuse_port = false;
  auto first = TcpServer::start(*group, o, echo).value();
  o.address = first->address();
  auto second = TcpServer::start(*group, o, echo);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.error().is(EADDRINUSE)) << second.error().message();
}

// Lowers RLIMIT_NOFILE's soft limit for the scope.
class NofileLimit {
 public:
  explicit NofileLimit(rlim_t soft) : saved_(sys::getrlimit(RLIMIT_NOFILE).value()) {
    EXPECT_TRUE(sys::setrlimit(RLIMIT_NOFILE, {soft, saved_.hard}).ok());
  }
  ~NofileLimit() { restore(); }
  void restore() { (void)sys::setrlimit(RLIMIT_NOFILE, saved_); }

 private:
  sys::Limit saved_;
};

// A soft limit that leaves exactly `room` descriptor numbers free (the
// limit caps numbers, and the free ones may be holes below the highest).
rlim_t limit_leaving(int room) {
  int fd = 0;
  for (int free = 0; free < room; ++fd) {
    if (fcntl(fd, F_GETFD) == -1) ++free;
  }
  return static_cast<rlim_t>(fd);
}

// Number of free descriptor numbers below `limit`.
int room_below(rlim_t limit) {
  int free = 0;
  for (int fd = 0; fd < static_cast<int>(limit); ++fd) {
    if (fcntl(fd, F_GETFD) == -1) ++free;
  }
  return free;
}

// The limit is lowered before the server starts, because io_uring reads
// RLIMIT_NOFILE when the accept is submitted, not when it completes: a
// multishot accept armed earlier keeps the limit of its submission
// (io_accept_prep). Descriptors of the process's own then fill the room up
// to three free numbers; closing them is what lets accepting resume.
TEST_P(TcpServerTest, EmfilePausesAcceptingAndResumesWhenDescriptorsFreeUp) {
  // UBSan's vptr check tests memory with a pipe (IsAccessibleMemoryRange), so
  // with no descriptor free it reports a false "invalid vptr" the first time
  // it meets a type: the error message the server formats on EMFILE is
  // formatted once here, while descriptors are free, so the check's cache
  // knows its types. (No effect outside sanitizer builds.)
  (void)sys::Error("accept", EMFILE).message();
  const rlim_t lowered = limit_leaving(64);
  NofileLimit limit(lowered);
  auto group = start_group(1);
  ASSERT_TRUE(group);
  ServerOptions o = on_loopback();
  o.emfile_backoff = 20ms;
  auto server = TcpServer::start(*group, o, echo).value();
  run_main([&] {
    std::vector<TcpStream> clients;
    for (int i = 0; i < 8; ++i) {
      clients.emplace_back(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP).value());
    }
    std::vector<sys::Fd> filler;
    for (int free = room_below(lowered); free > 3; --free) filler.push_back(sys::eventfd().value());
    ASSERT_GE(filler.size(), 8u);  // enough to free for the five left waiting
    for (auto& c : clients) ASSERT_TRUE(io::connect(c.fd(), server->address()).ok());
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (server->stats().accept_pauses == 0 && std::chrono::steady_clock::now() < give_up) {
      this_fiber::sleep_for(1ms);
    }
    ASSERT_GT(server->stats().accept_pauses, 0u) << "accepted " << server->stats().accepted << " without EMFILE";
    const auto accepted_while_limited = server->stats().accepted;
    EXPECT_LT(accepted_while_limited, 8u);
    this_fiber::sleep_for(60ms);  // a few backoffs: still paused, not spinning
    EXPECT_EQ(server->stats().accepted, accepted_while_limited);
    EXPECT_LT(server->stats().accept_pauses, 20u);
    filler.clear();  // descriptors free up; the soft limit stays lowered
    for (int i = 0; i < 8; ++i) EXPECT_EQ(round_trip(clients[i], "hi" + std::to_string(i)), "hi" + std::to_string(i));
  });
  EXPECT_EQ(server->stats().accepted, 8u);
}

TEST_P(TcpServerTest, MaxConnectionsHoldsTheRestInTheBacklog) {
  auto group = start_group(1);
  ASSERT_TRUE(group);
  ServerOptions o = on_loopback();
  o.max_connections = 2;
  o.emfile_backoff = 1000ms;
  auto server = TcpServer::start(*group, o, echo).value();
  run_main([&] {
    std::vector<TcpStream> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(TcpStream::connect(server->address()).value());
    EXPECT_EQ(round_trip(clients[0], "a"), "a");
    EXPECT_EQ(round_trip(clients[1], "b"), "b");
    this_fiber::sleep_for(20ms);
    EXPECT_EQ(server->stats().active, 2u);
    clients[0].close();  // frees a slot: accepting resumes at once, not after the 1 s backoff
    EXPECT_EQ(round_trip(clients[2], "c"), "c");
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, TcpServerTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net
