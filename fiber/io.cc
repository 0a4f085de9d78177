// See io.h for the semantics and invariants. Every call is one
// reactor::Operation on the calling fiber's stack, run by perform():
//
//   check the token -> submit -> park until done; on a poke with the token
//   cancelled: Loop::cancel once, then park until done -> map the result.
#include "fiber/io.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "fiber/scheduler.h"
#include "reactor/clock.h"
#include "reactor/loop.h"
#include "reactor/operation.h"

namespace ringo::io {
namespace {

// A call's names: what its errors say and why its fiber is parked (literals).
struct Call {
  const char* what;
  const char* reason;
};
constexpr Call kAccept{"accept", "io accept"};
constexpr Call kConnect{"connect", "io connect"};
constexpr Call kRead{"read", "io read"};
constexpr Call kRecv{"recv", "io recv"};
constexpr Call kWrite{"write", "io write"};
constexpr Call kSend{"send", "io send"};
constexpr Call kWritev{"writev", "io writev"};
constexpr Call kPoll{"poll", "io poll"};

constexpr const char* kCancelledHint = "cancelled by its token";
constexpr const char* kDeadlineHint = "its token's deadline passed";
constexpr std::int64_t kFarDeadlineNs = std::int64_t{1} << 62;  // ~146 years

// What the completion function hands to the parked fiber (in its frame).
struct Wait {
  fiber::Scheduler* scheduler = nullptr;
  fiber::Fiber* fiber = nullptr;
  bool done = false;
  std::int32_t result = 0;
  sys::Fd fd;  // accept: the new connection
};

// On the loop's thread, from the backend's poll: the final completion (no
// call here submits a multishot operation).
void on_complete(reactor::Operation& op, reactor::Completion& c) {
  Wait& w = *static_cast<Wait*>(op.user);
  w.result = c.result;
  w.fd = std::move(c.fd);
  w.done = true;
  w.scheduler->unpark(*w.fiber);
}

// On the cancelling thread (any): wakes the fiber, which cancels the
// operation itself on its loop's thread. A poke that arrives after the call
// returned is a stale wake-up the scheduler allows (scheduler.h).
void poke(void* ref) { ringo::unpark(*static_cast<const fiber::FiberRef*>(ref)); }

fiber::Scheduler& scheduler_or_die(const Call& call) {
  fiber::Scheduler* s = fiber::Scheduler::current();
  if (s == nullptr || s->running() == nullptr) {
    std::fprintf(stderr,
                 "ringo: broken invariant: io::%s() called outside a fiber (fiber I/O parks the calling "
                 "fiber; a plain thread or a loop callback has none: run the call in a fiber)\n",
                 call.what);
    std::abort();
  }
  return *s;
}

sys::Error error_of(const Call& call, int errnum, const CancelToken& token, std::int64_t now_ns) {
  if ((errnum == ECANCELED || errnum == ETIMEDOUT) && token.cancelled()) {
    return sys::Error(call.what, ECANCELED, nullptr, kCancelledHint);
  }
  if (errnum == ETIMEDOUT && token.has_deadline() && now_ns >= token.deadline_ns()) {
    return sys::Error(call.what, ETIMEDOUT, nullptr, kDeadlineHint);
  }
  return sys::Error(call.what, errnum);
}

// Runs `op` (prepared by the caller) to its final completion on the running
// fiber's loop; the result (>= 0) or the error. `fd` receives an accepted
// descriptor.
sys::Result<std::int32_t> perform(const Call& call, reactor::Operation& op, const CancelToken& token,
                                  sys::Fd* fd = nullptr) {
  fiber::Scheduler& s = scheduler_or_die(call);
  std::int64_t now = reactor::now_ns();
  if (const int err = token.error(now); err != 0) return error_of(call, err, token, now);
  // The backend counts from submit, a moment after `now`: never early. One
  // beyond kFarDeadlineNs is none (the backend adds it to its own clock).
  if (token.has_deadline() && token.deadline_ns() - now < kFarDeadlineNs) {
    op.deadline = std::chrono::nanoseconds(token.deadline_ns() - now);
  }

  Wait w;
  w.scheduler = &s;
  w.fiber = s.running();
  op.on_complete = &on_complete;
  op.user = &w;
  reactor::Loop& loop = s.loop();
  loop.submit(op);
  {
    fiber::FiberRef self = w.fiber->ref();
    // Runs poke at once if the token was cancelled since the check above:
    // harmless (we are running), and the loop below sees the cancellation.
    const CancelCallback on_cancel(token, &poke, &self);
    bool cancel_sent = false;
    while (!w.done) {
      // Checked before every park, so no cancellation is lost: one made on
      // this thread (another fiber) runs only while we are parked, and one
      // from another thread reaches us through the inbox, which this thread
      // drains only after we have parked.
      if (!cancel_sent && token.cancelled()) {
        loop.cancel(op);  // completes it from the next poll, never from here
        cancel_sent = true;
      }
      s.park(call.reason);  // may return spuriously: the loop re-checks
    }
  }  // ~CancelCallback: waits for a poke running on another thread

  if (w.result >= 0) {
    if (fd != nullptr) *fd = std::move(w.fd);
    return w.result;
  }
  now = reactor::now_ns();
  return error_of(call, -w.result, token, now);
}

sys::Result<std::size_t> bytes(sys::Result<std::int32_t> r) {
  if (!r) return r.error();
  return static_cast<std::size_t>(*r);
}

}  // namespace

sys::Result<sys::Fd> accept(int listener, const CancelToken& token) { return accept(listener, nullptr, token); }

sys::Result<sys::Fd> accept(int listener, sys::SockAddr* peer, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_accept(op, listener, peer, SOCK_NONBLOCK);
  sys::Fd fd;
  if (sys::Result<std::int32_t> r = perform(kAccept, op, token, &fd); !r) return r.error();
  if (!fd) {
    // The contract puts every accepted descriptor in Completion::fd.
    std::fprintf(stderr, "ringo: broken invariant: accept completed without a descriptor\n");
    std::abort();
  }
  return fd;
}

sys::Result<void> connect(int fd, const sys::SockAddr& addr, const CancelToken& token) {
  sys::SockAddr target = addr;  // the backend reads it until the final completion
  reactor::Operation op;
  reactor::prepare_connect(op, fd, &target);
  if (sys::Result<std::int32_t> r = perform(kConnect, op, token); !r) return r.error();
  return sys::ok();
}

sys::Result<std::size_t> read(int fd, std::span<std::byte> buf, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_read(op, fd, buf.data(), buf.size());
  return bytes(perform(kRead, op, token));
}

sys::Result<std::size_t> recv(int fd, std::span<std::byte> buf, const CancelToken& token) {
  return recv(fd, buf, 0, token);
}

sys::Result<std::size_t> recv(int fd, std::span<std::byte> buf, int flags, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_recv(op, fd, buf.data(), buf.size(), flags);
  return bytes(perform(kRecv, op, token));
}

sys::Result<std::size_t> write(int fd, std::span<const std::byte> data, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_write(op, fd, data.data(), data.size());
  return bytes(perform(kWrite, op, token));
}

sys::Result<std::size_t> send(int fd, std::span<const std::byte> data, const CancelToken& token) {
  return send(fd, data, 0, token);
}

sys::Result<std::size_t> send(int fd, std::span<const std::byte> data, int flags, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_send(op, fd, data.data(), data.size(), flags);
  return bytes(perform(kSend, op, token));
}

sys::Result<std::size_t> writev(int fd, std::span<const iovec> iov, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_writev(op, fd, iov.data(), static_cast<int>(iov.size()));
  return bytes(perform(kWritev, op, token));
}

sys::Result<std::uint32_t> poll(int fd, std::uint32_t mask, const CancelToken& token) {
  reactor::Operation op;
  reactor::prepare_poll(op, fd, mask);
  sys::Result<std::int32_t> r = perform(kPoll, op, token);
  if (!r) return r.error();
  return static_cast<std::uint32_t>(*r);
}

namespace {

// write_all/send_all: `step` is one write or send.
template <class Step>
sys::Result<void> all(const Call& call, std::span<const std::byte> data, Step step) {
  while (!data.empty()) {
    sys::Result<std::size_t> n = step(data);
    if (!n) return n.error();
    // write(2) of a non-empty buffer returns at least 1 or fails; a 0 would
    // spin here forever.
    if (*n == 0) return sys::Error(call.what, EIO, nullptr, "wrote 0 bytes");
    data = data.subspan(*n);
  }
  return sys::ok();
}

}  // namespace

sys::Result<void> write_all(int fd, std::span<const std::byte> data, const CancelToken& token) {
  return all(kWrite, data, [&](std::span<const std::byte> rest) { return write(fd, rest, token); });
}

sys::Result<void> send_all(int fd, std::span<const std::byte> data, const CancelToken& token) {
  return all(kSend, data, [&](std::span<const std::byte> rest) { return send(fd, rest, 0, token); });
}

}  // namespace ringo::io
