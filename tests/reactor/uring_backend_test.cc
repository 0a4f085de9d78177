// Tests specific to the io_uring backend (the contract shared with epoll is
// tested on both backends in backend_test.cc): the features it probes and
// describes; its setup errors; the ring fd in the fd registry; 1000 nops
// through an 8-entry SQ and a 32-entry CQ (SQ-full submission and CQ
// overflow, each completion exactly once); accept and multishot accept
// registering the descriptors io_uring creates; close through the registry
// (a wrong tag is refused with -EBADF and nothing is closed; a right one
// cancels what is in flight on the fd); linked deadlines (-ETIMEDOUT) against
// cancels (-ECANCELED), also when every op needs two SQEs of a full SQ;
// O_NONBLOCK sockets that wait instead of failing -EAGAIN; wake() from
// another thread; and shutdown delivering every final completion.
//
// Timing: deadlines are short and waits generous (a busy 2-core machine);
// nothing asserts an upper bound tighter than "well before the test gives up".
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "reactor/backend.h"
#include "reactor/clock.h"
#include "syscall/fd_registry.h"
#include "syscall/socket.h"
#include "tests/support/test_util.h"

namespace ringo::reactor {
namespace {

using ringo::testing::is_nonblocking;

using namespace std::chrono_literals;

// Everything one Operation's completions said.
struct Record {
  int calls = 0;
  int finals = 0;
  std::vector<std::int32_t> results;
  std::vector<sys::Fd> fds;  // taken from accept completions
  bool last_more = false;
};

void record(Operation& op, Completion& c) {
  auto* r = static_cast<Record*>(op.user);
  ++r->calls;
  if (!c.more) ++r->finals;
  r->results.push_back(c.result);
  r->last_more = c.more;
  if (c.fd) r->fds.push_back(std::move(c.fd));
}

void bind(Operation& op, Record& r) {
  op.on_complete = record;
  op.user = &r;
}

// A backend, or a skip where the machine refuses io_uring altogether.
std::unique_ptr<Backend> make(std::uint32_t entries = 256) {
  BackendOptions options;
  options.ring_entries = entries;
  auto backend = make_uring_backend(options);
  if (!backend) {
    ADD_FAILURE() << backend.error().message();
    return nullptr;
  }
  return std::move(*backend);
}

bool io_uring_refused() {
  auto backend = make_uring_backend(BackendOptions{});
  return !backend && (backend.error().is(EPERM) || backend.error().is(ENOSYS));
}

class UringBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (io_uring_refused()) GTEST_SKIP() << "io_uring is refused here (sysctl, seccomp or kernel)";
  }
};

// Polls until `done` holds, giving up after `limit`. Returns what poll() counted.
template <class Pred>
std::size_t poll_until(Backend& b, Pred done, std::chrono::nanoseconds limit = 20s) {
  std::size_t delivered = 0;
  const std::int64_t give_up = now_ns() + limit.count();
  while (!done() && now_ns() < give_up) delivered += b.poll(10ms);
  return delivered;
}

// Polls for a while and says whether anything completed meanwhile.
bool stays_quiet(Backend& b, std::chrono::milliseconds span = 200ms) {
  std::size_t delivered = 0;
  const std::int64_t until = now_ns() + std::chrono::nanoseconds(span).count();
  while (now_ns() < until) delivered += b.poll(20ms);
  return delivered == 0;
}

sys::SocketPair make_pair() {
  auto pair = sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_TRUE(pair.ok());
  return std::move(*pair);
}

// A non-blocking loopback listener on an ephemeral port.
struct Listener {
  sys::Fd fd;
  sys::SockAddr addr;
};

Listener make_listener() {
  Listener l;
  auto fd = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_TRUE(fd.ok());
  l.fd = std::move(*fd);
  EXPECT_TRUE(sys::bind(l.fd.get(), sys::SockAddr::ipv4_loopback(0)).ok());
  EXPECT_TRUE(sys::listen(l.fd, 16).ok());
  auto addr = sys::getsockname(l.fd.get());
  EXPECT_TRUE(addr.ok());
  l.addr = *addr;
  return l;
}

