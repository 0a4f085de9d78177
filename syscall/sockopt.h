// Typed socket options: each option is a constant that knows its level, name,
// value type and unit, so `set_option(fd, opt::busy_poll, 50us)` cannot pass
// milliseconds where the kernel wants microseconds, nor a bool where it wants
// bytes. get_option reads the kernel's value back.
//
// What the kernel reports back is not always what was set, and the types say
// so here rather than hiding it:
//  - send_buffer / receive_buffer: the kernel doubles the request (for its own
//    bookkeeping) and clamps it to net.core.{w,r}mem_max; get returns that.
//  - defer_accept: the kernel keeps a retransmission count, so seconds read
//    back round up to 1, 3, 7, 15, ... (1 + 2 + 4 + ...).
//  - busy_poll_budget and prefer_busy_poll: raising them needs CAP_NET_ADMIN;
//    without it the kernel says EPERM and the Error says why. busy_poll
//    needed it too before Linux 6.4 (commit 48b7ea1d22dd, "net: make
//    SO_BUSY_POLL available to all users"); its hint is for those kernels.
//  - busy_poll_budget is write-only: the kernel has no getsockopt for
//    SO_BUSY_POLL_BUDGET (ENOPROTOOPT, still so in 6.18), and error (SO_ERROR)
//    is read-only. The access is part of the option's type, so get_option on
//    the one and set_option on the other do not compile.
//
// Rejected: one set_option(int level, int name, int value) (the unit bugs are
// the point); a setsockopt wrapper per option (fifteen copies of one function).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <type_traits>

#include "syscall/result.h"

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69  // Linux 5.11
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70  // Linux 5.11
#endif

namespace ringo::sys {

enum class OptAccess { read_write, read_only, write_only };

template <class T, OptAccess Access = OptAccess::read_write>
struct SockOpt {
  int level;
  int name;
  const char* label;
  const char* eperm_hint = nullptr;  // why the kernel may refuse with EPERM
};

namespace opt {
using std::chrono::microseconds;
using std::chrono::seconds;

inline constexpr const char* kNeedsNetAdmin =
    "raising it needs CAP_NET_ADMIN (run as root or grant the capability; "
    "net.core.busy_read/busy_poll set a system-wide default instead)";

inline constexpr SockOpt<bool> reuse_addr{SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"};
inline constexpr SockOpt<bool> reuse_port{SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"};
inline constexpr SockOpt<bool> keepalive{SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"};
inline constexpr SockOpt<int> send_buffer{SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"};     // bytes
inline constexpr SockOpt<int> receive_buffer{SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"};  // bytes
inline constexpr SockOpt<int> incoming_cpu{SOL_SOCKET, SO_INCOMING_CPU, "SO_INCOMING_CPU"};
inline constexpr SockOpt<microseconds> busy_poll{SOL_SOCKET, SO_BUSY_POLL, "SO_BUSY_POLL", kNeedsNetAdmin};
inline constexpr SockOpt<bool> prefer_busy_poll{SOL_SOCKET, SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL",
                                                "enabling it needs CAP_NET_ADMIN"};
// Write-only: the kernel cannot report it back (see the head comment).
inline constexpr SockOpt<int, OptAccess::write_only> busy_poll_budget{
    SOL_SOCKET, SO_BUSY_POLL_BUDGET, "SO_BUSY_POLL_BUDGET", kNeedsNetAdmin};  // packets per poll

inline constexpr SockOpt<bool> tcp_nodelay{IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"};
inline constexpr SockOpt<int> notsent_lowat{IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT"};  // bytes
inline constexpr SockOpt<seconds> keep_idle{IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE"};
inline constexpr SockOpt<seconds> keep_interval{IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL"};
inline constexpr SockOpt<int> keep_count{IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT"};  // probes
inline constexpr SockOpt<seconds> defer_accept{IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT"};

// Read-only: the pending error of a socket (0 when none), e.g. after a
// non-blocking connect.
inline constexpr SockOpt<int, OptAccess::read_only> error{SOL_SOCKET, SO_ERROR, "SO_ERROR"};
}  // namespace opt

namespace sockopt_detail {
Result<void> set_int(int fd, int level, int name, const char* label, const char* eperm_hint, int value);
Result<int> get_int(int fd, int level, int name, const char* label);

template <class T>
int to_int(T v) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int>) {
    return static_cast<int>(v);
  } else {
    return static_cast<int>(v.count());
  }
}
template <class T>
T from_int(int v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_same_v<T, int>) {
    return v;
  } else {
    return T(v);
  }
}
}  // namespace sockopt_detail

template <class T, OptAccess A>
  requires(A != OptAccess::read_only)
Result<void> set_option(int fd, const SockOpt<T, A>& o, T value) {
  return sockopt_detail::set_int(fd, o.level, o.name, o.label, o.eperm_hint, sockopt_detail::to_int(value));
}

template <class T, OptAccess A>
  requires(A != OptAccess::write_only)
Result<T> get_option(int fd, const SockOpt<T, A>& o) {
  Result<int> r = sockopt_detail::get_int(fd, o.level, o.name, o.label);
  if (!r) return r.error();
  return sockopt_detail::from_int<T>(*r);
}

}  // namespace ringo::sys
