// Tests specific to the epoll backend: what edge-triggered readiness, the
// per-fd state and the fd registry's owner tags make it do. The behaviour both
// backends share is tested once, typed over both, in backend_test.cc.
//
// Timing: nothing here asserts an upper bound on how long something took;
// waits are generous (seconds) so that a loaded 2-core machine passes.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "reactor/backend.h"
#include "reactor/clock.h"
#include "syscall/events.h"
#include "syscall/fd_registry.h"
#include "syscall/io.h"
#include "syscall/socket.h"
#include "tests/support/test_util.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What came back for one operation. `log`, when set, records the order of
// completions across operations (by label).
struct Outcome {
  int completions = 0;
  std::int32_t result = 0;
  bool more = false;
  std::vector<std::int32_t> results;
  std::vector<std::string>* log = nullptr;
  const char* label = "";
};

void record(Operation& op, Completion& c) {
  auto* o = static_cast<Outcome*>(op.user);
  ++o->completions;
  o->result = c.result;
  o->more = c.more;
  o->results.push_back(c.result);
  if (o->log) o->log->push_back(o->label);
}  // an accepted fd left in `c` is closed here, as the contract says

Outcome logged(std::vector<std::string>& log, const char* label) {
  Outcome o;
  o.log = &log;
  o.label = label;
  return o;
}

void watch(Operation& op, Outcome& outcome) {
  op.on_complete = record;
  op.user = &outcome;
}

std::unique_ptr<Backend> make(const BackendOptions& options = {}) {
  auto backend = make_epoll_backend(options);
  if (!backend) ADD_FAILURE() << backend.error().message();
  return backend ? std::move(*backend) : nullptr;
}

// Polls until `done` holds, for at most `limit` (a failure, not a hang).
template <class Pred>
bool poll_until(Backend& backend, Pred done, std::chrono::nanoseconds limit = 10s) {
  const std::int64_t until = now_ns() + limit.count();
  while (!done()) {
    if (now_ns() > until) return false;
    backend.poll(50ms);
  }
  return true;
}

sys::SocketPair stream_pair(int extra = SOCK_NONBLOCK) {
  auto pair = sys::socketpair(SOCK_STREAM | extra);
  EXPECT_TRUE(pair.ok());
  return std::move(*pair);
}

void write_text(int fd, const char* text) {
  auto n = sys::write(fd, std::as_bytes(std::span(text, std::strlen(text))));
  ASSERT_TRUE(n.ok()) << n.error().message();
  ASSERT_EQ(*n, std::strlen(text));
}

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(EpollBackend, RecvParkedOnEagainCompletesWhenDataArrives) {
  auto backend = make();
  ASSERT_TRUE(backend);
  EXPECT_EQ(backend->kind(), BackendKind::epoll);
  auto pair = stream_pair();
  char buf[16] = {};
  Operation op;
  Outcome out;
  prepare_recv(op, pair.first.get(), buf, sizeof(buf));
  watch(op, out);
  backend->submit(op);
  EXPECT_EQ(out.completions, 0);  // submit never completes anything itself
  EXPECT_EQ(backend->poll(0ns), 0u);  // EAGAIN: parked
  EXPECT_EQ(backend->in_flight(), 1u);
  EXPECT_TRUE(op.in_flight());

  write_text(pair.second.get(), "hello");
  ASSERT_TRUE(poll_until(*backend, [&] { return out.completions > 0; }));
  EXPECT_EQ(out.completions, 1);
  EXPECT_EQ(out.result, 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_FALSE(op.in_flight());
  EXPECT_EQ(backend->in_flight(), 0u);
}

// The number of a registered fd is closed behind the backend's back (a raw
// close, which the kernel also drops from the epoll set) and reused by a new
// framework fd: the owner tag differs, so the backend registers it again
// instead of trusting its stale "registered" state, and the op completes.
TEST(EpollBackend, StaleFdStateDetectedAfterRawCloseAndReuse) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto old_pair = stream_pair();
  char buf[16] = {};
  Operation op;
  Outcome first;
  prepare_recv(op, old_pair.first.get(), buf, sizeof(buf));
  watch(op, first);
  backend->submit(op);
  backend->poll(0ns);  // parks and registers the fd
  write_text(old_pair.second.get(), "old");
  ASSERT_TRUE(poll_until(*backend, [&] { return first.completions > 0; }));
  ASSERT_EQ(first.result, 3);

  const int number = old_pair.first.release();  // the registry forgets it...
  ASSERT_EQ(::close(number), 0);                 // ...and nobody tells the backend
  auto new_pair = stream_pair();
  ASSERT_EQ(new_pair.first.get(), number) << "the kernel hands out the lowest free number";

  Outcome second;
  prepare_recv(op, new_pair.first.get(), buf, sizeof(buf));
  watch(op, second);
  backend->submit(op);
  EXPECT_EQ(backend->poll(0ns), 0u);
  write_text(new_pair.second.get(), "new!");
  ASSERT_TRUE(poll_until(*backend, [&] { return second.completions > 0; }));
  EXPECT_EQ(second.result, 4);
  EXPECT_EQ(std::string(buf, 4), "new!");
}