// A client socket whose non-blocking connect to `to` has been started.
sys::Fd start_connect(const sys::SockAddr& to) {
  auto fd = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  EXPECT_TRUE(fd.ok());
  auto r = sys::connect(fd->get(), to);
  EXPECT_TRUE(r.ok() || r.error().is(EINPROGRESS)) << r.error().message();
  return std::move(*fd);
}

TEST_F(UringBackendTest, DescribesTheFeaturesInUse) {
  auto b = make(8);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->kind(), BackendKind::io_uring);
  const std::string text = b->describe();
  EXPECT_EQ(text.rfind("io_uring (", 0), 0u) << text;
  EXPECT_NE(text.find("8 entries, cq 32)"), std::string::npos) << text;
  if (ringo::testing::kernel_at_least(6, 1)) {
    EXPECT_NE(text.find("SINGLE_ISSUER, DEFER_TASKRUN"), std::string::npos) << text;
    EXPECT_NE(text.find("SUBMIT_ALL"), std::string::npos) << text;
  }
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(UringBackendTest, SetupErrorNamesTheCallAndHints) {
  BackendOptions options;
  options.ring_entries = 0;
  auto b = make_uring_backend(options);
  ASSERT_FALSE(b.ok());
  EXPECT_STREQ(b.error().op(), "io_uring_setup");
  EXPECT_TRUE(b.error().is(EINVAL));
  ASSERT_NE(b.error().hint(), nullptr);
}

TEST_F(UringBackendTest, RingFdIsRegisteredWhileTheBackendLives) {
  const auto rings = [] {
    std::vector<sys::FdInfo> out;
    for (sys::FdInfo& info : sys::fd_registry::snapshot()) {
      if (info.kind == sys::FdKind::io_uring) out.push_back(std::move(info));
    }
    return out;
  };
  const std::size_t before = rings().size();
  auto b = make();
  ASSERT_TRUE(b);
  const std::vector<sys::FdInfo> live = rings();
  ASSERT_EQ(live.size(), before + 1);
  const sys::FdInfo& ring = live.back();
  for (const sys::FdInfo& info : live) EXPECT_TRUE(ringo::testing::is_open(info.fd)) << "fd " << info.fd;
  b.reset();
  EXPECT_EQ(rings().size(), before);
  EXPECT_EQ(sys::fd_registry::tag_of(ring.fd), 0u);
  EXPECT_FALSE(ringo::testing::is_open(ring.fd)) << "io_uring_queue_exit closes the ring fd";
}

