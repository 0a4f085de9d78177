// SocketOptions applied to accepted and connected sockets, read back with
// getsockopt: through SocketOptions::verify and option by option.
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "net/socket_options.h"
#include "net/tcp_server.h"
#include "syscall/sockopt.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo::net {
namespace {

using namespace std::chrono_literals;

class SocketOptionsTest : public fiber::testing::FiberLoopTest {};

SocketOptions tuned() {
  SocketOptions o;
  o.tcp_nodelay = true;
  o.notsent_lowat = 16384;
  o.send_buffer = 64 * 1024;
  o.receive_buffer = 128 * 1024;
  o.keepalive = KeepAlive{std::chrono::seconds(30), std::chrono::seconds(5), 4};
  if (geteuid() == 0) {  // both need CAP_NET_ADMIN on some kernels (sockopt.h)
    o.busy_poll = std::chrono::microseconds(50);
    o.prefer_busy_poll = true;
  }
  return o;
}

TEST_P(SocketOptionsTest, EveryAcceptedSocketCarriesTheServerOptions) {
  auto group = start_group(2, true);
  ASSERT_TRUE(group);
  const SocketOptions want = tuned();
  std::atomic<int> verified{0}, checked{0};
  ServerOptions so;
  so.address = sys::SockAddr::ipv4_loopback(0);
  so.listen.accepted = want;
  auto server = TcpServer::start(*group, so, [&](TcpStream& conn, const Connection&) {
                  if (want.verify(conn.fd()).ok()) verified.fetch_add(1);
                  using namespace sys;
                  const int fd = conn.fd();
                  const bool each = get_option(fd, opt::tcp_nodelay).value_or(false) &&
                                    get_option(fd, opt::notsent_lowat).value_or(0) == 16384 &&
                                    get_option(fd, opt::send_buffer).value_or(0) >= 64 * 1024 &&
                                    get_option(fd, opt::receive_buffer).value_or(0) >= 128 * 1024 &&
                                    get_option(fd, opt::keepalive).value_or(false) &&
                                    get_option(fd, opt::keep_idle).value_or(0s) == 30s &&
                                    get_option(fd, opt::keep_interval).value_or(0s) == 5s &&
                                    get_option(fd, opt::keep_count).value_or(0) == 4 &&
                                    (!want.busy_poll || get_option(fd, opt::busy_poll).value_or(0us) == 50us);
                  if (each) checked.fetch_add(1);
                  (void)conn.write_all("done");
                })
                    .value();
  run_main([&] {
    for (int i = 0; i < 8; ++i) {
      TcpStream c = TcpStream::connect(server->address()).value();
      std::byte b[4];
      ASSERT_TRUE(c.read(b, CancelToken().with_timeout(5s)).ok());
    }
  });
  server->stop();
  EXPECT_EQ(verified.load(), 8);
  EXPECT_EQ(checked.load(), 8);
}

TEST_P(SocketOptionsTest, ConnectAppliesTheClientOptions) {
  auto group = start_group(1);
  ASSERT_TRUE(group);
  ServerOptions so;
  so.address = sys::SockAddr::ipv4_loopback(0);
  auto server = TcpServer::start(*group, so, [](TcpStream&, const Connection&) {}).value();
  run_main([&] {
    SocketOptions o;
    o.tcp_nodelay = false;
    o.notsent_lowat = 4096;
    TcpStream c = TcpStream::connect(server->address(), this_fiber::token(), o).value();
    EXPECT_TRUE(o.verify(c.fd()).ok());
    EXPECT_FALSE(sys::get_option(c.fd(), sys::opt::tcp_nodelay).value());
  });
}

TEST(SocketOptionsVerify, NamesTheOptionThatDiffers) {
  auto fd = sys::socket(AF_INET, SOCK_STREAM, 0).value();
  SocketOptions o;
  o.notsent_lowat = 1000;
  ASSERT_TRUE(o.apply(fd.get()).ok());
  SocketOptions other = o;
  other.notsent_lowat = 2000;
  auto r = other.verify(fd.get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("TCP_NOTSENT_LOWAT"), std::string::npos) << r.error().message();
  EXPECT_EQ(o.describe(), "nodelay notsent_lowat=1000");
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketOptionsTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net
