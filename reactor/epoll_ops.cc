// The epoll backend's operations: one non-blocking syscall per attempt, and
// busy-poll setup. The backend proper (queues, registration, timers, the
// order of attempts) is epoll_backend.cc; see its head comment for the whole
// design. Where epoll needs care to return what io_uring returns for the same
// event (connect, poll, multishot accept errors), the comment says so.
//
// recv_pooled imitates io_uring's provided buffer ring: the pool is checked
// first (empty: -ENOBUFS, as the kernel answers whether data is there or
// not), a buffer is taken only for the recv syscall itself and put back on
// EAGAIN, end of stream or error, so a parked recv_pooled holds no buffer.
//
// Invariants:
//  - Nothing here blocks: recv/recv_pooled/send/sendmsg carry MSG_DONTWAIT,
//    and the fds of accept/connect/read/write/writev were made O_NONBLOCK by
//    the backend before their first attempt.
//  - EAGAIN (== EWOULDBLOCK on Linux) means "park"; EINTR means "try again
//    now"; every other errno is the operation's result, as io_uring gives it.
//  - send/sendmsg add MSG_NOSIGNAL: a peer that went away is EPIPE, never a
//    SIGPIPE that kills the server. writev/write have no such flag, exactly
//    as with io_uring's IORING_OP_WRITEV on a socket.
//
// Rejected: preadv2/pwritev2 with RWF_NOWAIT for read/write instead of
// O_NONBLOCK (regular files then return EAGAIN on a page-cache miss, and a
// regular file cannot be added to epoll, so the op could never be retried);
// recv_pooled taking its buffer when it parks (every idle connection would
// pin one: the cost the pool exists to remove); FIONREAD before taking one
// (a syscall per attempt to save a free-list pop).
#include "reactor/internal/epoll_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <span>
#include <string>

#include <fmt/format.h>

#include "reactor/internal/buffer_pool.h"
#include "syscall/io.h"
#include "syscall/log.h"
#include "syscall/socket.h"
#include "syscall/sockopt.h"

// Linux 6.9 (include/uapi/linux/eventpoll.h); glibc 2.36 / Debian 12 headers
// predate it.
#ifndef EPIOCSPARAMS
struct epoll_params {
  std::uint32_t busy_poll_usecs;
  std::uint16_t busy_poll_budget;
  std::uint8_t prefer_busy_poll;
  std::uint8_t __pad;  // must be zero
};
#define EPIOCSPARAMS _IOW(0x8A, 0x01, struct epoll_params)
#endif

