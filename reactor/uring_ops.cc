// What each Operation becomes on io_uring, and what comes back: one switch
// from OpKind to an SQE, the SQEs the backend adds around it (a linked
// deadline, cancels), and the mapping of the kernel's CQE result onto the
// contract's (operation.h). The ring itself is uring_backend.cc's.
//
// Invariants:
//  - Timespecs the kernel reads at submission live in the op's scratch
//    (timeout op at [0,16), deadline at [16,32)): the op stays put until its
//    final completion, so they outlive the SQE that points at them.
//  - recv_pooled is RECV with IOSQE_BUFFER_SELECT from group kBufGroup (the
//    ring is uring_buf_ring.cc's); a linked deadline works as for any recv.
//  - send/sendmsg add MSG_NOSIGNAL, accepts SOCK_CLOEXEC, as the epoll
//    backend does; read/write pass kCurrentPosition through, which is the
//    kernel's (__u64)-1, "use and advance the file position".
//  - Our cancels carry IOSQE_CQE_SKIP_SUCCESS (5.17; setup requires 5.19): a
//    cancel that hit costs no CQ slot and no wake-up; one that missed posts
//    a CQE with the ignored user_data.
//
// Where the kernel's results differ from the contract's words:
//  - A linked timeout cancels its op (-ECANCELED; the two CQEs come in either
//    order). A -ECANCELED op nobody cancelled, past its deadline, is reported
//    -ETIMEDOUT; one that a close's CANCEL_FD hit before its deadline stays
//    -ECANCELED. IORING_OP_TIMEOUT's expiry, -ETIME, is reported 0.
//  - O_NONBLOCK (sockets are non-blocking for epoll's sake): RECV, SEND,
//    SENDMSG, ACCEPT, CONNECT ignore it (they pass MSG_DONTWAIT themselves
//    and arm a poll on EAGAIN); READ/WRITE/WRITEV poll too on files that
//    support nowait (io_prep_rw, "allow retry for O_NONBLOCK", 5.12).
//    Checked on 6.18: all of them wait on empty or full O_NONBLOCK sockets,
//    listeners, pipes, eventfd, timerfd, signalfd, inotify and ptys. Kernels
//    before 6.3 may return a spurious -EAGAIN after repeated poll wake-ups
//    (axboe/liburing#364): passed through, like a caller's MSG_DONTWAIT.
//
// Rejected: IORING_RECVSEND_POLL_FIRST (arms a poll even when data is
// already there; only worth it where the caller knows the socket is empty);
// a -EAGAIN retry through a linked poll (no kernel this runs on takes that
// path: code no test could exercise); a struct per kind as in monoio's op/
// (the fields overlap; one switch is the whole mapping).
#include <liburing.h>

#include <cerrno>
#include <chrono>
#include <new>

#include "reactor/clock.h"
#include "reactor/internal/uring_backend.h"

