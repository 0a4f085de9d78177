// Fiber I/O: the reactor's operations (reactor/operation.h) as blocking calls
// for fibers, the same on both backends.
//
//   sys::Fd conn = io::accept(listener.get(), &peer).value();     // parks "io accept"
//   sys::Result<std::size_t> n = io::recv(conn.get(), buf);       // the fiber's token
//   if (!n && n.error().is(ETIMEDOUT)) ...                        // its deadline passed
//   io::send_all(conn.get(), reply, request.token());             // or an explicit one
//
// Each call fills a reactor::Operation on the calling fiber's stack, submits it
// to the fiber's loop and parks the fiber (reason "io accept", "io recv", ...,
// shown by ringo::fiber_dump()) until the operation's final completion, which
// unparks it. The token (by default this_fiber::token(), the fiber's request
// context) bounds the wait:
//  - Its deadline becomes the operation's deadline (reactor/operation.h): the
//    backend completes the call with ETIMEDOUT (io_uring: a linked timeout),
//    never earlier than the deadline. No timer of ours is armed.
//  - Its cancellation, from any thread, pokes the fiber (ringo::unpark through
//    the loop's inbox when foreign); the fiber, back on its loop's thread,
//    calls Loop::cancel on the operation and parks again until the final
//    completion, which then normally carries ECANCELED.
//  - Already cancelled or past its deadline when the call starts: ECANCELED or
//    ETIMEDOUT at once, nothing submitted, the fiber does not park.
//
// Results: the value, or a sys::Error named after the call ("recv: ECONNRESET
// (...)"); ECANCELED and ETIMEDOUT caused by the token carry a hint saying so.
// An operation that ends with ECANCELED or ETIMEDOUT while the token is
// cancelled reports ECANCELED (CancelToken::error()'s ranking). A descriptor
// closed through a close operation (prepare_close) while a call waits on it
// also ends the call with ECANCELED, without a hint.
//
// Invariants:
//  - A call returns only after its operation's final completion: the
//    Operation lives in the call's frame, and the backend may touch it until
//    then. Cancellation shortens the wait; it never abandons the operation. So
//    after any call returns, the loop holds nothing of it.
//  - A result that wins the race against a cancellation is returned, not
//    dropped: bytes received, bytes sent, a connection accepted (with its fd)
//    come back as success even when the token was cancelled meanwhile. The
//    caller sees the cancellation at its next call (which returns ECANCELED at
//    once). Dropping them would lose data: received bytes gone from the socket,
//    sent bytes already on the wire, an accepted connection reset.
//  - An accepted descriptor is registered with the fd registry by the backend
//    and is owned by the returned sys::Fd; on an error there is none.
//  - Everything but the token's cancellation runs on the fiber's loop thread:
//    completions arrive there, and Loop::submit/cancel are called only there.
//    The cancellation callback touches nothing but the fiber's FiberRef.
//  - One reader and one writer per descriptor at a time (backend.h): two
//    concurrent recvs on one socket are not ordered against each other.
//  - Calling any of these outside a fiber aborts with a message naming the
//    call: a plain thread has no loop to submit to, and a loop's own stack
//    (a timer or completion callback) must not block. It is a programming
//    error, not a condition to handle, so it is not folded into the errors a
//    caller checks (where an EPERM or EINVAL would read like a socket error).
//  - Descriptors must be non-blocking for the epoll backend; it sets
//    O_NONBLOCK itself on first use (backend.h). Accepted ones are
//    non-blocking and close-on-exec.
//
// Rejected alternatives:
//  - A fiber timer for the deadline (as fiber/waiter.h arms for channels): the
//    operation's own deadline expires inside the backend, costs no extra wake
//    of the fiber, and on io_uring is one linked SQE.
//  - Calling Loop::cancel from the cancelling thread: the backend is
//    single-threaded (io_uring's SINGLE_ISSUER); posting a cancel task that
//    names the operation would race with the operation's completion and the
//    frame's end. Poking the fiber keeps every touch of the Operation on the
//    loop's thread, in the one frame that owns it.
//  - Returning the moment the cancellation arrives and letting the completion
//    land in a heap-allocated operation: an allocation per call, and a result
//    that raced the cancel would be lost.
//  - Trying the non-blocking syscall before submitting (Go's netpoll style):
//    that is the epoll backend's job already, and on io_uring it would cost a
//    syscall that the ring saves.
//  - Returning an error outside a fiber (see above), or falling back to
//    blocking syscalls there: a thread would silently ignore the token's
//    cancellation, which only a loop can deliver to a blocked call.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "syscall/fd.h"
#include "syscall/result.h"
#include "syscall/socket.h"

namespace ringo::io {

// Waits for one connection on `listener`; the new descriptor (non-blocking,
// close-on-exec, registered) and, with `peer`, the peer's address.
sys::Result<sys::Fd> accept(int listener, const CancelToken& token = this_fiber::token());
sys::Result<sys::Fd> accept(int listener, sys::SockAddr* peer, const CancelToken& token = this_fiber::token());

// Connects socket `fd` to `addr` (the address is copied: it need not outlive
// the call). A cancelled or timed-out connect leaves the socket unusable:
// close it.
sys::Result<void> connect(int fd, const sys::SockAddr& addr, const CancelToken& token = this_fiber::token());

// Bytes read into `buf` (0: end of file or stream), at the descriptor's
// current position. May be fewer than buf.size().
sys::Result<std::size_t> read(int fd, std::span<std::byte> buf, const CancelToken& token = this_fiber::token());
// recv(2) with MSG_* `flags`; 0 at the end of the stream.
sys::Result<std::size_t> recv(int fd, std::span<std::byte> buf, const CancelToken& token = this_fiber::token());
sys::Result<std::size_t> recv(int fd, std::span<std::byte> buf, int flags,
                              const CancelToken& token = this_fiber::token());

// Bytes written: possibly fewer than data.size() (see write_all).
sys::Result<std::size_t> write(int fd, std::span<const std::byte> data,
                               const CancelToken& token = this_fiber::token());
// send(2) with MSG_* `flags` (MSG_NOSIGNAL is always added: EPIPE, no SIGPIPE).
sys::Result<std::size_t> send(int fd, std::span<const std::byte> data,
                              const CancelToken& token = this_fiber::token());
sys::Result<std::size_t> send(int fd, std::span<const std::byte> data, int flags,
                              const CancelToken& token = this_fiber::token());
// writev(2): the bytes of iov[0..) in order, possibly only a prefix. The
// iovecs and what they point to must stay untouched until the call returns.
sys::Result<std::size_t> writev(int fd, std::span<const iovec> iov, const CancelToken& token = this_fiber::token());

// Waits until `fd` is ready for `mask` (POLLIN, POLLOUT, POLLRDHUP); returns
// the revents that fired, masked to `mask | POLLERR | POLLHUP | POLLNVAL`.
sys::Result<std::uint32_t> poll(int fd, std::uint32_t mask, const CancelToken& token = this_fiber::token());

// write/send until every byte is written or an error (the token's included)
// stops it. On an error the caller cannot know how much of `data` went out:
// the stream is left mid-message, and the usual answer is to close it. The
// token's deadline bounds the whole loop, not each write.
sys::Result<void> write_all(int fd, std::span<const std::byte> data, const CancelToken& token = this_fiber::token());
sys::Result<void> send_all(int fd, std::span<const std::byte> data, const CancelToken& token = this_fiber::token());

// Sleeping is this_fiber::sleep_for / sleep_until (fiber/fiber.h).

}  // namespace ringo::io