// The caller bug itself: closed with an op still parked. The parked op cannot
// complete on a file that is gone; when the number is reused it gets
// -ECANCELED (exactly once), and the new fd's op works.
TEST(EpollBackend, OpParkedOnAFdClosedBehindTheBackendIsCancelledOnReuse) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto old_pair = stream_pair();
  char old_buf[8], new_buf[8];
  Operation old_op, new_op;
  Outcome old_out, new_out;
  prepare_recv(old_op, old_pair.first.get(), old_buf, sizeof(old_buf));
  watch(old_op, old_out);
  backend->submit(old_op);
  backend->poll(0ns);
  const int number = old_pair.first.release();
  ASSERT_EQ(::close(number), 0);
  auto new_pair = stream_pair();
  ASSERT_EQ(new_pair.first.get(), number);

  prepare_recv(new_op, number, new_buf, sizeof(new_buf));
  watch(new_op, new_out);
  backend->submit(new_op);
  write_text(new_pair.second.get(), "ok");
  ASSERT_TRUE(poll_until(*backend, [&] { return old_out.completions > 0 && new_out.completions > 0; }));
  EXPECT_EQ(old_out.results, std::vector<std::int32_t>{-ECANCELED});
  EXPECT_EQ(new_out.results, std::vector<std::int32_t>{2});
  EXPECT_EQ(backend->in_flight(), 0u);
}

// EPIOCGPARAMS reads back what EPIOCSPARAMS set (Linux 6.9+).
struct EpollParams {
  std::uint32_t busy_poll_usecs;
  std::uint16_t busy_poll_budget;
  std::uint8_t prefer_busy_poll;
  std::uint8_t pad;
};
constexpr unsigned long kEpiocGParams = _IOR(0x8A, 0x02, EpollParams);

int epoll_fd_of_backend() {
  for (const sys::FdInfo& info : sys::fd_registry::snapshot()) {
    if (info.kind == sys::FdKind::epoll && info.owner && std::string(info.owner) == "epoll backend") return info.fd;
  }
  return -1;
}

TEST(EpollBackend, BusyPollOptionIsApplied) {
  {
    auto plain = make();
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->describe(), "epoll (edge-triggered)");
  }
  BackendOptions options;
  options.epoll_busy_poll = 50us;
  auto backend = make(options);
  ASSERT_TRUE(backend);
  const std::string text = backend->describe();
  EXPECT_THAT(text, HasSubstr("busy poll"));
  if (::geteuid() == 0 && ringo::testing::kernel_at_least(6, 9)) {
    EXPECT_EQ(text, "epoll (edge-triggered, busy poll 50us via EPIOCSPARAMS)");
    const int epfd = epoll_fd_of_backend();
    ASSERT_GE(epfd, 0);
    EpollParams params{};
    ASSERT_EQ(::ioctl(epfd, kEpiocGParams, &params), 0) << std::strerror(errno);
    EXPECT_EQ(params.busy_poll_usecs, 50u);
  } else {
    GTEST_LOG_(INFO) << "not root on Linux 6.9+: " << text;
  }
  // And it still completes operations.
  auto pair = stream_pair();
  char buf[4];
  Operation op;
  Outcome out;
  prepare_recv(op, pair.first.get(), buf, sizeof(buf));
  watch(op, out);
  backend->submit(op);
  write_text(pair.second.get(), "x");
  ASSERT_TRUE(poll_until(*backend, [&] { return out.completions > 0; }));
  EXPECT_EQ(out.result, 1);
}

TEST(EpollBackend, ConnectToAClosedPortIsRefused) {
  auto backend = make();
  ASSERT_TRUE(backend);
  // Bound but not listening: the port stays ours, and a SYN to it gets a RST.
  auto target = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(target.ok());
  ASSERT_TRUE(sys::bind(target->get(), sys::SockAddr::ipv4_loopback(0)).ok());
  auto bound = sys::getsockname(target->get());
  ASSERT_TRUE(bound.ok());
  sys::SockAddr addr = *bound;

  auto client = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(client.ok());
  Operation op;
  Outcome out;
  prepare_connect(op, client->get(), &addr);
  watch(op, out);
  backend->submit(op);
  ASSERT_TRUE(poll_until(*backend, [&] { return out.completions > 0; }));
  EXPECT_EQ(out.result, -ECONNREFUSED);
  EXPECT_EQ(backend->in_flight(), 0u);
}

