// Typed socket calls: socket, bind, listen, accept4, connect, getsockname,
// getpeername, shutdown, and SockAddr, the raw address they take.
//
// Invariants: every descriptor is created close-on-exec and comes back as an
// Fd (registered); calls that only use a socket take a plain `int fd`. Errors
// carry the call's name: "connect: ECONNREFUSED (Connection refused)".
// connect on a non-blocking socket returns EINPROGRESS as an Error: the caller
// (a reactor backend) waits for writability and reads SO_ERROR.
//
// SockAddr is the storage the kernel reads and writes, with just enough to
// build and print loopback/any addresses; net/ builds its richer Address
// (resolution, parsing of "host:port") on it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "syscall/fd.h"
#include "syscall/result.h"

namespace ringo::sys {

class SockAddr {
 public:
  SockAddr() = default;

  // Parses a numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "[::1]") address.
  static Result<SockAddr> parse(std::string_view ip, std::uint16_t port);
  static SockAddr ipv4_loopback(std::uint16_t port);
  static SockAddr ipv6_loopback(std::uint16_t port);
  static SockAddr ipv4_any(std::uint16_t port);

  int family() const { return storage_.ss_family; }
  std::uint16_t port() const;
  // "127.0.0.1:8080", "[::1]:8080"
  std::string to_string() const;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const { return len_; }
  socklen_t* size_ptr() { return &len_; }
  static constexpr socklen_t capacity() { return sizeof(sockaddr_storage); }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// socket(2); SOCK_CLOEXEC is always added. Use SOCK_NONBLOCK for reactor sockets.
Result<Fd> socket(int domain, int type, int protocol = 0, Site site = RINGO_HERE);
Result<void> bind(int fd, const SockAddr& addr);
// Also relabels the fd as a listener in the registry.
Result<void> listen(const Fd& fd, int backlog);
// accept4(2); SOCK_CLOEXEC is always added. `peer` may be null.
Result<Fd> accept4(int listener, SockAddr* peer, int flags = SOCK_NONBLOCK, Site site = RINGO_HERE);
Result<void> connect(int fd, const SockAddr& addr);
Result<SockAddr> getsockname(int fd);
Result<SockAddr> getpeername(int fd);
// how: SHUT_RD, SHUT_WR or SHUT_RDWR
Result<void> shutdown(int fd, int how);

// A connected pair of AF_UNIX sockets (socketpair(2)).
struct SocketPair {
  Fd first;
  Fd second;
};
Result<SocketPair> socketpair(int type, Site site = RINGO_HERE);

}  // namespace ringo::sys
