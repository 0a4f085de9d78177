// See io.h.
#include "syscall/io.h"

#include <unistd.h>

namespace ringo::sys {

Result<std::size_t> read(int fd, std::span<std::byte> buf) {
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  if (n < 0) return Error::from_errno("read");
  return static_cast<std::size_t>(n);
}

Result<std::size_t> write(int fd, std::span<const std::byte> buf) {
  const ssize_t n = ::write(fd, buf.data(), buf.size());
  if (n < 0) return Error::from_errno("write");
  return static_cast<std::size_t>(n);
}

Result<std::size_t> readv(int fd, std::span<const iovec> iov) {
  const ssize_t n = ::readv(fd, iov.data(), static_cast<int>(iov.size()));
  if (n < 0) return Error::from_errno("readv");
  return static_cast<std::size_t>(n);
}

Result<std::size_t> writev(int fd, std::span<const iovec> iov) {
  const ssize_t n = ::writev(fd, iov.data(), static_cast<int>(iov.size()));
  if (n < 0) return Error::from_errno("writev");
  return static_cast<std::size_t>(n);
}

}  // namespace ringo::sys
