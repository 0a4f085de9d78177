// See operation.h.
#include "reactor/operation.h"

namespace ringo::reactor {

const char* to_string(OpKind kind) {
  switch (kind) {
    case OpKind::nop: return "nop";
    case OpKind::accept: return "accept";
    case OpKind::accept_multishot: return "accept_multishot";
    case OpKind::connect: return "connect";
    case OpKind::recv: return "recv";
    case OpKind::recv_pooled: return "recv_pooled";
    case OpKind::send: return "send";
    case OpKind::sendmsg: return "sendmsg";
    case OpKind::writev: return "writev";
    case OpKind::read: return "read";
    case OpKind::write: return "write";
    case OpKind::poll: return "poll";
    case OpKind::close: return "close";
    case OpKind::timeout: return "timeout";
  }
  return "?";
}

void prepare_nop(Operation& op) { op.kind = OpKind::nop; }

void prepare_accept(Operation& op, int listener, sys::SockAddr* peer, int flags) {
  op.kind = OpKind::accept;
  op.fd = listener;
  op.addr = peer;
  op.flags = flags;
}

void prepare_accept_multishot(Operation& op, int listener, int flags) {
  op.kind = OpKind::accept_multishot;
  op.fd = listener;
  op.addr = nullptr;
  op.flags = flags;
}

void prepare_connect(Operation& op, int fd, sys::SockAddr* addr) {
  op.kind = OpKind::connect;
  op.fd = fd;
  op.addr = addr;
}

void prepare_recv(Operation& op, int fd, void* buf, std::size_t len, int flags) {
  op.kind = OpKind::recv;
  op.fd = fd;
  op.buf = buf;
  op.len = len;
  op.flags = flags;
}

void prepare_recv_pooled(Operation& op, int fd, int flags) {
  op.kind = OpKind::recv_pooled;
  op.fd = fd;
  op.buf = nullptr;
  op.len = 0;
  op.flags = flags;
}

void prepare_send(Operation& op, int fd, const void* buf, std::size_t len, int flags) {
  op.kind = OpKind::send;
  op.fd = fd;
  op.buf = const_cast<void*>(buf);  // the backend only reads it
  op.len = len;
  op.flags = flags;
}

void prepare_sendmsg(Operation& op, int fd, msghdr* msg, int flags) {
  op.kind = OpKind::sendmsg;
  op.fd = fd;
  op.msg = msg;
  op.flags = flags;
}

void prepare_writev(Operation& op, int fd, const iovec* iov, int iovcnt) {
  op.kind = OpKind::writev;
  op.fd = fd;
  op.iov = iov;
  op.iovcnt = iovcnt;
}

void prepare_read(Operation& op, int fd, void* buf, std::size_t len, std::uint64_t offset) {
  op.kind = OpKind::read;
  op.fd = fd;
  op.buf = buf;
  op.len = len;
  op.offset = offset;
}

void prepare_write(Operation& op, int fd, const void* buf, std::size_t len, std::uint64_t offset) {
  op.kind = OpKind::write;
  op.fd = fd;
  op.buf = const_cast<void*>(buf);  // the backend only reads it
  op.len = len;
  op.offset = offset;
}

void prepare_poll(Operation& op, int fd, std::uint32_t mask) {
  op.kind = OpKind::poll;
  op.fd = fd;
  op.poll_mask = mask;
}

void prepare_close(Operation& op, sys::Fd&& fd) {
  const sys::Fd::Owned owned = fd.detach();
  op.kind = OpKind::close;
  op.fd = owned.fd;
  op.close_tag = owned.tag;
}

void prepare_timeout(Operation& op, std::chrono::nanoseconds after) {
  op.kind = OpKind::timeout;
  op.timeout = after;
}

}  // namespace ringo::reactor
