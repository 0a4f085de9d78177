// The backend contract (reactor/backend.h, reactor/operation.h) on both
// backends, io_uring and epoll, driven through Loop::submit/cancel and loop
// turns. This file: nop and timeout ops; pipes (a parked read, end of file);
// read/write at an explicit offset on a regular file; the close op (closes,
// unregisters, cancels a recv in flight); cancellation (parked, queued,
// already completed, never submitted, timeout, accept); deadlines (-ETIMEDOUT,
// and no stray completion once the data came in time); exactly-once under
// churn (200 recvs, half cancelled); in_flight() and errors found at submit.
// TCP (accept, connect, send/recv and friends, poll, multishot accept) lives
// in backend_net_test.cc; the helpers both share are in backend_test_util.h.
//
// The helpers check on every submit and cancel that no completion is
// delivered from inside them, and in TearDown that the backend has nothing in
// flight; tests keep the loop turning after a completion to catch a second
// one; the fd-leak listener checks that no descriptor outlives a test. Timing
// checks are lower bounds only (busy 2-core machines).
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "syscall/events.h"
#include "tests/reactor/backend_test_util.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;
using testing::BackendTest;
using testing::must;
using testing::Op;
using testing::put;
using testing::tcp_pair;

std::string_view text(const char* buf, std::int32_t n) { return {buf, n > 0 ? std::size_t(n) : 0}; }

TEST_P(BackendTest, NopCompletesOnceWithZero) {
  Op op;
  prepare_nop(op);
  submit(op);
  ASSERT_TRUE(wait(op));
  settle();
  ASSERT_EQ(op.count(), 1u);
  EXPECT_EQ(op.result(), 0);
  EXPECT_FALSE(op.done[0].more);
  EXPECT_FALSE(op.in_flight());
}

TEST_P(BackendTest, TimeoutCompletesNoEarlierThanItsDuration) {
  Op op;
  prepare_timeout(op, 30ms);
  const std::int64_t start = now_ns();
  submit(op);
  ASSERT_TRUE(wait(op));
  EXPECT_GE(now_ns() - start, 30'000'000);
  settle();
  ASSERT_EQ(op.count(), 1u);
  EXPECT_EQ(op.result(), 0);
}

TEST_P(BackendTest, InFlightCountsOperationsUntilTheirFinalCompletion) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  char buf[8];
  Op nop, timer, recv;
  prepare_nop(nop);
  prepare_timeout(timer, 20ms);
  prepare_recv(recv, pair.first.get(), buf, sizeof buf);
  EXPECT_EQ(loop_->backend().in_flight(), 0u);
  submit(nop);
  submit(timer);
  submit(recv);
  EXPECT_EQ(loop_->backend().in_flight(), 3u);
  ASSERT_TRUE(wait(nop));
  put(pair.second.get(), "x");
  ASSERT_TRUE(wait(timer));
  ASSERT_TRUE(wait(recv));
  EXPECT_EQ(recv.result(), 1);
  EXPECT_EQ(loop_->backend().in_flight(), 0u);
}

TEST_P(BackendTest, BadDescriptorFailsAsACompletion) {
  int closed_number;
  {
    auto pipe = must(sys::pipe2());
    closed_number = pipe.read.get();
  }  // both ends closed: the number is free, and nothing on this thread reuses it
  char buf[8];
  Op op;
  prepare_recv(op, closed_number, buf, sizeof buf);
  submit(op);  // checks that the error is not delivered from inside submit
  ASSERT_TRUE(wait(op));
  settle();
  ASSERT_EQ(op.count(), 1u);
  EXPECT_EQ(op.result(), -EBADF);
}

