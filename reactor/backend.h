// The backend contract, written once (as Go's runtime/netpoll.go and libuv's
// unix/internal.h do): what a loop needs from io_uring and from epoll. Each
// backend lives in its own file (uring_backend.cc, epoll_backend.cc) behind
// this small interface; nothing outside reactor/ sees which one runs.
//
// Contract (every backend, checked by the typed tests in tests/reactor/):
//  - submit(op): queue `op` (see operation.h for its fields and the
//    exactly-once rule). Never delivers a completion itself. Errors found at
//    submit (a bad fd, an unsupported op) are delivered as completions too.
//  - cancel(op): if `op` is in flight, make it complete soon with -ECANCELED
//    (or with its real result if it finished first); a multishot op's final
//    completion comes with `more == false`. Cancelling an op that is not in
//    flight is a no-op. Never delivers a completion itself.
//  - poll(timeout): submit everything queued, wait until at least one
//    completion is ready, `timeout` passes (0: do not block; negative: no
//    limit) or wake() is called; then deliver every ready completion by
//    calling its op's on_complete, and return how many were delivered.
//    io_uring does submit and wait in one io_uring_enter.
//  - wake(): the only thread-safe call. Makes a poll() that is blocked, or the
//    next one, return promptly. Callers coalesce: Loop only wakes a sleeping loop.
//  - Operations on one descriptor complete in the order the kernel completes
//    them; two recvs on one socket are not ordered against each other (as with
//    io_uring itself), so callers keep one reader and one writer per socket.
//  - Closing: a descriptor with operations in flight must be closed through a
//    close operation (prepare_close), which first cancels them (-ECANCELED);
//    closing it behind the backend's back is a caller bug that the epoll
//    backend detects through the fd registry's owner tags.
//  - A close operation cannot be cancelled (it owns the descriptor; a
//    cancelled close would leak it): cancel() on it is a no-op, and a backend
//    being destroyed still runs it.
//  - poll results: revents & (poll_mask | POLLERR | POLLHUP | POLLNVAL) on both
//    backends, whatever extra bits the kernel reports.
//  - Descriptors: the epoll backend needs non-blocking descriptors and sets
//    O_NONBLOCK on the ones it is given (once, before the first try); io_uring
//    works with either. Both need SIGPIPE ignored for write/writev on a broken
//    pipe or socket; Loop::create ignores it for the process (as Go's runtime
//    does), since no server wants to die of it.
//  - poll() may return 0 before its timeout when only the backend's internal
//    events arrived (a linked timeout's own CQE, a missed cancel); callers loop.
//  - Submitting an operation that is still in flight is a caller bug (the
//    io_uring backend aborts with a message).
//  - Pooled receives (recv_pooled): with BackendOptions::pool_buffers > 0 the
//    backend owns that many buffers and lends one per completion that brought
//    data; release_buffer takes it back. A posted recv_pooled holds no buffer
//    while it waits (io_uring: a provided buffer ring, the kernel picks at
//    arrival; epoll: a free list, taken just before the recv syscall), which is
//    what makes thousands of idle connections cheap. Pool empty: -ENOBUFS on
//    both backends; no pool: -EOPNOTSUPP.
//  - Threads: everything but wake() is called from the loop's thread only,
//    creation and destruction included (io_uring's SINGLE_ISSUER refuses
//    submissions from any other thread).
//
// Rejected: a backend chosen at compile time (the fallback must happen at run
// time, where io_uring is refused by seccomp or sysctl); one file holding
// every backend (Seastar's reactor_backend.cc); readiness as the common
// interface (io_uring's strength is completions; epoll imitates them well);
// recv_pooled on io_uring only (callers would have to know which backend
// runs; epoll's free list gives the same "idle costs nothing" profile).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "reactor/operation.h"
#include "syscall/result.h"

namespace ringo::reactor {

enum class BackendKind : std::uint8_t { automatic, io_uring, epoll };
const char* to_string(BackendKind kind);
// "auto" | "io_uring" | "epoll" (RINGO_BACKEND's values).
sys::Result<BackendKind> parse_backend_kind(std::string_view text);
// RINGO_BACKEND from the environment, `automatic` when unset; an invalid value
// is an error that names it.
sys::Result<BackendKind> backend_kind_from_env();

struct BackendOptions {
  // io_uring: submission queue entries (the completion queue gets 4x).
  std::uint32_t ring_entries = 256;
  // epoll: busy-poll this long inside epoll_wait (EPIOCSPARAMS, Linux 6.9+);
  // 0: off. Needs CAP_NET_ADMIN to exceed net.core.busy_poll.
  std::chrono::microseconds epoll_busy_poll{0};
  // recv_pooled's pool: this many buffers (0: no pool, recv_pooled completes
  // -EOPNOTSUPP; else a power of two, at most 32768, io_uring's buffer ring
  // limit) of pool_buffer_size bytes each (1 to 2 GiB - 4 KiB, the kernel's
  // largest transfer). Memory: one anonymous mapping, touched as it is used.
  std::uint32_t pool_buffers = 0;
  std::uint32_t pool_buffer_size = 4096;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendKind kind() const = 0;
  // One line for logs: "io_uring (SINGLE_ISSUER, DEFER_TASKRUN, 256 entries)".
  virtual std::string describe() const = 0;

  virtual void submit(Operation& op) = 0;
  virtual void cancel(Operation& op) = 0;
  virtual std::size_t poll(std::chrono::nanoseconds timeout) = 0;
  virtual void wake() = 0;
  // Gives back a buffer a recv_pooled completion lent (see operation.h), once
  // its bytes are consumed. An empty one is a no-op (as closing an empty Fd);
  // releasing a buffer twice, or one that is not this backend's, aborts with
  // a message (the kernel would hand it to two recvs at once).
  virtual void release_buffer(const PooledBuffer& buffer) = 0;

  // Operations submitted and not yet finally completed.
  virtual std::size_t in_flight() const = 0;
};

// Creates a backend of `kind`. `automatic` tries io_uring and falls back to
// epoll when io_uring cannot be set up or lacks an operation Ringo needs,
// logging the reason once per process.
sys::Result<std::unique_ptr<Backend>> make_backend(BackendKind kind, const BackendOptions& options = {});

// The per-backend factories make_backend uses (exposed for tests).
sys::Result<std::unique_ptr<Backend>> make_uring_backend(const BackendOptions& options);
sys::Result<std::unique_ptr<Backend>> make_epoll_backend(const BackendOptions& options);

}  // namespace ringo::reactor
