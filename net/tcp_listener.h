// TcpListener: one listening TCP socket, and the fiber-side accept that serves
// it: multishot on io_uring (one submission, a completion per connection),
// repeated single accepts in the epoll backend's imitation of it.
//
//   auto l = net::TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
//   net::TcpStream conn = l.accept().value();   // parks "accept"
//
// A server runs one listener per loop on the same port with SO_REUSEPORT, so
// the kernel spreads connections over the loops' cores (net/tcp_server.h).
//
// Invariants:
//  - accept() returns a connection with ListenOptions::accepted applied. An
//    option the kernel refuses for an accepted socket (it did not for the
//    listening one: see listen()) is logged once per listener and the
//    connection is served untuned rather than dropped.
//  - Errors of the peer's making (ECONNABORTED: reset before we accepted it)
//    are skipped inside accept(); they never reach the caller.
//  - EMFILE/ENFILE (no descriptors left) come back as errors: the caller
//    decides how to wait (TcpServer pauses and logs). accept() never retries
//    them in a loop of its own, so it cannot spin.
//  - io_uring reads RLIMIT_NOFILE when the accept is submitted, not when a
//    connection arrives: an armed multishot accept keeps the limit of its
//    submission. A limit raised later takes effect after the next EMFILE
//    ends the multishot (it is re-armed then); set the limit before the
//    first accept() (examples/common/server_main.cc does).
//  - The multishot operation lives in the listener; only one fiber accepts on
//    a listener at a time. Connections the kernel handed over before the
//    listener is closed and not yet taken are closed with it, never leaked
//    (they are sys::Fd values).
//  - The listener must be used on one loop: the first accept() binds it to
//    the calling fiber's loop.
//
// Rejected: a dedicated acceptor thread handing connections to loops (one
// more hop per connection and a shared queue; SO_REUSEPORT lets the kernel
// do the spreading); applying options through inheritance from the listening
// socket (not all are inherited, see socket_options.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "net/socket_options.h"
#include "net/tcp_stream.h"
#include "reactor/operation.h"
#include "syscall/fd.h"
#include "syscall/result.h"
#include "syscall/socket.h"

namespace ringo::net {

struct ListenOptions {
  int backlog = 4096;       // capped by net.core.somaxconn
  bool reuse_port = true;   // SO_REUSEPORT: several listeners on one port
  bool multishot = true;    // io_uring multishot accept (false: one accept per call)
  SocketOptions accepted;   // applied to every accepted connection
};

class TcpListener {
 public:
  TcpListener();
  ~TcpListener();
  TcpListener(TcpListener&&) noexcept;
  TcpListener& operator=(TcpListener&&) noexcept;

  // A listening socket bound to `addr` (port 0: the kernel picks one; read it
  // back with local_address()). SO_REUSEADDR is always set. The accepted
  // options are applied to this socket too, so a refusal (EPERM for
  // busy_poll without CAP_NET_ADMIN) is reported here, at start-up.
  static sys::Result<TcpListener> listen(const sys::SockAddr& addr, const ListenOptions& options = {});

  // The next connection. Parks "accept" until one arrives or the token ends
  // (ECANCELED / ETIMEDOUT). EMFILE/ENFILE: see the head comment.
  sys::Result<TcpStream> accept(const CancelToken& token = this_fiber::token());

  sys::Result<sys::SockAddr> local_address() const;
  int fd() const;
  const ListenOptions& options() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ringo::net
