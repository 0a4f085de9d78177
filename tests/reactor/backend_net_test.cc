// The backend contract over TCP loopback, on both backends (io_uring, epoll):
// accept with the peer's address and connect (IPv4 and IPv6), a refused
// connect, send/recv both ways, end of stream, send to a closed peer (an
// error, never SIGPIPE), sendmsg and writev with several iovecs, 4 MiB through
// send ops intact, poll for POLLIN/POLLOUT/POLLRDHUP, accepted descriptors
// that the completion function leaves (closed by the backend, also when the
// accept completes while being cancelled), and multishot accept of 1000
// connections, ended by cancel or by its deadline. The contract's other clauses are in backend_test.cc.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/reactor/backend_test_util.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;
using testing::listener_on;
using testing::must;
using testing::Op;
using testing::put;
using testing::Record;
using testing::tcp_pair;

class BackendNetTest : public testing::BackendTest {
 protected:
  // Receives exactly `n` bytes through recv ops (fewer at end of stream or error).
  std::string recv_exactly(int fd, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      Op recv;
      prepare_recv(recv, fd, out.data() + got, n - got);
      const std::int32_t r = finish(recv);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  }

  // An accept op and a connect op meet on `loopback`'s address family.
  void accept_and_connect(const sys::SockAddr& loopback) {
    sys::Fd listener = listener_on(loopback);
    sys::SockAddr target = must(sys::getsockname(listener.get()));
    sys::SockAddr peer;
    Op accept;
    prepare_accept(accept, listener.get(), &peer);
    submit(accept);
    sys::Fd client = must(sys::socket(loopback.family(), SOCK_STREAM | SOCK_NONBLOCK));
    Op connect;
    prepare_connect(connect, client.get(), &target);
    submit(connect);
    ASSERT_TRUE(wait(connect));
    ASSERT_TRUE(wait(accept));
    settle();
    ASSERT_EQ(connect.count(), 1u);
    EXPECT_EQ(connect.result(), 0) << std::strerror(-connect.result());
    ASSERT_EQ(accept.count(), 1u);
    const Record& a = accept.done[0];
    ASSERT_GE(a.result, 0) << std::strerror(-a.result);
    ASSERT_TRUE(a.fd.valid());
    EXPECT_EQ(sys::fd_registry::tag_of(a.fd.get()), a.fd.tag());
    EXPECT_TRUE(::fcntl(a.fd.get(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(a.fd.get(), F_GETFD) & FD_CLOEXEC);
    const std::string client_address = must(sys::getsockname(client.get())).to_string();
    EXPECT_EQ(peer.family(), loopback.family());
    EXPECT_EQ(peer.to_string(), client_address);
    EXPECT_EQ(must(sys::getpeername(a.fd.get())).to_string(), client_address);
  }
};

TEST_P(BackendNetTest, AcceptAndConnectOverIpv4) { accept_and_connect(sys::SockAddr::ipv4_loopback(0)); }

TEST_P(BackendNetTest, AcceptAndConnectOverIpv6) {
  {
    auto probe = sys::socket(AF_INET6, SOCK_STREAM);
    if (!probe || !sys::bind(probe->get(), sys::SockAddr::ipv6_loopback(0))) GTEST_SKIP() << "no IPv6 loopback";
  }
  accept_and_connect(sys::SockAddr::ipv6_loopback(0));
}

TEST_P(BackendNetTest, ConnectToAClosedPortIsRefused) {
  // Bound but not listening: the port answers SYN with RST, and stays ours.
  sys::Fd bound = must(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK));
  must(sys::bind(bound.get(), sys::SockAddr::ipv4_loopback(0)));
  sys::SockAddr target = must(sys::getsockname(bound.get()));
  sys::Fd client = must(sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK));
  Op connect;
  prepare_connect(connect, client.get(), &target);
  EXPECT_EQ(finish(connect), -ECONNREFUSED);
  settle();
  EXPECT_EQ(connect.count(), 1u);
}