TEST(EpollBackend, ConnectCompletesWithZeroOnceConnected) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto listener = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(listener.ok());
  ASSERT_TRUE(sys::bind(listener->get(), sys::SockAddr::ipv4_loopback(0)).ok());
  ASSERT_TRUE(sys::listen(*listener, 16).ok());
  sys::SockAddr addr = *sys::getsockname(listener->get());
  auto client = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(client.ok());
  Operation op;
  Outcome out;
  prepare_connect(op, client->get(), &addr);
  watch(op, out);
  backend->submit(op);
  ASSERT_TRUE(poll_until(*backend, [&] { return out.completions > 0; }));
  EXPECT_EQ(out.result, 0);
}

// close cancels what waits on the fd (-ECANCELED, delivered first), forgets
// the fd, then closes it through the registry.
TEST(EpollBackend, CloseOpCancelsParkedOpsThenCloses) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair();
  const int number = pair.first.get();
  std::vector<std::string> order;
  char buf[8];
  Operation recv_op, poll_op, close_op;
  Outcome recv_out = logged(order, "recv");
  Outcome poll_out = logged(order, "poll");
  Outcome close_out = logged(order, "close");
  prepare_recv(recv_op, number, buf, sizeof(buf));
  watch(recv_op, recv_out);
  prepare_poll(poll_op, number, POLLIN);
  watch(poll_op, poll_out);
  backend->submit(recv_op);
  backend->submit(poll_op);
  EXPECT_EQ(backend->poll(0ns), 0u);
  ASSERT_EQ(backend->in_flight(), 2u);

  prepare_close(close_op, std::move(pair.first));
  EXPECT_FALSE(pair.first.valid());
  watch(close_op, close_out);
  backend->submit(close_op);
  ASSERT_TRUE(poll_until(*backend, [&] { return close_out.completions > 0; }));
  EXPECT_EQ(recv_out.results, std::vector<std::int32_t>{-ECANCELED});
  EXPECT_EQ(poll_out.results, std::vector<std::int32_t>{-ECANCELED});
  EXPECT_EQ(close_out.results, std::vector<std::int32_t>{0});
  EXPECT_THAT(order, ElementsAre("recv", "poll", "close"));
  EXPECT_FALSE(fd_open(number));
  EXPECT_EQ(sys::fd_registry::tag_of(number), 0u);
  EXPECT_EQ(backend->in_flight(), 0u);
}

// A close presenting a tag that does not own the fd is refused: -EBADF, the
// fd stays open, and its owner's parked op and registration are untouched.
TEST(EpollBackend, CloseWithAWrongTagIsRefusedAndTheFdStaysOpen) {
  ringo::testing::FdPolicyGuard guard(sys::FdViolationPolicy::count);
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair();
  const int number = pair.first.get();
  char buf[8];
  Operation recv_op, close_op;
  Outcome recv_out, close_out;
  prepare_recv(recv_op, number, buf, sizeof(buf));
  watch(recv_op, recv_out);
  backend->submit(recv_op);
  backend->poll(0ns);

  const auto foreign_before = sys::fd_registry::stats().foreign_closes;
  close_op.kind = OpKind::close;
  close_op.fd = number;
  close_op.close_tag = pair.first.tag() + 1;  // tags are never reused: not the owner's
  watch(close_op, close_out);
  backend->submit(close_op);
  ASSERT_TRUE(poll_until(*backend, [&] { return close_out.completions > 0; }));
  EXPECT_EQ(close_out.result, -EBADF);
  EXPECT_TRUE(fd_open(number));
  EXPECT_EQ(sys::fd_registry::tag_of(number), pair.first.tag());
  EXPECT_EQ(sys::fd_registry::stats().foreign_closes, foreign_before + 1);

  EXPECT_EQ(recv_out.completions, 0);
  write_text(pair.second.get(), "still");
  ASSERT_TRUE(poll_until(*backend, [&] { return recv_out.completions > 0; }));
  EXPECT_EQ(recv_out.result, 5);
}