TEST_F(UringBackendTest, ThousandNopsThroughAFullSqAndAnOverflowingCq) {
  auto b = make(8);  // SQ 8, CQ 32
  ASSERT_TRUE(b);
  constexpr int kOps = 1000;
  std::vector<Operation> ops(kOps);
  std::vector<int> counts(kOps, 0);
  int total = 0;
  struct Ctx {
    std::vector<int>* counts;
    int* total;
    int index;
  };
  std::vector<Ctx> ctx(kOps);
  for (int i = 0; i < kOps; ++i) {
    ctx[i] = {&counts, &total, i};
    prepare_nop(ops[i]);
    ops[i].user = &ctx[i];
    ops[i].on_complete = [](Operation& op, Completion& c) {
      auto* x = static_cast<Ctx*>(op.user);
      EXPECT_EQ(c.result, 0);
      EXPECT_FALSE(c.more);
      ++(*x->counts)[x->index];
      ++*x->total;
    };
    b->submit(ops[i]);  // no poll in between: the SQ fills every 8 ops
  }
  EXPECT_EQ(total, 0) << "completions must wait for poll()";
  EXPECT_EQ(b->in_flight(), static_cast<std::size_t>(kOps));
  const std::size_t delivered = poll_until(*b, [&] { return total >= kOps; }, 60s);
  EXPECT_EQ(delivered, static_cast<std::size_t>(kOps));
  for (int i = 0; i < 5; ++i) b->poll(0ns);  // nothing comes twice
  EXPECT_EQ(total, kOps);
  for (int i = 0; i < kOps; ++i) ASSERT_EQ(counts[i], 1) << "nop " << i;
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(UringBackendTest, CompletionsComeOnlyFromPollAndIdleCancelIsANoOp) {
  auto b = make();
  ASSERT_TRUE(b);
  Operation op;
  Record r;
  prepare_nop(op);
  bind(op, r);
  b->cancel(op);  // not in flight: nothing happens, nothing is delivered later
  b->submit(op);
  EXPECT_TRUE(op.in_flight());
  EXPECT_EQ(r.calls, 0);
  poll_until(*b, [&] { return r.calls > 0; });
  ASSERT_EQ(r.calls, 1);
  EXPECT_EQ(r.results[0], 0);
  EXPECT_FALSE(op.in_flight());
  b->cancel(op);
  EXPECT_TRUE(stays_quiet(*b, 50ms));
  EXPECT_EQ(r.calls, 1);
}

TEST_F(UringBackendTest, AcceptAndConnectRegisterAndWaitOnNonBlockingSockets) {
  auto b = make();
  ASSERT_TRUE(b);
  Listener l = make_listener();
  ASSERT_TRUE(is_nonblocking(l.fd.get()));
  Operation accept;
  Record ra;
  sys::SockAddr peer;
  prepare_accept(accept, l.fd.get(), &peer);
  bind(accept, ra);
  b->submit(accept);
  EXPECT_TRUE(stays_quiet(*b)) << "accept on an empty O_NONBLOCK listener must wait, not -EAGAIN";

  auto client = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(client.ok());
  Operation connect;
  Record rc;
  prepare_connect(connect, client->get(), &l.addr);
  bind(connect, rc);
  b->submit(connect);
  poll_until(*b, [&] { return ra.calls > 0 && rc.calls > 0; });
  ASSERT_EQ(rc.calls, 1);
  EXPECT_EQ(rc.results[0], 0);
  ASSERT_EQ(ra.calls, 1);
  ASSERT_EQ(ra.fds.size(), 1u);
  const sys::Fd& conn = ra.fds[0];
  EXPECT_EQ(ra.results[0], conn.get());
  EXPECT_NE(conn.tag(), 0u);
  EXPECT_EQ(sys::fd_registry::tag_of(conn.get()), conn.tag());
  EXPECT_TRUE(is_nonblocking(conn.get()));
  EXPECT_TRUE(::fcntl(conn.get(), F_GETFD) & FD_CLOEXEC);
  auto local = sys::getsockname(client->get());
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(peer.port(), local->port());
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(UringBackendTest, MultishotAcceptRegistersEachAndEndsOnCancel) {
  auto b = make();
  ASSERT_TRUE(b);
  Listener l = make_listener();
  Operation op;
  Record r;
  prepare_accept_multishot(op, l.fd.get());
  bind(op, r);
  b->submit(op);
  b->poll(0ns);
  std::vector<sys::Fd> clients;
  clients.push_back(start_connect(l.addr));
  clients.push_back(start_connect(l.addr));
  poll_until(*b, [&] { return r.fds.size() >= 2; });
  ASSERT_EQ(r.fds.size(), 2u);
  EXPECT_EQ(r.finals, 0);
  EXPECT_TRUE(r.last_more);
  for (const sys::Fd& fd : r.fds) EXPECT_EQ(sys::fd_registry::tag_of(fd.get()), fd.tag());
  EXPECT_EQ(b->in_flight(), 1u);
  b->cancel(op);
  EXPECT_EQ(r.finals, 0) << "cancel never delivers by itself";
  poll_until(*b, [&] { return r.finals > 0; });
  ASSERT_EQ(r.finals, 1);
  EXPECT_FALSE(r.last_more);
  EXPECT_EQ(r.results.back(), -ECANCELED);
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(UringBackendTest, CloseWithAWrongTagIsRefusedWithEbadf) {
  ringo::testing::FdPolicyGuard policy(sys::FdViolationPolicy::count);
  {
    auto b = make();
    ASSERT_TRUE(b);
    sys::SocketPair pair = make_pair();
    const std::uint64_t foreign_before = sys::fd_registry::stats().foreign_closes;
    Operation op;
    Record r;
    op.kind = OpKind::close;
    op.fd = pair.first.get();
    op.close_tag = pair.first.tag() ^ (std::uint64_t{1} << 63);  // not the owner's
    bind(op, r);
    b->submit(op);
    poll_until(*b, [&] { return r.calls > 0; });
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(r.results[0], -EBADF);
    EXPECT_TRUE(ringo::testing::is_open(pair.first.get()));
    EXPECT_EQ(sys::fd_registry::tag_of(pair.first.get()), pair.first.tag());
    EXPECT_EQ(sys::fd_registry::stats().foreign_closes, foreign_before + 1);
    EXPECT_EQ(b->in_flight(), 0u);
  }
}

TEST_F(UringBackendTest, CloseCancelsWhatIsInFlightOnTheFd) {
  auto b = make();
  ASSERT_TRUE(b);
  sys::SocketPair pair = make_pair();
  const int fd = pair.first.get();
  Operation recv;
  Record rr;
  std::array<char, 16> buf{};
  prepare_recv(recv, fd, buf.data(), buf.size());
  bind(recv, rr);
  b->submit(recv);
  EXPECT_TRUE(stays_quiet(*b, 50ms));
  Operation close;
  Record rc;
  prepare_close(close, std::move(pair.first));
  bind(close, rc);
  b->submit(close);
  poll_until(*b, [&] { return rr.calls > 0 && rc.calls > 0; });
  ASSERT_EQ(rr.calls, 1);
  EXPECT_EQ(rr.results[0], -ECANCELED);
  ASSERT_EQ(rc.calls, 1);
  EXPECT_EQ(rc.results[0], 0);
  EXPECT_EQ(sys::fd_registry::tag_of(fd), 0u);
  EXPECT_FALSE(ringo::testing::is_open(fd));
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(UringBackendTest, DeadlineGivesEtimedoutAndCancelGivesEcanceled) {
  auto b = make();
  ASSERT_TRUE(b);
  sys::SocketPair pair = make_pair();  // nothing is ever written
  std::array<char, 16> buf{};
  Operation late, cancelled, plain;
  Record rl, rc, rp;
  prepare_recv(late, pair.first.get(), buf.data(), buf.size());
  late.deadline = 30ms;
  prepare_recv(cancelled, pair.first.get(), buf.data(), buf.size());
  cancelled.deadline = 60s;
  prepare_recv(plain, pair.second.get(), buf.data(), buf.size());
  bind(late, rl);
  bind(cancelled, rc);
  bind(plain, rp);
  b->submit(late);
  b->submit(cancelled);
  b->submit(plain);
  b->poll(0ns);
  b->cancel(cancelled);
  b->cancel(plain);
  b->cancel(plain);  // twice is once
  poll_until(*b, [&] { return rl.calls > 0 && rc.calls > 0 && rp.calls > 0; });
  ASSERT_EQ(rl.calls, 1);
  EXPECT_EQ(rl.results[0], -ETIMEDOUT);
  ASSERT_EQ(rc.calls, 1);
  EXPECT_EQ(rc.results[0], -ECANCELED);
  ASSERT_EQ(rp.calls, 1);
  EXPECT_EQ(rp.results[0], -ECANCELED);
  EXPECT_TRUE(stays_quiet(*b, 50ms));
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(UringBackendTest, LinkedDeadlinesStayWholeThroughAFullSq) {
  auto b = make(8);  // each op needs two SQEs: op + LINK_TIMEOUT
  ASSERT_TRUE(b);
  sys::SocketPair pair = make_pair();
  constexpr int kOps = 50;
  std::vector<Operation> ops(kOps);
  std::vector<Record> records(kOps);
  std::array<char, 16> buf{};
  for (int i = 0; i < kOps; ++i) {
    prepare_recv(ops[i], pair.first.get(), buf.data(), buf.size());
    ops[i].deadline = 20ms;
    bind(ops[i], records[i]);
    b->submit(ops[i]);
  }
  poll_until(*b, [&] { return b->in_flight() == 0; }, 60s);
  for (int i = 0; i < kOps; ++i) {
    ASSERT_EQ(records[i].calls, 1) << "op " << i;
    EXPECT_EQ(records[i].results[0], -ETIMEDOUT) << "op " << i;
  }
}

TEST_F(UringBackendTest, NonBlockingSocketsWaitInsteadOfEagain) {
  auto b = make();
  ASSERT_TRUE(b);
  sys::SocketPair pair = make_pair();
  ASSERT_TRUE(is_nonblocking(pair.first.get()));
  std::array<char, 16> in{};
  Operation recv, read;
  Record rr, rd;
  prepare_recv(recv, pair.first.get(), in.data(), 1);
  prepare_read(read, pair.second.get(), in.data() + 8, 1);
  bind(recv, rr);
  bind(read, rd);
  b->submit(recv);
  b->submit(read);
  EXPECT_TRUE(stays_quiet(*b)) << "recv/read on an empty O_NONBLOCK socket must wait";
  ASSERT_EQ(::write(pair.second.get(), "x", 1), 1);
  ASSERT_EQ(::write(pair.first.get(), "y", 1), 1);
  poll_until(*b, [&] { return rr.calls > 0 && rd.calls > 0; });
  ASSERT_EQ(rr.calls, 1);
  EXPECT_EQ(rr.results[0], 1);
  EXPECT_EQ(in[0], 'x');
  ASSERT_EQ(rd.calls, 1);
  EXPECT_EQ(rd.results[0], 1);
  EXPECT_EQ(in[8], 'y');

  // A full send buffer: send and writev wait for room too.
  static char big[1 << 16];
  while (::send(pair.first.get(), big, sizeof(big), MSG_DONTWAIT) > 0) {
  }
  Operation send, writev;
  Record rs, rw;
  iovec iov{big, 1000};
  prepare_send(send, pair.first.get(), big, 1000);
  prepare_writev(writev, pair.first.get(), &iov, 1);
  bind(send, rs);
  bind(writev, rw);
  b->submit(send);
  b->submit(writev);
  EXPECT_TRUE(stays_quiet(*b)) << "send/writev on a full O_NONBLOCK socket must wait";
  std::vector<char> sink(1 << 16);
  poll_until(*b, [&] {
    while (::recv(pair.second.get(), sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
    }
    return rs.calls > 0 && rw.calls > 0;
  });
  ASSERT_EQ(rs.calls, 1);
  EXPECT_EQ(rs.results[0], 1000);
  ASSERT_EQ(rw.calls, 1);
  EXPECT_EQ(rw.results[0], 1000);
}

TEST_F(UringBackendTest, TimeoutAndPollOps) {
  auto b = make();
  ASSERT_TRUE(b);
  Operation soon, never;
  Record rs, rn;
  prepare_timeout(soon, 20ms);
  prepare_timeout(never, 1h);
  bind(soon, rs);
  bind(never, rn);
  b->submit(soon);
  b->submit(never);
  poll_until(*b, [&] { return rs.calls > 0; });
  ASSERT_EQ(rs.calls, 1);
  EXPECT_EQ(rs.results[0], 0) << "-ETIME is how a timeout succeeds";
  b->cancel(never);
  poll_until(*b, [&] { return rn.calls > 0; });
  ASSERT_EQ(rn.calls, 1);
  EXPECT_EQ(rn.results[0], -ECANCELED);

  sys::SocketPair pair = make_pair();
  Operation poll;
  Record rp;
  prepare_poll(poll, pair.first.get(), POLLIN);
  bind(poll, rp);
  b->submit(poll);
  EXPECT_TRUE(stays_quiet(*b, 50ms));
  ASSERT_EQ(::write(pair.second.get(), "x", 1), 1);
  poll_until(*b, [&] { return rp.calls > 0; });
  ASSERT_EQ(rp.calls, 1);
  EXPECT_TRUE(rp.results[0] & POLLIN);
}

TEST_F(UringBackendTest, WakeFromAnotherThreadEndsAWait) {
  auto b = make();
  ASSERT_TRUE(b);
  // A wake before the wait: the next poll returns promptly.
  b->wake();
  std::int64_t start = now_ns();
  EXPECT_EQ(b->poll(30s), 0u);
  EXPECT_LT(now_ns() - start, std::chrono::nanoseconds(20s).count());
  // A wake during an unbounded wait.
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    b->wake();
  });
  start = now_ns();
  EXPECT_EQ(b->poll(30s), 0u);
  EXPECT_LT(now_ns() - start, std::chrono::nanoseconds(20s).count());
  waker.join();
  EXPECT_EQ(b->in_flight(), 0u) << "the wake read is internal";
}

TEST_F(UringBackendTest, DestructionCancelsAndDeliversEveryFinalCompletion) {
  auto b = make();
  ASSERT_TRUE(b);
  sys::SocketPair pair = make_pair();
  Listener l = make_listener();
  std::array<char, 16> buf{};
  Operation recv, accept, timeout, queued;
  Record rr, ra, rt, rq;
  prepare_recv(recv, pair.first.get(), buf.data(), buf.size());
  recv.deadline = 1h;
  prepare_accept_multishot(accept, l.fd.get());
  prepare_timeout(timeout, 1h);
  prepare_nop(queued);  // submitted and never polled
  bind(recv, rr);
  bind(accept, ra);
  bind(timeout, rt);
  bind(queued, rq);
  b->submit(recv);
  b->submit(accept);
  b->submit(timeout);
  b->poll(0ns);
  b->submit(queued);
  EXPECT_EQ(b->in_flight(), 4u);
  b.reset();
  for (Record* r : {&rr, &ra, &rt}) {
    ASSERT_EQ(r->finals, 1);
    EXPECT_EQ(r->results.back(), -ECANCELED);
  }
  ASSERT_EQ(rq.calls, 1);
  EXPECT_TRUE(rq.results[0] == 0 || rq.results[0] == -ECANCELED) << rq.results[0];
}

TEST_F(UringBackendTest, DataThroughSendmsgWritevAndWrite) {
  auto b = make();
  ASSERT_TRUE(b);
  sys::SocketPair pair = make_pair();
  char a[] = "ab";
  char c[] = "cd";
  iovec iov[2] = {{a, 2}, {c, 2}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  Operation sendmsg, writev, write;
  Record rs, rv, rw;
  prepare_sendmsg(sendmsg, pair.first.get(), &msg);
  bind(sendmsg, rs);
  b->submit(sendmsg);
  poll_until(*b, [&] { return rs.calls > 0; });
  prepare_writev(writev, pair.first.get(), iov, 2);
  bind(writev, rv);
  b->submit(writev);
  poll_until(*b, [&] { return rv.calls > 0; });
  prepare_write(write, pair.first.get(), "e", 1);
  bind(write, rw);
  b->submit(write);
  poll_until(*b, [&] { return rw.calls > 0; });
  ASSERT_EQ(rs.results.at(0), 4);
  ASSERT_EQ(rv.results.at(0), 4);
  ASSERT_EQ(rw.results.at(0), 1);
  std::array<char, 16> got{};
  std::size_t n = 0;
  const std::int64_t give_up = now_ns() + std::chrono::nanoseconds(20s).count();
  while (n < 9 && now_ns() < give_up) {
    const ssize_t r = ::recv(pair.second.get(), got.data() + n, got.size() - n, MSG_DONTWAIT);
    if (r > 0) n += static_cast<std::size_t>(r);
  }
  EXPECT_EQ(std::string(got.data(), n), "abcdabcde");
}

}  // namespace
}  // namespace ringo::reactor
