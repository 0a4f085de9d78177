// See socket_options.h. apply() and verify() walk one list of options
// (for_each_set), so an option cannot be set without being checked.
#include "net/socket_options.h"

#include <fmt/format.h>

#include "syscall/sockopt.h"

namespace ringo::net {
namespace {

// Calls fn(option, value) for each option `o` sets, in the head comment's
// order; stops at (and returns) the first error.
template <class Fn>
sys::Result<void> for_each_set(const SocketOptions& o, Fn&& fn) {
  using namespace sys;
  if (auto r = fn(opt::tcp_nodelay, o.tcp_nodelay); !r) return r;
  if (o.busy_poll) {
    if (auto r = fn(opt::busy_poll, *o.busy_poll); !r) return r;
    if (o.prefer_busy_poll) {
      if (auto r = fn(opt::prefer_busy_poll, true); !r) return r;
    }
  }
  if (o.notsent_lowat) {
    if (auto r = fn(opt::notsent_lowat, *o.notsent_lowat); !r) return r;
  }
  if (o.send_buffer) {
    if (auto r = fn(opt::send_buffer, *o.send_buffer); !r) return r;
  }
  if (o.receive_buffer) {
    if (auto r = fn(opt::receive_buffer, *o.receive_buffer); !r) return r;
  }
  if (o.keepalive) {
    if (auto r = fn(opt::keepalive, true); !r) return r;
    if (auto r = fn(opt::keep_idle, o.keepalive->idle); !r) return r;
    if (auto r = fn(opt::keep_interval, o.keepalive->interval); !r) return r;
    if (auto r = fn(opt::keep_count, o.keepalive->count); !r) return r;
  }
  return sys::ok();
}

}  // namespace

sys::Result<void> SocketOptions::apply(int fd) const {
  return for_each_set(*this, [fd](const auto& o, auto value) { return sys::set_option(fd, o, value); });
}

sys::Result<void> SocketOptions::verify(int fd) const {
  return for_each_set(*this, [fd](const auto& o, auto value) -> sys::Result<void> {
    auto got = sys::get_option(fd, o);
    if (!got) return got.error();
    // The kernel doubles a buffer request (socket(7)) and clamps it to
    // net.core.{w,r}mem_max: at least the request must be there.
    const bool is_buffer = o.name == SO_SNDBUF || o.name == SO_RCVBUF;
    if (is_buffer ? *got < value : *got != value) {
      return sys::Error(o.label, EINVAL, nullptr, "the kernel reports another value than the one set");
    }
    return sys::ok();
  });
}

std::string SocketOptions::describe() const {
  std::string s = tcp_nodelay ? "nodelay" : "nagle";
  if (busy_poll) s += fmt::format(" busy_poll={}us{}", busy_poll->count(), prefer_busy_poll ? "(prefer)" : "");
  if (notsent_lowat) s += fmt::format(" notsent_lowat={}", *notsent_lowat);
  if (send_buffer) s += fmt::format(" sndbuf={}", *send_buffer);
  if (receive_buffer) s += fmt::format(" rcvbuf={}", *receive_buffer);
  if (keepalive) {
    s += fmt::format(" keepalive={}s/{}s/{}", keepalive->idle.count(), keepalive->interval.count(), keepalive->count);
  }
  return s;
}

}  // namespace ringo::net