namespace ringo::reactor::internal {
namespace {

// The kernel's default budget (BUSY_POLL_BUDGET); more than 64
// (NAPI_POLL_WEIGHT) would need CAP_NET_ADMIN.
constexpr std::uint16_t kBusyPollBudget = 8;

// A syscall's return as a completion: bytes (or 0) on success, -errno on
// failure, `again` on EAGAIN. Reads errno at once (see result.h).
Try from_syscall(long n, Completion& out) {
  if (n >= 0) {
    out.result = static_cast<std::int32_t>(n);
    return Try::done;
  }
  if (errno == EAGAIN) return Try::again;
  out.result = -errno;
  return Try::done;
}

template <class T>
Try from_result(const sys::Result<T>& r, Completion& out) {
  if (r) {
    out.result = static_cast<std::int32_t>(*r);
    return Try::done;
  }
  if (r.error().is(EAGAIN)) return Try::again;
  out.result = -r.error().errnum();
  return Try::done;
}

// EINTR-retrying wrappers: a non-blocking call is interrupted only by a
// signal arriving mid-copy, and the retry cannot block.
template <class F>
long retry_eintr(F call) {
  long n;
  do {
    n = call();
  } while (n < 0 && errno == EINTR);
  return n;
}

Try try_accept(Operation& op, Completion& out) {
  const bool multishot = op.kind == OpKind::accept_multishot;
  for (;;) {
    sys::Result<sys::Fd> fd = sys::accept4(op.fd, multishot ? nullptr : op.addr, op.flags);
    if (fd) {
      out.result = fd->get();
      out.fd = std::move(*fd);
      out.more = multishot;  // multishot: stays parked, as IORING_CQE_F_MORE says
      return Try::done;
    }
    if (fd.error().is(EINTR)) continue;
    if (fd.error().is(EAGAIN)) return Try::again;
    // EMFILE, ENFILE, ENOBUFS...: final even for multishot (io_uring ends a
    // multishot accept on an error too); the caller re-submits when it can.
    out.result = -fd.error().errnum();
    return Try::done;
  }
}

// First attempt: connect(2). EINPROGRESS: wait for EPOLLOUT, then SO_ERROR
// says how it ended. A second connect(2) would say it too (EISCONN, or the
// error), but SO_ERROR is the documented way and clears the error.
Try try_connect(Operation& op, Completion& out) {
  EpollScratch& s = epoll_scratch(op);
  if (!s.connecting) {
    if (op.addr == nullptr) {
      out.result = -EFAULT;  // what the kernel says for a null address
      return Try::done;
    }
    sys::Result<void> r = sys::connect(op.fd, *op.addr);
    if (r) {
      out.result = 0;
      return Try::done;
    }
    if (!r.error().is(EINPROGRESS)) {
      // EAGAIN here is AF_UNIX's full backlog, not "in progress": final, as
      // io_uring reports it too.
      out.result = -r.error().errnum();
      return Try::done;
    }
    s.connecting = true;
    return Try::again;
  }
  sys::Result<int> err = sys::get_option(op.fd, sys::opt::error);
  if (!err || *err != 0) {
    out.result = err ? -*err : -err.error().errnum();
    return Try::done;
  }
  // No error yet: an EPOLLHUP/EPOLLERR wake-up of the other direction, or an
  // edge from before. Connected only once the socket is writable.
  pollfd p{op.fd, POLLOUT, 0};
  if (retry_eintr([&] { return ::poll(&p, 1, 0); }) > 0 && (p.revents & POLLOUT)) {
    out.result = 0;
    return Try::done;
  }
  return Try::again;
}

// Checks readiness now: with edge-triggered epoll the edge may already have
// passed (data that arrived before the op was submitted). io_uring's
// poll_add checks the same way before it waits.
Try try_poll(Operation& op, Completion& out) {
  pollfd p{op.fd, static_cast<short>(op.poll_mask), 0};
  const long n = retry_eintr([&] { return ::poll(&p, 1, 0); });
  if (n < 0) return from_syscall(n, out);
  if (p.revents & POLLNVAL) {
    out.result = -EBADF;
    return Try::done;
  }
  const auto fired = static_cast<std::uint32_t>(p.revents) & (op.poll_mask | POLLERR | POLLHUP);
  if (fired == 0) return Try::again;
  out.result = static_cast<std::int32_t>(fired);
  return Try::done;
}

Try try_read(Operation& op, Completion& out) {
  if (op.offset == Operation::kCurrentPosition) {
    const std::span<std::byte> buf(static_cast<std::byte*>(op.buf), op.len);
    for (;;) {
      auto r = sys::read(op.fd, buf);
      if (r || !r.error().is(EINTR)) return from_result(r, out);
    }
  }
  return from_syscall(
      retry_eintr([&] { return ::pread(op.fd, op.buf, op.len, static_cast<off_t>(op.offset)); }), out);
}

Try try_write(Operation& op, Completion& out) {
  if (op.offset == Operation::kCurrentPosition) {
    const std::span<const std::byte> buf(static_cast<const std::byte*>(op.buf), op.len);
    for (;;) {
      auto r = sys::write(op.fd, buf);
      if (r || !r.error().is(EINTR)) return from_result(r, out);
    }
  }
  return from_syscall(
      retry_eintr([&] { return ::pwrite(op.fd, op.buf, op.len, static_cast<off_t>(op.offset)); }), out);
}

Try try_writev(Operation& op, Completion& out) {
  if (op.iovcnt < 0 || (op.iovcnt > 0 && op.iov == nullptr)) {
    out.result = -EINVAL;
    return Try::done;
  }
  const std::span<const iovec> iov(op.iov, static_cast<std::size_t>(op.iovcnt));
  for (;;) {
    auto r = sys::writev(op.fd, iov);
    if (r || !r.error().is(EINTR)) return from_result(r, out);
  }
}

// The backend answers -EOPNOTSUPP itself when it has no pool.
Try try_recv_pooled(Operation& op, Completion& out, BufferPool& pool) {
  std::uint16_t id = 0;
  if (!pool.take(id)) {
    out.result = -ENOBUFS;
    return Try::done;
  }
  const long n =
      retry_eintr([&] { return ::recv(op.fd, pool.data(id), pool.buffer_size(), op.flags | MSG_DONTWAIT); });
  if (n > 0) {
    out.result = static_cast<std::int32_t>(n);
    out.buffer = pool.lend(id, static_cast<std::uint32_t>(n));
    return Try::done;
  }
  pool.put(id);
  return from_syscall(n, out);
}

}  // namespace

Try try_operation(Operation& op, Completion& out, BufferPool* pool) {
  const int nosignal = MSG_NOSIGNAL | MSG_DONTWAIT;
  switch (op.kind) {
    case OpKind::accept:
    case OpKind::accept_multishot:
      return try_accept(op, out);
    case OpKind::connect:
      return try_connect(op, out);
    case OpKind::recv:
      return from_syscall(retry_eintr([&] { return ::recv(op.fd, op.buf, op.len, op.flags | MSG_DONTWAIT); }),
                          out);
    case OpKind::recv_pooled:
      if (pool == nullptr) break;
      return try_recv_pooled(op, out, *pool);
    case OpKind::send:
      return from_syscall(retry_eintr([&] { return ::send(op.fd, op.buf, op.len, op.flags | nosignal); }), out);
    case OpKind::sendmsg:
      if (op.msg == nullptr) {
        out.result = -EFAULT;
        return Try::done;
      }
      return from_syscall(retry_eintr([&] { return ::sendmsg(op.fd, op.msg, op.flags | nosignal); }), out);
    case OpKind::writev:
      return try_writev(op, out);
    case OpKind::read:
      return try_read(op, out);
    case OpKind::write:
      return try_write(op, out);
    case OpKind::poll:
      return try_poll(op, out);
    case OpKind::nop:
    case OpKind::close:
    case OpKind::timeout:
      break;  // the backend completes these itself
  }
  out.result = -EINVAL;
  return Try::done;
}

Where park_list(OpKind kind) {
  switch (kind) {
    case OpKind::accept:
    case OpKind::accept_multishot:
    case OpKind::recv:
    case OpKind::recv_pooled:
    case OpKind::read:
      return Where::readers;
    case OpKind::poll:
      return Where::pollers;
    default:
      return Where::writers;
  }
}

bool needs_nonblocking_fd(OpKind kind) {
  switch (kind) {
    case OpKind::accept:
    case OpKind::accept_multishot:
    case OpKind::connect:
    case OpKind::read:
    case OpKind::write:
    case OpKind::writev:
      return true;
    default:
      return false;
  }
}

void make_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) (void)::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