TEST_P(BackendTest, PipeReadParksUntilAWriteArrives) {
  auto pipe = must(sys::pipe2());
  char in[16] = {};
  Op read;
  prepare_read(read, pipe.read.get(), in, sizeof in);
  submit(read);
  run_for(30ms);
  EXPECT_EQ(read.count(), 0u) << "a read of an empty pipe completed";
  Op write;
  prepare_write(write, pipe.write.get(), "ping", 4);
  submit(write);
  ASSERT_TRUE(wait(write));
  ASSERT_TRUE(wait(read));
  settle();
  ASSERT_EQ(write.count(), 1u);
  ASSERT_EQ(read.count(), 1u);
  EXPECT_EQ(write.result(), 4);
  EXPECT_EQ(read.result(), 4);
  EXPECT_EQ(text(in, read.result()), "ping");
}

TEST_P(BackendTest, PipeReadReturnsZeroAfterTheWriteEndCloses) {
  auto pipe = must(sys::pipe2());
  char in[16];
  Op read;
  prepare_read(read, pipe.read.get(), in, sizeof in);
  submit(read);
  run_for(20ms);
  EXPECT_EQ(read.count(), 0u);
  pipe.write.reset();
  ASSERT_TRUE(wait(read));
  EXPECT_EQ(read.result(), 0);
  // End of file stays: a second read does not wait for an edge that never comes.
  Op again;
  prepare_read(again, pipe.read.get(), in, sizeof in);
  EXPECT_EQ(finish(again), 0);
}

TEST_P(BackendTest, FileReadAndWriteAtAnExplicitOffset) {
  std::string path = ::testing::TempDir() + "ringo_backend_XXXXXX";
  const int raw = ::mkostemp(path.data(), O_CLOEXEC);
  ASSERT_GE(raw, 0) << path;
  ::unlink(path.c_str());
  sys::Fd file = sys::Fd::adopt(raw, sys::FdKind::file);

  Op write;
  prepare_write(write, file.get(), "abcdef", 6, 100);
  EXPECT_EQ(finish(write), 6);
  char buf[16] = {};
  Op read;
  prepare_read(read, file.get(), buf, 6, 100);
  EXPECT_EQ(finish(read), 6);
  EXPECT_EQ(text(buf, read.result()), "abcdef");
  Op across;  // reads the hole before the data as zeros
  prepare_read(across, file.get(), buf, 8, 96);
  EXPECT_EQ(finish(across), 8);
  EXPECT_EQ(std::string(buf, 8), std::string("\0\0\0\0abcd", 8));
  Op past_end;
  prepare_read(past_end, file.get(), buf, 8, 106);
  EXPECT_EQ(finish(past_end), 0);
  EXPECT_EQ(::lseek(file.get(), 0, SEEK_CUR), 0) << "an explicit offset moved the file position";

  Op at_position;  // kCurrentPosition: uses and advances the file position
  prepare_write(at_position, file.get(), "xy", 2);
  EXPECT_EQ(finish(at_position), 2);
  EXPECT_EQ(::lseek(file.get(), 0, SEEK_CUR), 2);
  Op head;
  prepare_read(head, file.get(), buf, 2, 0);
  EXPECT_EQ(finish(head), 2);
  EXPECT_EQ(text(buf, head.result()), "xy");
}

