// See tcp_stream.h.
#include "net/tcp_stream.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fiber/io.h"
#include "fiber/scheduler.h"
#include "reactor/loop.h"

namespace ringo::net {

sys::Result<TcpStream> TcpStream::connect(const sys::SockAddr& addr, const CancelToken& token,
                                          const SocketOptions& options) {
  sys::Result<sys::Fd> fd = sys::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP);
  if (!fd) return fd.error();
  if (auto r = options.apply(fd->get()); !r) return r.error();
  if (auto r = io::connect(fd->get(), addr, token); !r) return r.error();
  return TcpStream(std::move(*fd));
}

sys::Result<std::size_t> TcpStream::read(std::span<std::byte> buf, const CancelToken& token) {
  return io::recv(fd_.get(), buf, token);
}

sys::Result<std::size_t> TcpStream::write(std::span<const std::byte> data, const CancelToken& token) {
  return io::send(fd_.get(), data, token);
}

sys::Result<void> TcpStream::write_all(std::span<const std::byte> data, const CancelToken& token) {
  return io::send_all(fd_.get(), data, token);
}

sys::Result<void> TcpStream::writev_all(std::span<iovec> iov, const CancelToken& token) {
  // IOV_MAX (1024) bounds one writev; longer lists go out in slices.
  constexpr std::size_t kMaxIov = 1024;
  std::size_t first = 0;
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    const std::size_t count = std::min(kMaxIov, iov.size() - first);
    sys::Result<std::size_t> n = io::writev(fd_.get(), iov.subspan(first, count), token);
    if (!n) return n.error();
    std::size_t left = *n;
    while (left > 0 && first < iov.size()) {
      const std::size_t take = std::min(left, iov[first].iov_len);
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + take;
      iov[first].iov_len -= take;
      left -= take;
      if (iov[first].iov_len == 0) ++first;
    }
  }
  return sys::ok();
}

sys::Result<std::uint32_t> TcpStream::wait(std::uint32_t mask, const CancelToken& token) {
  return io::poll(fd_.get(), mask, token);
}

sys::Result<int> TcpStream::unsent_bytes() const {
  int n = 0;
  if (::ioctl(fd_.get(), SIOCOUTQNSD, &n) != 0) return sys::Error::from_errno("ioctl(SIOCOUTQNSD)");
  return n;
}

sys::Result<void> TcpStream::shutdown_write() { return sys::shutdown(fd_.get(), SHUT_WR); }
sys::Result<sys::SockAddr> TcpStream::peer_address() const { return sys::getpeername(fd_.get()); }
sys::Result<sys::SockAddr> TcpStream::local_address() const { return sys::getsockname(fd_.get()); }

// ---- BufferedReader

BufferedReader::BufferedReader(TcpStream& stream, std::size_t capacity)
    : stream_(&stream), buf_(new std::byte[capacity]), capacity_(capacity) {}

void BufferedReader::consume(std::size_t n) {
  begin_ += std::min(n, end_ - begin_);
  if (begin_ == end_) begin_ = end_ = 0;
}

sys::Result<std::size_t> BufferedReader::fill(const CancelToken& token) {
  if (end_ == capacity_) {
    if (begin_ == 0) return sys::Error("read", EMSGSIZE, nullptr, "the read buffer is full of unconsumed bytes");
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  sys::Result<std::size_t> n = stream_->read({buf_.get() + end_, capacity_ - end_}, token);
  if (n) end_ += *n;
  return n;
}

sys::Result<std::string_view> BufferedReader::read_line(const CancelToken& token) {
  std::size_t scanned = 0;
  for (;;) {
    const std::string_view text = buffered_text();
    if (const std::size_t nl = text.find('\n', scanned); nl != std::string_view::npos) {
      std::string_view line = text.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      consume(nl + 1);  // the bytes stay where they are until the next fill
      return line;
    }
    scanned = text.size();
    if (text.size() == capacity_) {
      return sys::Error("read_line", EMSGSIZE, nullptr, "a line is longer than the read buffer");
    }
    sys::Result<std::size_t> n = fill(token);
    if (!n) return n.error();
    if (*n == 0) return sys::Error("read_line", ENODATA, nullptr, "the stream ended before a line ended");
  }
}

sys::Result<void> BufferedReader::read_exact(std::span<std::byte> out, const CancelToken& token) {
  std::size_t done = 0;
  while (done < out.size()) {
    if (begin_ == end_) {
      sys::Result<std::size_t> n = fill(token);
      if (!n) return n.error();
      if (*n == 0) return sys::Error("read_exact", ENODATA, nullptr, "the stream ended first");
    }
    const std::size_t take = std::min(out.size() - done, end_ - begin_);
    std::memcpy(out.data() + done, buf_.get() + begin_, take);
    consume(take);
    done += take;
  }
  return sys::ok();
}

// ---- BufferedWriter

BufferedWriter::BufferedWriter(TcpStream& stream, std::size_t capacity) : stream_(&stream), capacity_(capacity) {
  buf_.reserve(capacity);
}

sys::Result<void> BufferedWriter::write(std::string_view data, const CancelToken& token) {
  if (buf_.size() + data.size() <= capacity_) {
    buf_.append(data);
    return sys::ok();
  }
  if (auto r = flush(token); !r) return r;
  if (data.size() >= capacity_) return stream_->write_all(data, token);
  buf_.append(data);
  return sys::ok();
}

sys::Result<void> BufferedWriter::flush(const CancelToken& token) {
  if (buf_.empty()) return sys::ok();
  sys::Result<void> r = stream_->write_all(buf_, token);
  buf_.clear();  // on an error the stream is mid-message anyway (see write_all)
  return r;
}

// ---- HangupWatch

HangupWatch::HangupWatch(const TcpStream& stream, CancelSource& source)
    : source_(&source), scheduler_(&fiber::Scheduler::current_or_die("net::HangupWatch")) {
  reactor::prepare_poll(op_, stream.fd(), POLLRDHUP);
  op_.on_complete = &HangupWatch::on_complete;
  op_.user = this;
  scheduler_->loop().submit(op_);
}

void HangupWatch::on_complete(reactor::Operation& op, reactor::Completion& c) {
  auto& self = *static_cast<HangupWatch*>(op.user);
  self.done_ = true;
  // A positive result is the revents: POLLRDHUP, or POLLHUP/POLLERR which
  // poll always reports. Any error but our own cancel (EBADF...) means the
  // socket is unusable too: treat it as a hang-up.
  if (c.result > 0 || (c.result < 0 && c.result != -ECANCELED)) {
    self.fired_ = true;
    self.source_->cancel();
  }
  if (self.waiter_ != nullptr) self.scheduler_->unpark(*self.waiter_);
}

HangupWatch::~HangupWatch() {
  if (done_) return;
  scheduler_->loop().cancel(op_);
  waiter_ = scheduler_->running();
  if (waiter_ == nullptr) {
    std::fprintf(stderr, "ringo: broken invariant: a HangupWatch destroyed outside its fiber\n");
    std::abort();
  }
  while (!done_) scheduler_->park("hangup watch");
}

}  // namespace ringo::net
