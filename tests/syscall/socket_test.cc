// Tests for syscall/socket.h: SockAddr parsing and printing; the life of a TCP
// connection over loopback, IPv4 and IPv6 alike (bind, listen relabelling the
// fd as a listener in the registry, connect, accept4, the addresses each end
// reports, data through io.h, a half-close with shutdown); the errors each
// call names (refused connect, empty non-blocking accept, address in use);
// socketpair; and that every descriptor is created close-on-exec.
#include "syscall/socket.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "syscall/io.h"
#include "tests/support/test_util.h"

namespace ringo::sys {
namespace {

using ringo::testing::is_cloexec;
using ringo::testing::is_nonblocking;
using ringo::testing::registered_kind;

using ::testing::StartsWith;

// Waits, generously, for readability: loopback's last handshake ACK and data
// are delivered in softirq context, which may run after the sender returns.
bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 5000) == 1;
}

Result<std::size_t> send_text(int fd, std::string_view text) {
  return write(fd, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

// What one read returns once the fd is readable ("" at end of stream), or
// the error's message prefixed with '!'.
std::string receive_text(int fd) {
  if (!wait_readable(fd)) return "!not readable within 5 s";
  std::array<std::byte, 256> buf;
  Result<std::size_t> n = read(fd, buf);
  if (!n) return "!" + n.error().message();
  return std::string(reinterpret_cast<const char*>(buf.data()), *n);
}

// --- SockAddr ---------------------------------------------------------------

struct ParseCase {
  const char* text;
  int family;
  const char* printed;  // to_string() with port 8080
};

class SockAddrParse : public ::testing::TestWithParam<ParseCase> {};

TEST_P(SockAddrParse, ParsesFamilyPortAndPrintsBack) {
  const ParseCase& c = GetParam();
  Result<SockAddr> a = SockAddr::parse(c.text, 8080);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->family(), c.family);
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->size(), c.family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  EXPECT_EQ(a->to_string(), c.printed);
}

INSTANTIATE_TEST_SUITE_P(Numeric, SockAddrParse,
                         ::testing::Values(ParseCase{"127.0.0.1", AF_INET, "127.0.0.1:8080"},
                                           ParseCase{"0.0.0.0", AF_INET, "0.0.0.0:8080"},
                                           ParseCase{"::1", AF_INET6, "[::1]:8080"},
                                           ParseCase{"[::1]", AF_INET6, "[::1]:8080"},
                                           ParseCase{"[2001:db8::5]", AF_INET6, "[2001:db8::5]:8080"},
                                           ParseCase{"::ffff:10.0.0.1", AF_INET6, "[::ffff:10.0.0.1]:8080"}));

TEST(SockAddrTest, RejectsWhatIsNotANumericAddress) {
  const std::string too_long(100, '1');
  for (const char* text : {"", "localhost", "256.0.0.1", "1.2.3.4:80", "[::1", "::1]", "[]", "1::2::3",
                           too_long.c_str()}) {
    Result<SockAddr> a = SockAddr::parse(text, 80);
    ASSERT_FALSE(a.ok()) << "parsed \"" << text << "\" as " << a->to_string();
    EXPECT_TRUE(a.error().is(EINVAL)) << a.error().message();
    EXPECT_THAT(a.error().message(), StartsWith("inet_pton")) << text;
  }
}

TEST(SockAddrTest, BuildsLoopbackAndAnyAddresses) {
  EXPECT_EQ(SockAddr::ipv4_loopback(1).to_string(), "127.0.0.1:1");
  EXPECT_EQ(SockAddr::ipv6_loopback(2).to_string(), "[::1]:2");
  EXPECT_EQ(SockAddr::ipv4_any(65535).to_string(), "0.0.0.0:65535");
  EXPECT_EQ(SockAddr::ipv6_loopback(2).port(), 2);
  EXPECT_EQ(SockAddr().port(), 0);  // no family: no port
}

// --- TCP over loopback, for each address family -------------------------------

struct Family {
  const char* name;
  const char* ip;
  int domain;
};

// Each test starts with a non-blocking listener bound to port 0 of the
// family's loopback address; addr_ is where it listens.
class Loopback : public ::testing::TestWithParam<Family> {
 protected:
  void SetUp() override {
    Result<SockAddr> where = SockAddr::parse(GetParam().ip, 0);
    ASSERT_TRUE(where.ok()) << where.error().message();
    Result<Fd> s = socket(domain(), SOCK_STREAM | SOCK_NONBLOCK);
    if (!s && s.error().is(EAFNOSUPPORT)) GTEST_SKIP() << "no " << GetParam().name << " here";
    ASSERT_TRUE(s.ok()) << s.error().message();
    listener_ = std::move(*s);
    if (Result<void> b = bind(listener_.get(), *where); !b) {
      if (b.error().is(EADDRNOTAVAIL)) GTEST_SKIP() << "no " << GetParam().ip << " here";
      FAIL() << b.error().message();
    }
    kind_before_listen_ = registered_kind(listener_);
    listeners_before_ = fd_registry::counts()[FdKind::listener];
    ASSERT_TRUE(listen(listener_, 16).ok());
    Result<SockAddr> name = getsockname(listener_.get());
    ASSERT_TRUE(name.ok()) << name.error().message();
    addr_ = *name;
  }

  int domain() const { return GetParam().domain; }

  // A blocking client connected to addr_ (loopback completes the handshake
  // without an accept).
  Fd connected_client() {
    Result<Fd> c = socket(domain(), SOCK_STREAM);
    EXPECT_TRUE(c.ok()) << c.error().message();
    if (!c) return Fd();
    Result<void> r = connect(c->get(), addr_);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r ? std::move(*c) : Fd();
  }

  Fd accepted(SockAddr* peer = nullptr) {
    EXPECT_TRUE(wait_readable(listener_.get()));
    Result<Fd> s = accept4(listener_.get(), peer);
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s ? std::move(*s) : Fd();
  }

  Fd listener_;
  SockAddr addr_;
  std::optional<FdKind> kind_before_listen_;
  std::size_t listeners_before_ = 0;
};

TEST_P(Loopback, ListenRelabelsTheFdAsListener) {
  EXPECT_TRUE(is_cloexec(listener_.get()));
  EXPECT_EQ(addr_.family(), domain());
  EXPECT_NE(addr_.port(), 0) << "getsockname must report the port the kernel chose";
  if (!fd_registry::kEnabled) return;
  EXPECT_EQ(kind_before_listen_, FdKind::socket);
  EXPECT_EQ(registered_kind(listener_), FdKind::listener);
  EXPECT_EQ(fd_registry::counts()[FdKind::listener], listeners_before_ + 1);
}

TEST_P(Loopback, AcceptedPeerMatchesTheClientsAddress) {
  Fd client = connected_client();
  ASSERT_TRUE(client.valid());
  SockAddr peer;
  Fd server = accepted(&peer);
  ASSERT_TRUE(server.valid());

  Result<SockAddr> client_name = getsockname(client.get());
  Result<SockAddr> server_peer = getpeername(server.get());
  Result<SockAddr> client_peer = getpeername(client.get());
  ASSERT_TRUE(client_name.ok() && server_peer.ok() && client_peer.ok());
  EXPECT_EQ(peer.family(), domain());
  EXPECT_EQ(peer.size(), domain() == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  EXPECT_EQ(peer.to_string(), client_name->to_string());
  EXPECT_EQ(server_peer->to_string(), client_name->to_string());
  EXPECT_EQ(client_peer->to_string(), addr_.to_string());

  EXPECT_TRUE(is_cloexec(client.get()));
  EXPECT_TRUE(is_cloexec(server.get()));
  EXPECT_FALSE(is_nonblocking(client.get()));
  EXPECT_TRUE(is_nonblocking(server.get())) << "accept4's default flags are SOCK_NONBLOCK";
  if (fd_registry::kEnabled) {
    EXPECT_EQ(registered_kind(server), FdKind::socket);
  }
}

TEST_P(Loopback, DataFlowsBothWaysAndShutdownEndsOneDirection) {
  Fd client = connected_client();
  Fd server = accepted();
  ASSERT_TRUE(client.valid() && server.valid());

  Result<std::size_t> sent = send_text(client.get(), "hello");
  ASSERT_TRUE(sent.ok()) << sent.error().message();
  EXPECT_EQ(*sent, 5u);
  EXPECT_EQ(receive_text(server.get()), "hello");
  ASSERT_TRUE(send_text(server.get(), "world").ok());
  EXPECT_EQ(receive_text(client.get()), "world");

  // The client stops sending: the server reads end-of-stream, yet can still
  // answer on the other half of the connection.
  ASSERT_TRUE(sys::shutdown(client.get(), SHUT_WR).ok());  // not ::shutdown
  EXPECT_EQ(receive_text(server.get()), "");
  ASSERT_TRUE(send_text(server.get(), "bye").ok());
  EXPECT_EQ(receive_text(client.get()), "bye");
}

TEST_P(Loopback, ConnectToAPortNobodyListensOnIsRefused) {
  // A socket bound but not listening holds the port, so no other process can
  // start listening on it meanwhile; a SYN to it is answered with a reset.
  Result<Fd> quiet = socket(domain(), SOCK_STREAM);
  ASSERT_TRUE(quiet.ok());
  ASSERT_TRUE(bind(quiet->get(), *SockAddr::parse(GetParam().ip, 0)).ok());
  Result<SockAddr> closed = getsockname(quiet->get());
  ASSERT_TRUE(closed.ok());

  Result<Fd> client = socket(domain(), SOCK_STREAM);
  ASSERT_TRUE(client.ok());
  Result<void> r = connect(client->get(), *closed);
  ASSERT_FALSE(r.ok()) << "connected to " << closed->to_string();
  EXPECT_TRUE(r.error().is(ECONNREFUSED));
  EXPECT_THAT(r.error().message(), StartsWith("connect: ECONNREFUSED"));
}

TEST_P(Loopback, AcceptWithNothingPendingIsEagain) {
  Result<Fd> s = accept4(listener_.get(), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.error().is(EAGAIN)) << s.error().message();
  EXPECT_THAT(s.error().message(), StartsWith("accept4: EAGAIN"));
}

TEST_P(Loopback, BindingATakenPortIsEaddrinuse) {
  Result<Fd> second = socket(domain(), SOCK_STREAM);
  ASSERT_TRUE(second.ok());
  Result<void> r = bind(second->get(), addr_);  // neither SO_REUSEADDR nor SO_REUSEPORT
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(EADDRINUSE));
  EXPECT_THAT(r.error().message(), StartsWith("bind: EADDRINUSE"));
}

INSTANTIATE_TEST_SUITE_P(Families, Loopback,
                         ::testing::Values(Family{"IPv4", "127.0.0.1", AF_INET},
                                           Family{"IPv6", "[::1]", AF_INET6}),
                         [](const auto& p) { return std::string(p.param.name); });

// --- Other sockets ------------------------------------------------------------

TEST(SocketTest, UnknownFamilyIsNamedInTheError) {
  Result<Fd> s = socket(-1, SOCK_STREAM);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.error().is(EAFNOSUPPORT));
  EXPECT_THAT(s.error().message(), StartsWith("socket: EAFNOSUPPORT"));
}

