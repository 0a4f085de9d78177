// See socket.h.
#include "syscall/socket.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

namespace ringo::sys {

Result<SockAddr> SockAddr::parse(std::string_view ip, std::uint16_t port) {
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.size() >= sizeof(buf)) return Error("inet_pton", EINVAL, nullptr, "address too long");
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  SockAddr a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
    return a;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len_ = sizeof(sockaddr_in6);
    return a;
  }
  return Error("inet_pton", EINVAL, nullptr, "not a numeric IPv4 or IPv6 address");
}

SockAddr SockAddr::ipv4_loopback(std::uint16_t port) {
  SockAddr a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

SockAddr SockAddr::ipv4_any(std::uint16_t port) {
  SockAddr a = ipv4_loopback(port);
  reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_addr.s_addr = htonl(INADDR_ANY);
  return a;
}

SockAddr SockAddr::ipv6_loopback(std::uint16_t port) {
  SockAddr a;
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  v6->sin6_addr = in6addr_loopback;
  a.len_ = sizeof(sockaddr_in6);
  return a;
}

std::uint16_t SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SockAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
    return fmt::format("{}:{}", buf, port());
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof(buf));
    return fmt::format("[{}]:{}", buf, port());
  }
  if (family() == AF_UNIX) return "unix";
  return fmt::format("family-{}", family());
}

Result<Fd> socket(int domain, int type, int protocol, Site site) {
  const int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) return Error::from_errno("socket");
  return Fd::adopt(fd, FdKind::socket, site);
}

Result<void> bind(int fd, const SockAddr& addr) {
  if (::bind(fd, addr.get(), addr.size()) < 0) return Error::from_errno("bind");
  return ok();
}

Result<void> listen(const Fd& fd, int backlog) {
  if (::listen(fd.get(), backlog) < 0) return Error::from_errno("listen");
  fd.set_kind(FdKind::listener);
  return ok();
}

Result<Fd> accept4(int listener, SockAddr* peer, int flags, Site site) {
  socklen_t* len = nullptr;
  if (peer) {
    *peer->size_ptr() = SockAddr::capacity();
    len = peer->size_ptr();
  }
  const int fd = ::accept4(listener, peer ? peer->get() : nullptr, len, flags | SOCK_CLOEXEC);
  if (fd < 0) return Error::from_errno("accept4");
  return Fd::adopt(fd, FdKind::socket, site);
}

Result<void> connect(int fd, const SockAddr& addr) {
  if (::connect(fd, addr.get(), addr.size()) < 0) return Error::from_errno("connect");
  return ok();
}

Result<SockAddr> getsockname(int fd) {
  SockAddr a;
  *a.size_ptr() = SockAddr::capacity();
  if (::getsockname(fd, a.get(), a.size_ptr()) < 0) return Error::from_errno("getsockname");
  return a;
}

Result<SockAddr> getpeername(int fd) {
  SockAddr a;
  *a.size_ptr() = SockAddr::capacity();
  if (::getpeername(fd, a.get(), a.size_ptr()) < 0) return Error::from_errno("getpeername");
  return a;
}

Result<void> shutdown(int fd, int how) {
  if (::shutdown(fd, how) < 0) return Error::from_errno("shutdown");
  return ok();
}

Result<SocketPair> socketpair(int type, Site site) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) < 0) return Error::from_errno("socketpair");
  return SocketPair{Fd::adopt(fds[0], FdKind::socket, site), Fd::adopt(fds[1], FdKind::socket, site)};
}

}  // namespace ringo::sys
