// Plain descriptor I/O: read, write, readv/writev. Errors keep their errno
// (EAGAIN included: non-blocking callers decide what it means).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "syscall/result.h"

namespace ringo::sys {

Result<std::size_t> read(int fd, std::span<std::byte> buf);
Result<std::size_t> write(int fd, std::span<const std::byte> buf);
Result<std::size_t> readv(int fd, std::span<const iovec> iov);
Result<std::size_t> writev(int fd, std::span<const iovec> iov);

}  // namespace ringo::sys