TEST(SocketPairTest, ConnectsTwoCloseOnExecUnixSockets) {
  Result<SocketPair> p = socketpair(SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(p.ok()) << p.error().message();
  for (const Fd* fd : {&p->first, &p->second}) {
    EXPECT_TRUE(is_cloexec(fd->get()));
    EXPECT_TRUE(is_nonblocking(fd->get()));
    if (fd_registry::kEnabled) {
      EXPECT_EQ(registered_kind(*fd), FdKind::socket);
    }
  }
  Result<SockAddr> name = getsockname(p->first.get());
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->to_string(), "unix");

  ASSERT_TRUE(send_text(p->first.get(), "ping").ok());
  EXPECT_EQ(receive_text(p->second.get()), "ping");
  ASSERT_TRUE(send_text(p->second.get(), "pong").ok());
  EXPECT_EQ(receive_text(p->first.get()), "pong");
}

TEST(SocketPairTest, EmptyNonBlockingReadIsEagain) {
  Result<SocketPair> p = socketpair(SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(p.ok());
  std::array<std::byte, 8> buf;
  Result<std::size_t> n = read(p->first.get(), buf);
  ASSERT_FALSE(n.ok());
  EXPECT_TRUE(n.error().is(EAGAIN));
  EXPECT_THAT(n.error().message(), StartsWith("read: EAGAIN"));
}

}  // namespace
}  // namespace ringo::sys