TEST_P(BackendNetTest, SendAndRecvRoundTrip) {
  auto pair = tcp_pair();
  Op send;
  prepare_send(send, pair.client.get(), "hello", 5);
  EXPECT_EQ(finish(send), 5);
  EXPECT_EQ(recv_exactly(pair.server.get(), 5), "hello");

  // The other way, with the recv parked before the data leaves.
  char buf[32];
  Op recv;
  prepare_recv(recv, pair.client.get(), buf, sizeof buf);
  submit(recv);
  run_for(20ms);
  EXPECT_EQ(recv.count(), 0u);
  Op reply;
  prepare_send(reply, pair.server.get(), "world!", 6);
  EXPECT_EQ(finish(reply), 6);
  ASSERT_TRUE(wait(recv));
  settle();
  ASSERT_EQ(recv.count(), 1u);
  ASSERT_EQ(recv.result(), 6);
  EXPECT_EQ(std::string(buf, 6), "world!");
}

TEST_P(BackendNetTest, RecvReturnsZeroAfterThePeerShutsDownWriting) {
  auto pair = tcp_pair();
  char buf[16];
  Op recv;
  prepare_recv(recv, pair.server.get(), buf, sizeof buf);
  submit(recv);
  run_for(20ms);
  EXPECT_EQ(recv.count(), 0u);
  must(sys::shutdown(pair.client.get(), SHUT_WR));
  ASSERT_TRUE(wait(recv));
  EXPECT_EQ(recv.result(), 0);
  Op again;  // end of stream stays; no new edge is needed to see it
  prepare_recv(again, pair.server.get(), buf, sizeof buf);
  EXPECT_EQ(finish(again), 0);
}

TEST_P(BackendNetTest, SendToAClosedPeerFailsWithoutSigpipe) {
  auto pair = tcp_pair();
  pair.server.reset();
  // The first sends may still be buffered; the peer's RST turns a later one
  // into ECONNRESET, and the ones after it into EPIPE. A SIGPIPE would kill
  // the test binary.
  std::vector<char> chunk(64 * 1024, 'x');
  std::int32_t last = 0;
  for (int i = 0; i < 1000 && last >= 0; ++i) {
    Op send;
    prepare_send(send, pair.client.get(), chunk.data(), chunk.size());
    last = finish(send);
    if (last == INT32_MIN) break;
  }
  EXPECT_TRUE(last == -EPIPE || last == -ECONNRESET) << last << " " << std::strerror(-last);
}

