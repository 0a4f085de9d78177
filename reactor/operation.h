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
//  - A buffer a recv_pooled operation receives into is the backend's, lent in
//    Completion::buffer. The completion function takes it by moving it out
//    (PooledBuffer is move-only: no copy can outlive its release) and gives
//    it back with Loop::release_buffer once its bytes are consumed. A
//    buffer left in the Completion goes back to the pool when the function
//    returns: nothing leaks, as with Completion::fd. A taken buffer that is
//    never released is lost to the pool until the backend is destroyed.
//  - Results follow the kernel's convention: >= 0 success, -errno failure.
//    Cancelled: -ECANCELED. Deadline passed: -ETIMEDOUT. Both backends return
//    the same values for the same events; tests run on both.
//
// Rejected: std::function completions (an allocation per operation and a
// copy of the capture); futures/promises (allocation and a second
// synchronisation for what is already single-threaded); one struct per
// operation kind in a variant (the fields overlap almost completely, and one
// flat struct keeps submit a single switch in each backend, like monoio's op/);
// a PooledBuffer that releases itself in its destructor (it would need a
// pointer to its backend, and would dangle when a buffer outlives the loop;
// the explicit release keeps it two words and leaves lifetime to the caller).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "syscall/fd.h"
#include "syscall/socket.h"

namespace ringo::reactor {

enum class OpKind : std::uint8_t {
  nop,               // completes with 0 (benchmarks, tests, forcing a loop turn)
  accept,            // one connection: Completion::fd, peer in `addr` if set
  accept_multishot,  // a connection per completion until cancelled; `addr` ignored
  connect,           // `addr`; 0 once connected
  recv,              // into buf[0, len) with `flags`; bytes, 0 at end of stream
  // recv into a buffer the backend picks from its pool when data arrives:
  // `buf` and `len` are ignored (the pool's buffer size applies), `flags` as
  // recv. Bytes, with Completion::buffer holding them; 0 at end of stream (no
  // buffer). -ENOBUFS when the pool is empty as the data arrives, or at submit
  // (callers retry after releasing buffers, or fall back to recv);
  // -EOPNOTSUPP when the backend has no pool (BackendOptions::pool_buffers).
  recv_pooled,
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

// A buffer of a backend's pool, lent by a recv_pooled completion: `size()`
// bytes at `data()` (the result), and the pool's id of the buffer. Moving it
// takes it (the source becomes empty); it does not give itself back: pass it
// to Loop::release_buffer. Valid until released or until the backend is
// destroyed; assigning over a non-empty one loses that buffer to the pool.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  // Backends only: a buffer being lent.
  PooledBuffer(std::byte* data, std::uint32_t size, std::uint16_t id) : data_(data), size_(size), id_(id) {}
  PooledBuffer(PooledBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
        id_(std::exchange(other.id_, 0)) {}
  PooledBuffer& operator=(PooledBuffer&& other) noexcept {
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    id_ = std::exchange(other.id_, 0);
    return *this;
  }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;

  bool empty() const { return data_ == nullptr; }
  std::byte* data() const { return data_; }
  std::uint32_t size() const { return size_; }
  std::uint16_t id() const { return id_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint16_t id_ = 0;
};

struct Completion {
  std::int32_t result = 0;  // >= 0 success (bytes, revents, ...); < 0: -errno
  bool more = false;        // multishot: more completions will follow this one
  sys::Fd fd;               // accept: the new connection, registered
  PooledBuffer buffer;      // recv_pooled with result > 0: the bytes; released if not taken

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

  void* buf = nullptr;          // recv/read: destination; send/write: source (recv_pooled: unused)
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
void prepare_recv_pooled(Operation& op, int fd, int flags = 0);
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