namespace ringo::reactor::uring {
namespace {

using namespace std::chrono_literals;

// Longest a transfer may ask for: the kernel caps a single I/O at MAX_RW_COUNT.
constexpr std::size_t kMaxTransfer = 0x7ffff000;

// Builds a timespec inside the op's scratch (slot 0: timeout op, 1: deadline).
__kernel_timespec* scratch_timespec(Operation& op, int slot, std::int64_t ns) {
  static_assert(sizeof(__kernel_timespec) * 2 <= sizeof(Operation::BackendState::scratch));
  unsigned char* at = op.backend_state.scratch + slot * sizeof(__kernel_timespec);
  return new (at) __kernel_timespec(to_kernel_timespec(ns));
}

void quiet(io_uring_sqe* sqe) {
  sqe->user_data = kIgnoredData;
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void prep_accept(io_uring_sqe* sqe, Operation& op) {
  sockaddr* peer = nullptr;
  socklen_t* peer_len = nullptr;
  if (op.addr) {
    *op.addr->size_ptr() = sys::SockAddr::capacity();
    peer = op.addr->get();
    peer_len = op.addr->size_ptr();
  }
  io_uring_prep_accept(sqe, op.fd, peer, peer_len, op.flags | SOCK_CLOEXEC);
}

}  // namespace

__kernel_timespec to_kernel_timespec(std::int64_t ns) {
  if (ns < 0) ns = 0;
  return {ns / 1'000'000'000, ns % 1'000'000'000};
}

bool has_deadline(const Operation& op) {
  return op.deadline >= 0ns && op.kind != OpKind::nop && op.kind != OpKind::timeout &&
         op.kind != OpKind::close;
}

bool prep_op(io_uring_sqe* sqe, Operation& op, std::uint32_t pool_buffer_size) {
  const auto len = static_cast<unsigned>(op.len < kMaxTransfer ? op.len : kMaxTransfer);
  const auto send_flags = static_cast<unsigned>(op.flags | MSG_NOSIGNAL);
  switch (op.kind) {
    case OpKind::nop: io_uring_prep_nop(sqe); return true;
    case OpKind::accept: prep_accept(sqe, op); return true;
    case OpKind::accept_multishot:
      io_uring_prep_multishot_accept(sqe, op.fd, nullptr, nullptr, op.flags | SOCK_CLOEXEC);
      return true;
    case OpKind::connect:
      io_uring_prep_connect(sqe, op.fd, op.addr ? op.addr->get() : nullptr, op.addr ? op.addr->size() : 0);
      return true;
    case OpKind::recv: io_uring_prep_recv(sqe, op.fd, op.buf, len, op.flags); return true;
    case OpKind::recv_pooled:
      // A whole buffer: the kernel caps `len` at the selected buffer's, and
      // asking for exactly that relies on no kernel reading 0 as "all of it".
      io_uring_prep_recv(sqe, op.fd, nullptr, pool_buffer_size, op.flags);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufGroup;
      return true;
    case OpKind::send: io_uring_prep_send(sqe, op.fd, op.buf, len, static_cast<int>(send_flags)); return true;
    case OpKind::sendmsg: io_uring_prep_sendmsg(sqe, op.fd, op.msg, send_flags); return true;
    case OpKind::writev:
      io_uring_prep_writev(sqe, op.fd, op.iov, static_cast<unsigned>(op.iovcnt), Operation::kCurrentPosition);
      return true;
    case OpKind::read: io_uring_prep_read(sqe, op.fd, op.buf, len, op.offset); return true;
    case OpKind::write: io_uring_prep_write(sqe, op.fd, op.buf, len, op.offset); return true;
    case OpKind::poll: io_uring_prep_poll_add(sqe, op.fd, op.poll_mask); return true;
    case OpKind::close: io_uring_prep_close(sqe, op.fd); return true;
    case OpKind::timeout:
      io_uring_prep_timeout(sqe, scratch_timespec(op, 0, op.timeout.count()), 0, 0);
      return true;
  }
  return false;
}

void prep_deadline(io_uring_sqe* op_sqe, io_uring_sqe* timeout, Operation& op, std::int64_t remaining_ns) {
  op_sqe->flags |= IOSQE_IO_LINK;
  io_uring_prep_link_timeout(timeout, scratch_timespec(op, 1, remaining_ns), 0);
  // Its CQE always comes (-ETIME if it fired, -ECANCELED if the op won) and
  // says nothing the op's own CQE does not.
  timeout->user_data = kIgnoredData;
}

void prep_cancel_op(io_uring_sqe* sqe, const Operation& op) {
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(&op), 0);
  quiet(sqe);
}

void prep_cancel_fd(io_uring_sqe* sqe, int fd) {
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  quiet(sqe);
}

void prep_cancel_any(io_uring_sqe* sqe) {
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  quiet(sqe);
}

std::int32_t map_result(const Operation& op, std::int32_t res, bool shutting_down) {
  if (op.kind == OpKind::timeout && res == -ETIME) return 0;
  // -EINTR: an io-wq worker interrupted by the same cancellation.
  if (res != -ECANCELED && res != -EINTR) return res;
  if (op.backend_state.cancel_requested || shutting_down) return -ECANCELED;
  if (has_deadline(op) && now_ns() >= op.backend_state.when_ns) return -ETIMEDOUT;
  return res;
}

}  // namespace ringo::reactor::uring
