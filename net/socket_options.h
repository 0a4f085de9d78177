// SocketOptions: the per-connection tuning a server applies to every socket
// it accepts (and a client to every socket it connects), as one value type.
//
// What each option does, and when it helps (docs/net.md has the long form):
//  - tcp_nodelay (default on): sends small writes at once instead of waiting
//    for the previous segment's ACK (Nagle). Request/response and SSE servers
//    write whole messages, so Nagle only adds latency (up to an RTT or the
//    peer's 40 ms delayed ACK).
//  - busy_poll (SO_BUSY_POLL, µs) with prefer_busy_poll (SO_PREFER_BUSY_POLL):
//    a blocking receive or epoll wait on this socket polls the NIC queue for
//    up to that long before sleeping. Trades CPU for tail latency on real
//    NICs with per-queue interrupts; no effect on loopback. Needed
//    CAP_NET_ADMIN before Linux 6.4; prefer_busy_poll always does.
//  - notsent_lowat (TCP_NOTSENT_LOWAT, bytes): the socket reports writable
//    (and accepts more) only while fewer than this many bytes wait unsent in
//    its send queue. Keeps data in the application, where it can still be
//    coalesced or dropped, instead of deep in the kernel: SSE streams use it
//    to park a writer behind a slow reader with bounded memory (net/sse/).
//  - send_buffer / receive_buffer (SO_SNDBUF / SO_RCVBUF, bytes): fixed
//    buffer sizes; the kernel doubles them and turns off its autotuning. Leave
//    unset unless many connections must each cost little kernel memory (the
//    autotuned defaults grow to megabytes per socket) or a bandwidth-delay
//    product needs more than autotuning gives.
//  - keepalive (SO_KEEPALIVE + TCP_KEEPIDLE/INTVL/CNT): the kernel probes an
//    idle connection and resets it when the peer is gone without a FIN
//    (a crashed host, a NAT that forgot the flow). Catches dead peers of
//    long-idle connections; an application timeout catches them sooner.
//
// Invariants: apply() sets the options in the order above and stops at the
// first refusal, with the kernel's reason (and a hint for EPERM); an option
// left unset (std::nullopt / false) is not touched. verify() reads each set
// option back with getsockopt and fails naming the first that differs from
// what the kernel should report (the doubling of buffer sizes accounted for).
//
// Rejected: setting the options on the listening socket and relying on
// inheritance (Linux copies some to accepted sockets, not all, and which ones
// is not documented); applying them lazily on first write (the first response
// would go out untuned).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "syscall/result.h"

namespace ringo::net {

struct KeepAlive {
  std::chrono::seconds idle{60};      // idle time before the first probe
  std::chrono::seconds interval{10};  // between probes
  int count = 6;                      // unanswered probes before the reset
};

struct SocketOptions {
  bool tcp_nodelay = true;
  std::optional<std::chrono::microseconds> busy_poll;
  bool prefer_busy_poll = false;  // only with busy_poll
  std::optional<int> notsent_lowat;
  std::optional<int> send_buffer;
  std::optional<int> receive_buffer;
  std::optional<KeepAlive> keepalive;

  // Applies the options to `fd` (a TCP socket).
  sys::Result<void> apply(int fd) const;
  // Reads back every option this value sets; an Error names the first one
  // whose value differs.
  sys::Result<void> verify(int fd) const;
  // "nodelay busy_poll=50us notsent_lowat=16384 ..." for logs.
  std::string describe() const;
};

}  // namespace ringo::net