BusyPoll apply_busy_poll(int epfd, std::chrono::microseconds usecs) {
  if (usecs.count() <= 0) return BusyPoll::off;
  epoll_params params{};
  params.busy_poll_usecs = static_cast<std::uint32_t>(usecs.count());
  params.busy_poll_budget = kBusyPollBudget;
  if (::ioctl(epfd, EPIOCSPARAMS, &params) == 0) return BusyPoll::epoll;
  const int err = errno;
  static std::atomic<bool> logged{false};
  const bool first = !logged.exchange(true, std::memory_order_relaxed);
  if (err == EPERM) {
    if (first) {
      sys::log(sys::LogLevel::warn, "epoll: busy poll {}us refused: EPIOCSPARAMS: EPERM: {}", usecs.count(),
               sys::opt::kNeedsNetAdmin);
    }
    return BusyPoll::refused;
  }
  // ENOTTY/EINVAL: a kernel before 6.9 has no EPIOCSPARAMS.
  if (first) {
    sys::log(sys::LogLevel::info,
             "epoll: EPIOCSPARAMS unavailable ({}; Linux 6.9+): busy poll {}us set per socket with SO_BUSY_POLL",
             sys::errno_name(err), usecs.count());
  }
  return BusyPoll::per_socket;
}

std::string describe_epoll(BusyPoll busy, std::chrono::microseconds usecs, const BufferPool* pool) {
  std::string out = "epoll (edge-triggered";
  switch (busy) {
    case BusyPoll::off: break;
    case BusyPoll::epoll:
      out += fmt::format(", busy poll {}us via EPIOCSPARAMS", usecs.count());
      break;
    case BusyPoll::per_socket:
      out += fmt::format(", busy poll {}us via SO_BUSY_POLL per socket", usecs.count());
      break;
    case BusyPoll::refused:
      out += ", busy poll refused: needs CAP_NET_ADMIN";
      break;
  }
  if (pool != nullptr) out += ", " + pool->describe();
  return out + ")";
}

void apply_socket_busy_poll(int fd, std::chrono::microseconds usecs) {
  sys::Result<void> r = sys::set_option(fd, sys::opt::busy_poll, usecs);
  if (r || !r.error().is(EPERM)) return;  // ENOTSOCK etc.: not a socket, nothing to poll
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true, std::memory_order_relaxed)) {
    sys::log(sys::LogLevel::warn, "epoll: busy poll per socket refused: {}", r.error().message());
  }
}

}  // namespace ringo::reactor::internal