TEST_P(BackendTest, CloseOpClosesTheDescriptorAndTheRegistryForgetsIt) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  char buf[8];
  Op used;  // an op first, so that the backend knows the fd (epoll: registered)
  put(pair.second.get(), "x");
  prepare_recv(used, pair.first.get(), buf, sizeof buf);
  EXPECT_EQ(finish(used), 1);

  const int number = pair.first.get();
  EXPECT_EQ(sys::fd_registry::tag_of(number), pair.first.tag());
  Op close;
  prepare_close(close, std::move(pair.first));
  EXPECT_FALSE(pair.first.valid());
  EXPECT_EQ(close.fd, number);
  EXPECT_EQ(finish(close), 0);
  errno = 0;
  EXPECT_EQ(::fcntl(number, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(sys::fd_registry::tag_of(number), 0u);
}

TEST_P(BackendTest, CloseOpCancelsARecvInFlight) {
  auto pair = tcp_pair();
  char buf[16];
  Op recv;
  prepare_recv(recv, pair.server.get(), buf, sizeof buf);
  submit(recv);
  run_for(20ms);
  ASSERT_EQ(recv.count(), 0u);
  const int number = pair.server.get();
  Op close;
  prepare_close(close, std::move(pair.server));
  submit(close);
  ASSERT_TRUE(wait(close));
  ASSERT_TRUE(wait(recv));
  settle();
  ASSERT_EQ(recv.count(), 1u);
  EXPECT_EQ(recv.result(), -ECANCELED);
  ASSERT_EQ(close.count(), 1u);
  EXPECT_EQ(close.result(), 0);
  errno = 0;
  EXPECT_EQ(::fcntl(number, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(sys::fd_registry::tag_of(number), 0u);
}

TEST_P(BackendTest, CancelledRecvCompletesOnceAndTheSocketStillWorks) {
  auto pair = tcp_pair();
  char buf[16];
  Op recv;
  prepare_recv(recv, pair.server.get(), buf, sizeof buf);
  submit(recv);
  run_for(20ms);
  ASSERT_EQ(recv.count(), 0u);
  cancel(recv);
  ASSERT_TRUE(wait(recv));
  settle();
  ASSERT_EQ(recv.count(), 1u);
  EXPECT_EQ(recv.result(), -ECANCELED);

  Op again;
  prepare_recv(again, pair.server.get(), buf, sizeof buf);
  submit(again);
  put(pair.client.get(), "hello");
  ASSERT_TRUE(wait(again));
  EXPECT_EQ(again.result(), 5);
  EXPECT_EQ(text(buf, again.result()), "hello");
}

TEST_P(BackendTest, CancelBeforeTheLoopTurnsCompletesOnce) {
  // Cancelled while only queued (io_uring: no SQE submitted yet; epoll: not armed).
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  char buf[8];
  Op recv;
  prepare_recv(recv, pair.first.get(), buf, sizeof buf);
  submit(recv);
  cancel(recv);
  ASSERT_TRUE(wait(recv));
  settle();
  ASSERT_EQ(recv.count(), 1u);
  EXPECT_EQ(recv.result(), -ECANCELED);
}

TEST_P(BackendTest, CancelAfterCompletionIsANoOp) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  Op nop;
  prepare_nop(nop);
  EXPECT_EQ(finish(nop), 0);
  cancel(nop);
  char buf[8];
  Op recv;
  put(pair.second.get(), "x");
  prepare_recv(recv, pair.first.get(), buf, sizeof buf);
  EXPECT_EQ(finish(recv), 1);
  cancel(recv);
  settle();
  EXPECT_EQ(nop.count(), 1u);
  EXPECT_EQ(recv.count(), 1u);
}

TEST_P(BackendTest, CancelOfANeverSubmittedOpIsANoOp) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  char buf[8];
  Op recv, blank;
  prepare_recv(recv, pair.first.get(), buf, sizeof buf);
  cancel(recv);
  cancel(blank);
  settle();
  EXPECT_EQ(recv.count(), 0u);
  EXPECT_EQ(blank.count(), 0u);
  EXPECT_FALSE(recv.in_flight());
}

TEST_P(BackendTest, CancelledTimeoutCompletesWithEcanceled) {
  Op timer;
  prepare_timeout(timer, 10s);
  const std::int64_t start = now_ns();
  submit(timer);
  run_for(20ms);
  ASSERT_EQ(timer.count(), 0u);
  cancel(timer);
  ASSERT_TRUE(wait(timer, 5'000ms));
  EXPECT_LT(now_ns() - start, 5'000'000'000);
  settle();
  ASSERT_EQ(timer.count(), 1u);
  EXPECT_EQ(timer.result(), -ECANCELED);
}

TEST_P(BackendTest, CancelledAcceptCompletesWithEcanceledAndNoDescriptor) {
  sys::Fd listener = testing::listener_on(sys::SockAddr::ipv4_loopback(0));
  sys::SockAddr peer;
  Op accept;
  prepare_accept(accept, listener.get(), &peer);
  submit(accept);
  run_for(20ms);
  ASSERT_EQ(accept.count(), 0u);
  cancel(accept);
  ASSERT_TRUE(wait(accept));
  settle();
  ASSERT_EQ(accept.count(), 1u);
  EXPECT_EQ(accept.result(), -ECANCELED);
  EXPECT_EQ(accept.done[0].fd_number, -1);
}

TEST_P(BackendTest, RecvDeadlinePassesWithEtimedout) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  char buf[8];
  Op recv;
  prepare_recv(recv, pair.first.get(), buf, sizeof buf);
  recv.deadline = 30ms;
  const std::int64_t start = now_ns();
  submit(recv);
  ASSERT_TRUE(wait(recv));
  EXPECT_GE(now_ns() - start, 30'000'000);
  settle();
  ASSERT_EQ(recv.count(), 1u);
  EXPECT_EQ(recv.result(), -ETIMEDOUT);

  Op again;  // the socket still works after a deadline
  prepare_recv(again, pair.first.get(), buf, sizeof buf);
  put(pair.second.get(), "ok");
  EXPECT_EQ(finish(again), 2);
}

TEST_P(BackendTest, RecvWithADeadlineThatGetsDataHasNoStrayCompletion) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  char early_buf[16], late_buf[16];
  // Data already there: completes at once, long before its 50 ms deadline.
  put(pair.second.get(), "early");
  Op early;
  prepare_recv(early, pair.first.get(), early_buf, sizeof early_buf);
  early.deadline = 50ms;
  submit(early);
  ASSERT_TRUE(wait(early));
  // Data arriving while the recv waits (a generous deadline: a busy machine
  // must not turn this into a timeout).
  Op late;
  prepare_recv(late, pair.first.get(), late_buf, sizeof late_buf);
  late.deadline = 1000ms;
  const std::int64_t late_start = now_ns();
  submit(late);
  run_for(10ms);
  put(pair.second.get(), "late");
  ASSERT_TRUE(wait(late));
  // Run past both deadlines, and 100 ms more: nothing else may arrive.
  (void)run_until([&] { return now_ns() - late_start > 1'100'000'000; }, 5'000ms);
  ASSERT_EQ(early.count(), 1u);
  ASSERT_EQ(late.count(), 1u);
  EXPECT_EQ(early.result(), 5);
  EXPECT_EQ(text(early_buf, early.result()), "early");
  EXPECT_EQ(late.result(), 4);
  EXPECT_EQ(text(late_buf, late.result()), "late");
}

TEST_P(BackendTest, EveryOpCompletesExactlyOnceUnderChurn) {
  constexpr int kOps = 200;
  std::vector<sys::SocketPair> pairs;
  for (int i = 0; i < kOps; ++i) pairs.push_back(must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK)));
  auto ops = std::make_unique<Op[]>(kOps);
  std::vector<std::array<char, 8>> bufs(kOps);
  auto start = [&](int i) {
    prepare_recv(ops[i], pairs[i].first.get(), bufs[i].data(), bufs[i].size());
    submit(ops[i]);
  };
  // Half parked in the kernel / armed, half only queued when the churn starts.
  for (int i = 0; i < kOps / 2; ++i) start(i);
  loop_->run_once(0ns);
  for (int i = kOps / 2; i < kOps; ++i) start(i);
  for (int i = 0; i < kOps; ++i) {
    if (i % 2 == 0) {
      cancel(ops[i]);
    } else {
      put(pairs[i].second.get(), "x");
    }
  }
  ASSERT_TRUE(run_until([&] {
    for (int i = 0; i < kOps; ++i) {
      if (ops[i].pending) return false;
    }
    return true;
  }));
  settle();
  for (int i = 0; i < kOps; ++i) {
    ASSERT_EQ(ops[i].count(), 1u) << "op " << i;
    if (i % 2 == 0) {
      EXPECT_EQ(ops[i].result(), -ECANCELED) << "op " << i;
    } else {
      EXPECT_EQ(ops[i].result(), 1) << "op " << i;
      EXPECT_EQ(bufs[i][0], 'x') << "op " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, testing::kAllBackends, testing::backend_name);

}  // namespace
}  // namespace ringo::reactor
