// Operation: one asynchronous request to a backend (accept, recv, send, ...)
// and Completion, what comes back. The reactor knows nothing about fibers: an
// operation completes by calling its type-erased `on_complete` function, and
// the fiber layer (or a test, or a callback server) decides what that means.
//
// Invariants (the contract every backend keeps; see backend.h):
//  - Zero allocation: the caller owns the Operation and keeps it alive, unmoved,
//    from submit until its final completion. Backends link it into their own
//    lists through the private fields at the end.
//  - Exactly once: a submitted operation completes exactly once, with a result
//    or an error, also when it is cancelled or its deadline passes. A multishot
//    operation completes once per event with `more == true`, then exactly once
//    with `more == false`.
//  - Completions are delivered only from Backend::poll (never from inside
//    submit or cancel), so a completion function may submit and cancel freely.
//  - A descriptor an operation creates (accept) is registered with the fd
//    registry before anything else sees it and travels in Completion::fd: if
//    the completion function does not take it, it is closed, never leaked, even
//    for an accept that completes while being cancelled (monoio's MaybeFd).
//  - Results follow the kernel's convention: >= 0 success, -errno failure.
//    Cancelled: -ECANCELED. Deadline passed: -ETIMEDOUT. Both backends return
//    the same values for the same events; tests run on both.
//
// Rejected: std::function completions (an allocation per operation and a
// copy of the capture); futures/promises (allocation and a second
// synchronisation for what is already single-threaded); one struct per
// operation kind in a variant (the fields overlap almost completely, and one
// flat struct keeps submit a single switch in each backend, like monoio's op/).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "syscall/fd.h"
#include "syscall/socket.h"

namespace ringo::reactor {

enum class OpKind : std::uint8_t {
  nop,               // completes with 0 (benchmarks, tests, forcing a loop turn)
  accept,            // one connection: Completion::fd, peer in `addr` if set
  accept_multishot,  // a connection per completion until cancelled; `addr` ignored
  connect,           // `addr`; 0 once connected
  recv,              // into buf[0, len) with `flags`; bytes, 0 at end of stream
  send,              // from buf[0, len) with `flags` (MSG_NOSIGNAL added); bytes sent (may be partial)
  sendmsg,           // `msg` with `flags` (MSG_NOSIGNAL added); bytes sent
  writev,            // iov[0, iovcnt); bytes written (may be partial)
  read,              // into buf[0, len) at `offset` (-1: current position); bytes
  write,             // from buf[0, len) at `offset` (-1: current position); bytes
  poll,              // waits for `poll_mask` (POLLIN|POLLOUT|POLLRDHUP); the revents that fired
  close,             // closes `fd` presenting `close_tag` (see prepare_close); 0
  timeout,           // completes with 0 after `timeout`
};
const char* to_string(OpKind kind);

struct Operation;

struct Completion {
  std::int32_t result = 0;  // >= 0 success (bytes, revents, ...); < 0: -errno
  bool more = false;        // multishot: more completions will follow this one
  sys::Fd fd;               // accept: the new connection, registered

  bool ok() const { return result >= 0; }
  int error() const { return result < 0 ? -result : 0; }
};

using CompletionFn = void (*)(Operation& op, Completion& completion);

struct Operation {
  static constexpr std::uint64_t kCurrentPosition = ~std::uint64_t{0};
  static constexpr std::chrono::nanoseconds kNoDeadline{-1};

  // ---- set by the caller before submit; constant until the final completion
  OpKind kind = OpKind::nop;
  int fd = -1;
  CompletionFn on_complete = nullptr;
  void* user = nullptr;  // the caller's context, untouched by backends

  void* buf = nullptr;          // recv/read: destination; send/write: source
  std::size_t len = 0;
  const iovec* iov = nullptr;   // writev
  int iovcnt = 0;
  msghdr* msg = nullptr;        // sendmsg
  int flags = 0;                // recv/send/sendmsg: MSG_*; accept: SOCK_NONBLOCK (CLOEXEC always)
  std::uint64_t offset = kCurrentPosition;  // read/write
  sys::SockAddr* addr = nullptr;  // accept: receives the peer (may be null); connect: the target
  std::uint32_t poll_mask = 0;    // poll
  sys::OwnerTag close_tag = 0;    // close
  std::chrono::nanoseconds timeout{0};  // timeout: how long
  // Any kind but timeout/close/nop: complete with -ETIMEDOUT if not done this
  // long after submit (io_uring: a linked timeout). kNoDeadline: none.
  std::chrono::nanoseconds deadline = kNoDeadline;

  // ---- backend state: private to the backend that holds the operation
  struct BackendState {
    std::uint8_t phase = 0;         // idle / pending / completing, backend-defined
    bool cancel_requested = false;  // distinguishes a cancel from a deadline
    Operation* next = nullptr;      // intrusive links for wait lists
    Operation* prev = nullptr;
    std::int64_t when_ns = 0;       // absolute deadline or expiry (monotonic ns)
    std::uint32_t heap_index = 0;
    alignas(8) unsigned char scratch[32] = {};  // e.g. io_uring's __kernel_timespec x2
  } backend_state;

  bool in_flight() const { return backend_state.phase != 0; }
};

// Helpers that fill an Operation for one kind (the remaining fields keep
// their defaults). They only set fields; submit with Loop::submit.
void prepare_nop(Operation& op);
void prepare_accept(Operation& op, int listener, sys::SockAddr* peer = nullptr, int flags = SOCK_NONBLOCK);
void prepare_accept_multishot(Operation& op, int listener, int flags = SOCK_NONBLOCK);
void prepare_connect(Operation& op, int fd, sys::SockAddr* addr);
void prepare_recv(Operation& op, int fd, void* buf, std::size_t len, int flags = 0);
void prepare_send(Operation& op, int fd, const void* buf, std::size_t len, int flags = 0);
void prepare_sendmsg(Operation& op, int fd, msghdr* msg, int flags = 0);
void prepare_writev(Operation& op, int fd, const iovec* iov, int iovcnt);
void prepare_read(Operation& op, int fd, void* buf, std::size_t len, std::uint64_t offset = Operation::kCurrentPosition);
void prepare_write(Operation& op, int fd, const void* buf, std::size_t len,
                   std::uint64_t offset = Operation::kCurrentPosition);
void prepare_poll(Operation& op, int fd, std::uint32_t mask);
// Takes the descriptor out of `fd` (which becomes empty) without closing it:
// the close operation closes it, presenting its owner tag to the registry.
void prepare_close(Operation& op, sys::Fd&& fd);
void prepare_timeout(Operation& op, std::chrono::nanoseconds after);

}  // namespace ringo::reactor