TEST(EpollBackend, MultishotAcceptStaysParkedUntilCancelled) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto listener = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(listener.ok());
  ASSERT_TRUE(sys::bind(listener->get(), sys::SockAddr::ipv4_loopback(0)).ok());
  ASSERT_TRUE(sys::listen(*listener, 128).ok());
  const sys::SockAddr addr = *sys::getsockname(listener->get());
  Operation op;
  Outcome out;
  prepare_accept_multishot(op, listener->get());
  watch(op, out);
  backend->submit(op);
  EXPECT_EQ(backend->poll(0ns), 0u);

  // More connections than one edge may deliver (the retry budget is 64):
  // the rest must come from the backlog, since no new edge will announce them.
  constexpr int kClients = 80;
  std::vector<sys::Fd> clients;
  for (int i = 0; i < kClients; ++i) {
    auto c = sys::socket(AF_INET, SOCK_STREAM);  // blocking: loopback connect returns once accepted by the kernel
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(sys::connect(c->get(), addr).ok());
    clients.push_back(std::move(*c));
  }
  ASSERT_TRUE(poll_until(*backend, [&] { return out.completions >= kClients; }));
  EXPECT_EQ(out.completions, kClients);
  for (std::int32_t fd : out.results) EXPECT_GE(fd, 0);
  EXPECT_TRUE(out.more);
  EXPECT_TRUE(op.in_flight());

  backend->cancel(op);
  EXPECT_TRUE(op.backend_state.cancel_requested);
  EXPECT_EQ(out.completions, kClients);  // cancel never delivers itself
  ASSERT_TRUE(poll_until(*backend, [&] { return !op.in_flight(); }));
  EXPECT_EQ(out.result, -ECANCELED);
  EXPECT_FALSE(out.more);
  EXPECT_EQ(backend->in_flight(), 0u);
}

// A completion function cancels the waiter queued behind it on the same fd:
// the retry loop re-reads the list head, so the cancelled op gets -ECANCELED
// and is never tried.
struct CancelNext {
  Outcome outcome;
  Backend* backend = nullptr;
  Operation* next = nullptr;
};

void cancel_next(Operation& op, Completion& c) {
  auto* self = static_cast<CancelNext*>(op.user);
  self->outcome.results.push_back(c.result);
  self->backend->cancel(*self->next);
}

TEST(EpollBackend, CompletionFunctionMayCancelTheNextWaiter) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair();
  char buf_a[2], buf_b[8];
  Operation a, b;
  CancelNext first;
  first.backend = backend.get();
  first.next = &b;
  Outcome second;
  prepare_recv(a, pair.first.get(), buf_a, sizeof(buf_a));
  a.on_complete = cancel_next;
  a.user = &first;
  prepare_recv(b, pair.first.get(), buf_b, sizeof(buf_b));
  watch(b, second);
  backend->submit(a);
  backend->submit(b);
  EXPECT_EQ(backend->poll(0ns), 0u);
  write_text(pair.second.get(), "abcdef");  // enough for both
  ASSERT_TRUE(poll_until(*backend, [&] { return backend->in_flight() == 0; }));
  EXPECT_EQ(first.outcome.results, std::vector<std::int32_t>{2});
  EXPECT_EQ(second.results, std::vector<std::int32_t>{-ECANCELED});
  EXPECT_TRUE(b.backend_state.cancel_requested);
}

TEST(EpollBackend, DeadlineAndTimeoutShareTheTimerHeap) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair();
  char buf[8];
  std::vector<std::string> order;
  Operation recv_op, late, early;
  Outcome recv_out = logged(order, "recv");
  Outcome late_out = logged(order, "late");
  Outcome early_out = logged(order, "early");
  prepare_recv(recv_op, pair.first.get(), buf, sizeof(buf));
  recv_op.deadline = 20ms;
  watch(recv_op, recv_out);
  prepare_timeout(late, 60ms);
  watch(late, late_out);
  prepare_timeout(early, 1ms);
  watch(early, early_out);
  backend->submit(late);
  backend->submit(recv_op);
  backend->submit(early);
  ASSERT_TRUE(poll_until(*backend, [&] { return backend->in_flight() == 0; }));
  EXPECT_EQ(recv_out.results, std::vector<std::int32_t>{-ETIMEDOUT});
  EXPECT_FALSE(recv_op.backend_state.cancel_requested);
  EXPECT_EQ(early_out.results, std::vector<std::int32_t>{0});
  EXPECT_EQ(late_out.results, std::vector<std::int32_t>{0});
  EXPECT_THAT(order, ElementsAre("early", "recv", "late"));
}