TEST_P(BackendNetTest, SendmsgWithTwoIovecs) {
  auto pair = tcp_pair();
  char first[] = "hello ";
  char second[] = "world";
  iovec iov[2] = {{first, 6}, {second, 5}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  Op send;
  prepare_sendmsg(send, pair.client.get(), &msg);
  EXPECT_EQ(finish(send), 11);
  EXPECT_EQ(recv_exactly(pair.server.get(), 11), "hello world");
}

TEST_P(BackendNetTest, WritevWithThreeIovecsIsReceivedWhole) {
  auto pair = tcp_pair();
  std::string parts[3] = {std::string(1000, 'a'), std::string(10'000, '\0'), std::string(300, 'c')};
  for (std::size_t i = 0; i < parts[1].size(); ++i) parts[1][i] = static_cast<char>('A' + i % 26);
  const std::string whole = parts[0] + parts[1] + parts[2];
  std::size_t written = 0;
  while (written < whole.size()) {  // a short write continues where it stopped
    std::vector<iovec> iov;
    std::size_t skip = written;
    for (std::string& p : parts) {
      if (skip >= p.size()) {
        skip -= p.size();
        continue;
      }
      iov.push_back({p.data() + skip, p.size() - skip});
      skip = 0;
    }
    Op writev;
    prepare_writev(writev, pair.client.get(), iov.data(), static_cast<int>(iov.size()));
    const std::int32_t n = finish(writev);
    ASSERT_GT(n, 0) << std::strerror(-n);
    written += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(written, whole.size());
  EXPECT_EQ(recv_exactly(pair.server.get(), whole.size()), whole);
}

TEST_P(BackendNetTest, FourMebibytesThroughSendOpsArriveIntact) {
  auto pair = tcp_pair();
  constexpr std::size_t kTotal = 4 << 20;
  std::vector<unsigned char> tx(kTotal), rx(kTotal);
  for (std::size_t i = 0; i < kTotal; ++i) tx[i] = static_cast<unsigned char>((i * 131) ^ (i >> 13));
  std::size_t sent = 0, got = 0;
  Op send, recv;
  bool failed = false;
  const std::int64_t until = now_ns() + 60'000'000'000;
  while (!failed && (sent < kTotal || got < kTotal) && now_ns() < until) {
    if (!send.pending && sent < kTotal) {
      prepare_send(send, pair.client.get(), tx.data() + sent, std::min<std::size_t>(kTotal - sent, 256 << 10));
      submit(send);
    }
    if (!recv.pending && got < kTotal) {
      prepare_recv(recv, pair.server.get(), rx.data() + got, std::min<std::size_t>(kTotal - got, 64 << 10));
      submit(recv);
    }
    loop_->run_once(10ms);
    for (auto [op, total] : {std::pair{&send, &sent}, std::pair{&recv, &got}}) {
      if (op->done.empty()) continue;
      EXPECT_GT(op->result(), 0) << to_string(op->kind) << ": " << std::strerror(-op->result());
      if (op->result() <= 0) failed = true;
      else *total += static_cast<std::size_t>(op->result());
      op->done.clear();
    }
  }
  ASSERT_EQ(sent, kTotal);
  ASSERT_EQ(got, kTotal);
  const auto mismatch = std::mismatch(tx.begin(), tx.end(), rx.begin());
  EXPECT_TRUE(mismatch.first == tx.end()) << "first difference at byte " << (mismatch.first - tx.begin());
}

TEST_P(BackendNetTest, PollInFiresWhenDataArrives) {
  auto pair = tcp_pair();
  Op poll;
  prepare_poll(poll, pair.server.get(), POLLIN);
  submit(poll);
  run_for(20ms);
  EXPECT_EQ(poll.count(), 0u) << "POLLIN fired with no data";
  put(pair.client.get(), "x");
  ASSERT_TRUE(wait(poll));
  settle();
  ASSERT_EQ(poll.count(), 1u);
  ASSERT_GT(poll.result(), 0);
  EXPECT_TRUE(poll.result() & POLLIN) << std::hex << poll.result();
}

TEST_P(BackendNetTest, PollOutFiresAtOnceOnAFreshSocket) {
  auto pair = tcp_pair();
  Op poll;
  prepare_poll(poll, pair.client.get(), POLLOUT);
  const std::int32_t revents = finish(poll);
  ASSERT_GT(revents, 0);
  EXPECT_TRUE(revents & POLLOUT) << std::hex << revents;
}

TEST_P(BackendNetTest, PollRdhupFiresWhenThePeerShutsDown) {
  auto pair = tcp_pair();
  Op poll;
  prepare_poll(poll, pair.server.get(), POLLRDHUP);
  submit(poll);
  run_for(20ms);
  EXPECT_EQ(poll.count(), 0u);
  must(sys::shutdown(pair.client.get(), SHUT_WR));
  ASSERT_TRUE(wait(poll));
  ASSERT_GT(poll.result(), 0);
  EXPECT_TRUE(poll.result() & POLLRDHUP) << std::hex << poll.result();
}

TEST_P(BackendNetTest, AcceptedDescriptorTheCompletionLeavesIsClosed) {
  sys::Fd listener = listener_on(sys::SockAddr::ipv4_loopback(0));
  Op accept;
  accept.take_fd = false;
  prepare_accept(accept, listener.get());
  submit(accept);
  sys::Fd client = must(sys::socket(AF_INET, SOCK_STREAM));
  must(sys::connect(client.get(), must(sys::getsockname(listener.get()))));
  ASSERT_TRUE(wait(accept));
  ASSERT_GE(accept.result(), 0) << std::strerror(-accept.result());
  const int number = accept.done[0].fd_number;
  ASSERT_GE(number, 0);
  EXPECT_EQ(sys::fd_registry::tag_of(number), 0u);
  errno = 0;
  EXPECT_EQ(::fcntl(number, F_GETFD), -1) << "the untaken descriptor is still open";
  EXPECT_EQ(errno, EBADF);
}

TEST_P(BackendNetTest, AcceptCompletingWhileCancelledLeaksNothing) {
  // The connection is queued before the cancel: the accept may win (a
  // descriptor, which the completion leaves for the backend to close) or
  // the cancel may (-ECANCELED). Either way: one completion, no leak.
  sys::Fd listener = listener_on(sys::SockAddr::ipv4_loopback(0));
  Op accept;
  accept.take_fd = false;
  prepare_accept(accept, listener.get());
  submit(accept);
  run_for(20ms);
  sys::Fd client = must(sys::socket(AF_INET, SOCK_STREAM));
  must(sys::connect(client.get(), must(sys::getsockname(listener.get()))));
  pollfd p{listener.get(), POLLIN, 0};
  (void)::poll(&p, 1, 5000);  // queued in the listener (io_uring may have taken it already)
  cancel(accept);
  ASSERT_TRUE(wait(accept));
  settle();
  ASSERT_EQ(accept.count(), 1u);
  const Record& r = accept.done[0];
  if (r.result >= 0) {
    ASSERT_GE(r.fd_number, 0);
    EXPECT_EQ(sys::fd_registry::tag_of(r.fd_number), 0u);
  } else {
    EXPECT_EQ(r.result, -ECANCELED);
    EXPECT_EQ(r.fd_number, -1);
  }
}

TEST_P(BackendNetTest, MultishotAcceptOfAThousandConnections) {
  constexpr std::size_t kConnections = 1000;
  sys::Fd listener = listener_on(sys::SockAddr::ipv4_loopback(0), 2048);
  const sys::SockAddr target = must(sys::getsockname(listener.get()));
  Op accept;
  prepare_accept_multishot(accept, listener.get());
  submit(accept);

  std::vector<sys::Fd> clients;
  std::atomic<bool> client_failed{false};
  std::string client_error;
  std::thread connector([&] {
    for (std::size_t i = 0; i < kConnections; ++i) {
      auto fd = sys::socket(AF_INET, SOCK_STREAM);
      auto connected = fd ? sys::connect(fd->get(), target) : sys::Result<void>(fd.error());
      if (!connected) {
        client_error = connected.error().message();
        client_failed = true;
        return;
      }
      clients.push_back(std::move(*fd));  // held open: every accept is a distinct descriptor
    }
  });
  const bool all = run_until([&] { return accept.count() >= kConnections || client_failed; }, 60'000ms);
  connector.join();
  ASSERT_FALSE(client_failed) << client_error;
  ASSERT_TRUE(all) << accept.count() << " of " << kConnections << " accepted";
  settle();
  ASSERT_EQ(accept.count(), kConnections);

  std::vector<sys::Fd> accepted;
  std::set<int> numbers;
  std::size_t bad = 0;
  for (Record& r : accept.done) {
    const bool good = r.more && r.result >= 0 && r.fd.valid() &&
                      sys::fd_registry::tag_of(r.fd.get()) == r.fd.tag();
    if (!good && bad++ == 0) {
      ADD_FAILURE() << "completion: result " << r.result << " more " << r.more << " fd " << r.fd_number;
    }
    numbers.insert(r.fd.get());
    accepted.push_back(std::move(r.fd));
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(numbers.size(), kConnections);
  accepted.clear();
  accept.done.clear();

  cancel(accept);
  ASSERT_TRUE(wait(accept));
  settle();
  ASSERT_EQ(accept.count(), 1u);
  EXPECT_FALSE(accept.done[0].more);
  EXPECT_EQ(accept.result(), -ECANCELED);
  EXPECT_EQ(accept.done[0].fd_number, -1);
  clients.clear();
}

TEST_P(BackendNetTest, MultishotAcceptDeadlineEndsItWithEtimedout) {
  sys::Fd listener = listener_on(sys::SockAddr::ipv4_loopback(0));
  Op accept;
  prepare_accept_multishot(accept, listener.get());
  accept.deadline = 30ms;
  const std::int64_t start = now_ns();
  submit(accept);
  ASSERT_TRUE(wait(accept));
  EXPECT_GE(now_ns() - start, 30'000'000);
  settle();
  ASSERT_EQ(accept.count(), 1u);
  EXPECT_FALSE(accept.done[0].more);
  EXPECT_EQ(accept.result(), -ETIMEDOUT);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendNetTest, testing::kAllBackends, testing::backend_name);

}  // namespace
}  // namespace ringo::reactor
