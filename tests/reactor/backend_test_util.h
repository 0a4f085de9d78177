// Helpers for the backend contract tests (backend_test.cc, backend_net_test.cc):
// Op, an operation that records each completion it gets; BackendTest, the
// LoopTest fixture with submit/cancel/wait wrappers that check the contract's
// "never from inside submit or cancel" and "nothing left in flight"; and TCP
// loopback plumbing.
//
// An Op that is destroyed while still in flight (a test that failed half-way)
// is cancelled and waited for first, so a failing test reports its failure
// instead of crashing in a backend that holds a dead operation.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "reactor/clock.h"
#include "reactor/loop.h"
#include "reactor/operation.h"
#include "syscall/fd.h"
#include "syscall/fd_registry.h"
#include "syscall/io.h"
#include "syscall/socket.h"
#include "tests/reactor/backend_fixture.h"

namespace ringo::reactor::testing {

// What one completion delivered. `fd_number` is the descriptor Completion::fd
// held (-1: none); `fd` owns it when the op takes descriptors.
struct Record {
  std::int32_t result = 0;
  bool more = false;
  int fd_number = -1;
  sys::Fd fd;
};

struct Op : Operation {
  std::vector<Record> done;
  bool pending = false;  // submitted, final completion not seen yet
  bool take_fd = true;   // false: leave Completion::fd for the backend to close
  Loop* loop = nullptr;  // set by BackendTest::submit

  Op() {
    on_complete = &Op::record;
    user = this;
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  ~Op() {
    if (!pending || loop == nullptr) return;
    ADD_FAILURE() << to_string(kind) << " op destroyed in flight; cancelling it";
    loop->cancel(*this);
    const std::int64_t until = now_ns() + 5'000'000'000;
    while (pending && now_ns() < until) loop->run_once(std::chrono::milliseconds(10));
    if (pending) {
      std::fprintf(stderr, "a cancelled op never completed; aborting before the backend touches it\n");
      std::abort();
    }
  }

  static void record(Operation& op, Completion& c) {
    Op& self = *static_cast<Op*>(op.user);
    Record r{c.result, c.more, c.fd.get(), {}};
    if (self.take_fd) r.fd = std::move(c.fd);
    if (!c.more) self.pending = false;
    self.done.push_back(std::move(r));
  }
  std::size_t count() const { return done.size(); }
  // The last completion's result (INT32_MIN: none yet).
  std::int32_t result() const { return done.empty() ? INT32_MIN : done.back().result; }
};

// Setup steps that cannot fail in a sane test environment: an error throws,
// and GoogleTest reports it as the test's failure.
template <class T>
T must(sys::Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message());
  return std::move(*r);
}
inline void must(sys::Result<void> r) {
  if (!r) throw std::runtime_error(r.error().message());
}

// Writes all of `text` with one plain write(2) (small amounts only).
inline void put(int fd, std::string_view text) {
  const std::size_t n = must(sys::write(fd, std::as_bytes(std::span(text.data(), text.size()))));
  if (n != text.size()) throw std::runtime_error("short write");
}

inline sys::Fd listener_on(const sys::SockAddr& where, int backlog = 16, int flags = SOCK_NONBLOCK) {
  sys::Fd fd = must(sys::socket(where.family(), SOCK_STREAM | flags));
  must(sys::bind(fd.get(), where));
  must(sys::listen(fd, backlog));
  return fd;
}

struct TcpPair {
  sys::Fd client;
  sys::Fd server;
};

// A connected loopback pair, both ends non-blocking, made without the loop.
inline TcpPair tcp_pair(const sys::SockAddr& loopback = sys::SockAddr::ipv4_loopback(0)) {
  // A blocking listener: accept4 waits for the handshake's last ACK, which
  // loopback may deliver (softirq) after connect has returned.
  sys::Fd listener = listener_on(loopback, 1, 0);
  TcpPair p;
  p.client = must(sys::socket(loopback.family(), SOCK_STREAM));
  must(sys::connect(p.client.get(), must(sys::getsockname(listener.get()))));
  p.server = must(sys::accept4(listener.get(), nullptr, SOCK_NONBLOCK));
  ::fcntl(p.client.get(), F_SETFL, ::fcntl(p.client.get(), F_GETFL) | O_NONBLOCK);
  return p;
}

class BackendTest : public LoopTest {
 protected:
  void TearDown() override {
    if (loop_) {
      EXPECT_EQ(loop_->backend().in_flight(), 0u) << "operations left in flight";
    }
    LoopTest::TearDown();
  }

  void submit(Op& op) {
    const std::size_t before = op.count();
    op.loop = loop_.get();
    op.pending = true;
    loop_->submit(op);
    EXPECT_EQ(op.count(), before) << "submit delivered a completion itself";
  }
  void cancel(Op& op) {
    const std::size_t before = op.count();
    loop_->cancel(op);
    EXPECT_EQ(op.count(), before) << "cancel delivered a completion itself";
  }
  // Runs the loop until `op`'s final completion (false if `limit` passed first).
  bool wait(const Op& op, std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    return run_until([&] { return !op.pending; }, limit);
  }
  // submit + wait; the result, or INT32_MIN when it did not complete in time.
  std::int32_t finish(Op& op) {
    submit(op);
    if (!wait(op)) {
      ADD_FAILURE() << to_string(op.kind) << " did not complete within 10 s";
      return INT32_MIN;
    }
    return op.result();
  }
  void run_for(std::chrono::milliseconds d) { (void)run_until([] { return false; }, d); }
  // Loop turns for a stray second completion to show up, if there is one.
  void settle() { run_for(std::chrono::milliseconds(30)); }
};

}  // namespace ringo::reactor::testing