// Two sends on one socket whose buffer is full: the second parks behind the
// first instead of overtaking it, so the bytes arrive in submit order.
TEST(EpollBackend, ParkedSendsKeepTheirOrder) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair();
  std::vector<char> filler(1 << 16, 'f');
  for (;;) {  // fill the socket buffer
    const ssize_t n = ::send(pair.first.get(), filler.data(), filler.size(), MSG_DONTWAIT);
    if (n < 0) break;
  }
  const char a[] = "AAAA", b[] = "BBBB";
  Operation send_a, send_b;
  Outcome out_a, out_b;
  prepare_send(send_a, pair.first.get(), a, 4);
  watch(send_a, out_a);
  prepare_send(send_b, pair.first.get(), b, 4);
  watch(send_b, out_b);
  backend->submit(send_a);
  backend->submit(send_b);
  EXPECT_EQ(backend->poll(0ns), 0u);

  std::string tail;  // drain the reader until both sends are through
  std::vector<char> chunk(1 << 16);
  ASSERT_TRUE(poll_until(*backend, [&] {
    for (ssize_t n; (n = ::recv(pair.second.get(), chunk.data(), chunk.size(), MSG_DONTWAIT)) > 0;) {
      tail.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return out_a.completions > 0 && out_b.completions > 0;
  }));
  for (ssize_t n; (n = ::recv(pair.second.get(), chunk.data(), chunk.size(), MSG_DONTWAIT)) > 0;) {
    tail.append(chunk.data(), static_cast<std::size_t>(n));
  }
  EXPECT_EQ(out_a.result, 4);
  EXPECT_EQ(out_b.result, 4);
  ASSERT_GE(tail.size(), 8u);
  EXPECT_EQ(tail.substr(tail.size() - 8), "AAAABBBB");
}

// A poll op on an fd that is ready already (the edge passed before submit)
// completes at once; one that is not waits for the edge.
TEST(EpollBackend, PollChecksCurrentReadinessThenWaitsForTheEdge) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair();
  Operation writable, readable;
  Outcome w_out, r_out;
  prepare_poll(writable, pair.first.get(), POLLOUT);
  watch(writable, w_out);
  prepare_poll(readable, pair.first.get(), POLLIN);
  watch(readable, r_out);
  backend->submit(writable);
  backend->submit(readable);
  EXPECT_EQ(backend->poll(0ns), 1u);
  EXPECT_EQ(w_out.result, POLLOUT);
  EXPECT_EQ(r_out.completions, 0);
  write_text(pair.second.get(), "x");
  ASSERT_TRUE(poll_until(*backend, [&] { return r_out.completions > 0; }));
  EXPECT_EQ(r_out.result, POLLIN);
}

// read has no per-call non-blocking flag: the backend makes the fd
// O_NONBLOCK before trying, so a blocking socket does not stall the loop.
TEST(EpollBackend, ReadOnABlockingFdDoesNotBlockTheLoop) {
  auto backend = make();
  ASSERT_TRUE(backend);
  auto pair = stream_pair(0);
  char buf[8];
  Operation op;
  Outcome out;
  prepare_read(op, pair.first.get(), buf, sizeof(buf));
  watch(op, out);
  backend->submit(op);
  EXPECT_EQ(backend->poll(0ns), 0u);  // returns: parked, not blocked in read(2)
  write_text(pair.second.get(), "abc");
  ASSERT_TRUE(poll_until(*backend, [&] { return out.completions > 0; }));
  EXPECT_EQ(out.result, 3);
}

TEST(EpollBackend, WakeFromAnotherThreadEndsABlockedPoll) {
  auto backend = make();
  ASSERT_TRUE(backend);
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    backend->wake();
  });
  EXPECT_EQ(backend->poll(-1ns), 0u);  // returns: the wake is no completion
  waker.join();
  backend->wake();  // a wake before poll makes the next poll return too
  EXPECT_EQ(backend->poll(-1ns), 0u);
}

TEST(EpollBackend, DestructorCompletesWhatIsInFlightWithEcanceled) {
  auto pair = stream_pair();
  char buf[8];
  Operation queued, parked, timer;
  Outcome q_out, p_out, t_out;
  {
    auto backend = make();
    ASSERT_TRUE(backend);
    prepare_recv(parked, pair.first.get(), buf, sizeof(buf));
    watch(parked, p_out);
    prepare_timeout(timer, 1h);
    watch(timer, t_out);
    backend->submit(parked);
    backend->submit(timer);
    backend->poll(0ns);
    prepare_nop(queued);
    watch(queued, q_out);
    backend->submit(queued);
    EXPECT_EQ(backend->in_flight(), 3u);
  }
  EXPECT_EQ(q_out.results, std::vector<std::int32_t>{-ECANCELED});
  EXPECT_EQ(p_out.results, std::vector<std::int32_t>{-ECANCELED});
  EXPECT_EQ(t_out.results, std::vector<std::int32_t>{-ECANCELED});
}

}  // namespace
}  // namespace ringo::reactor
