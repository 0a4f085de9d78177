// TcpStream: one connected TCP socket, read and written by a fiber as if it
// were blocking (fiber/io.h underneath: the fiber parks, the loop runs on).
// BufferedReader / BufferedWriter put a bounded buffer in front of it, and
// HangupWatch turns the peer's hang-up into a cancellation.
//
//   net::TcpStream s = net::TcpStream::connect(addr, token.with_timeout(1s)).value();
//   s.write_all(as_bytes("ping\n")).value();
//   net::BufferedReader r(s, 64 * 1024);
//   std::string_view line = r.read_line().value();   // "pong"
//
// Deadlines and cancellation come from the CancelToken each call takes (by
// default the fiber's, this_fiber::token()): `token.with_timeout(5s)` bounds
// one call, a token made once bounds a whole exchange. Errors are sys::Error
// values naming the call ("recv: ECONNRESET", "recv: ETIMEDOUT (its token's
// deadline passed)").
//
// Invariants:
//  - A TcpStream owns its descriptor (sys::Fd, registered); it closes on
//    destruction or close(). Moves only.
//  - One fiber reads and one fiber writes at a time (backend.h's rule); the
//    reading and the writing fiber may differ. A HangupWatch counts as a
//    reader while armed: arm it while nobody reads (an SSE stream, a handler
//    that computes its answer), never beside a read.
//  - write_all/writev_all return only when every byte is in the kernel or an
//    error stopped them; after an error the stream is mid-message: close it.
//  - BufferedReader never holds more than its capacity: read_line on a line
//    longer than that fails with EMSGSIZE instead of growing.
//
// Rejected alternatives:
//  - Deadlines as stream state (set_read_deadline, Go's style): a token
//    already carries deadline and cancellation and flows from the request to
//    everything it calls; a second mechanism would have to be combined with it
//    at every call.
//  - A reader that grows without bound: the HTTP limits (header bytes, line
//    length) must be enforceable by the buffer itself.
//  - Hang-up detection by a fiber parked in recv(MSG_PEEK): a fiber stack per
//    connection for a one-bit answer; HangupWatch is one poll operation.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "net/socket_options.h"
#include "reactor/operation.h"
#include "syscall/fd.h"
#include "syscall/result.h"
#include "syscall/socket.h"

namespace ringo::net {

inline std::span<const std::byte> as_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

class TcpStream {
 public:
  TcpStream() = default;
  explicit TcpStream(sys::Fd fd) : fd_(std::move(fd)) {}
  TcpStream(TcpStream&&) noexcept = default;
  TcpStream& operator=(TcpStream&&) noexcept = default;

  // A new non-blocking socket of addr's family, `options` applied, connected
  // to `addr` within the token's deadline.
  static sys::Result<TcpStream> connect(const sys::SockAddr& addr, const CancelToken& token = this_fiber::token(),
                                        const SocketOptions& options = {});

  bool is_open() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }

  // Up to buf.size() bytes; 0 at the end of the stream (the peer shut down).
  sys::Result<std::size_t> read(std::span<std::byte> buf, const CancelToken& token = this_fiber::token());
  // Some prefix of `data` (at least one byte unless data is empty).
  sys::Result<std::size_t> write(std::span<const std::byte> data, const CancelToken& token = this_fiber::token());
  sys::Result<void> write_all(std::span<const std::byte> data, const CancelToken& token = this_fiber::token());
  sys::Result<void> write_all(std::string_view data, const CancelToken& token = this_fiber::token()) {
    return write_all(as_bytes(data), token);
  }
  // Every byte of iov[0..) in order, in as few writev calls as the kernel
  // allows. `iov` is consumed: its entries are advanced past what was written.
  sys::Result<void> writev_all(std::span<iovec> iov, const CancelToken& token = this_fiber::token());
  // Waits until the socket is ready for `mask` (POLLIN, POLLOUT, POLLRDHUP).
  sys::Result<std::uint32_t> wait(std::uint32_t mask, const CancelToken& token = this_fiber::token());

  // Bytes in the send queue the kernel has not sent yet (SIOCOUTQNSD): what
  // TCP_NOTSENT_LOWAT compares with.
  sys::Result<int> unsent_bytes() const;
  sys::Result<void> shutdown_write();
  sys::Result<sys::SockAddr> peer_address() const;
  sys::Result<sys::SockAddr> local_address() const;

  void close() { fd_.reset(); }
  sys::Fd release() { return std::move(fd_); }

 private:
  sys::Fd fd_;
};

// A bounded read buffer in front of a TcpStream.
class BufferedReader {
 public:
  BufferedReader(TcpStream& stream, std::size_t capacity);

  // The bytes read and not yet consumed.
  std::span<const std::byte> buffered() const { return {buf_.get() + begin_, end_ - begin_}; }
  std::string_view buffered_text() const {
    return {reinterpret_cast<const char*>(buf_.get()) + begin_, end_ - begin_};
  }
  void consume(std::size_t n);
  std::size_t capacity() const { return capacity_; }

  // Reads once more from the stream, after what is buffered (compacting
  // first when needed). Bytes read; 0 at the end of the stream; EMSGSIZE when
  // the buffer is full of unconsumed bytes.
  sys::Result<std::size_t> fill(const CancelToken& token = this_fiber::token());
  // The next line without its "\n" (nor a "\r" before it), consumed from the
  // buffer; valid until the next call. ECONNRESET... as read; EMSGSIZE when a
  // line exceeds the capacity; ENODATA at the end of the stream (a partial
  // last line stays buffered).
  sys::Result<std::string_view> read_line(const CancelToken& token = this_fiber::token());
  // Fills `out` completely (buffered bytes first). ENODATA when the stream
  // ends first.
  sys::Result<void> read_exact(std::span<std::byte> out, const CancelToken& token = this_fiber::token());

 private:
  TcpStream* stream_;
  std::unique_ptr<std::byte[]> buf_;
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// Gathers small writes and sends them in one write when flushed or full.
class BufferedWriter {
 public:
  BufferedWriter(TcpStream& stream, std::size_t capacity);

  // Appends `data`; writes the buffer (and data beyond its capacity) first
  // when it would overflow.
  sys::Result<void> write(std::string_view data, const CancelToken& token = this_fiber::token());
  sys::Result<void> flush(const CancelToken& token = this_fiber::token());
  std::size_t buffered() const { return buf_.size(); }

 private:
  TcpStream* stream_;
  std::string buf_;
  std::size_t capacity_;
};

// While it lives, cancels `source` when the peer of `fd` hangs up (FIN or
// reset: POLLRDHUP, POLLHUP, POLLERR), at once, whatever the fiber that made
// it is doing. One poll operation on the calling fiber's loop; the destructor
// cancels it and parks the fiber until the backend has let go of it, so make
// and destroy it on the same fiber. See TcpStream's invariants: it is a reader.
class HangupWatch {
 public:
  HangupWatch(const TcpStream& stream, CancelSource& source);
  ~HangupWatch();
  HangupWatch(const HangupWatch&) = delete;
  HangupWatch& operator=(const HangupWatch&) = delete;

  bool fired() const { return fired_; }

 private:
  static void on_complete(reactor::Operation& op, reactor::Completion& c);

  reactor::Operation op_;
  CancelSource* source_;
  fiber::Scheduler* scheduler_;
  fiber::Fiber* waiter_ = nullptr;  // parked in the destructor
  bool done_ = false;
  bool fired_ = false;
};

}  // namespace ringo::net
