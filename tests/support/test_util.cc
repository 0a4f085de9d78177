// See test_util.h.
#include "tests/support/test_util.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

namespace ringo::testing {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

bool kernel_at_least(int major, int minor) {
  utsname u{};
  int ma = 0;
  int mi = 0;
  return ::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &ma, &mi) == 2 &&
         (ma > major || (ma == major && mi >= minor));
}

bool is_cloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

bool is_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) != 0;
}

std::optional<sys::FdInfo> registered(const sys::Fd& fd) {
  for (sys::FdInfo& info : sys::fd_registry::snapshot()) {
    if (info.fd == fd.get() && info.tag == fd.tag()) return info;
  }
  return std::nullopt;
}

std::optional<sys::FdKind> registered_kind(const sys::Fd& fd) {
  auto info = registered(fd);
  if (!info) return std::nullopt;
  return info->kind;
}

bool has_effective_capability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap)) != 0;
}

bool drop_effective_capability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_TO_INDEX(cap)].effective &= ~CAP_TO_MASK(cap);
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace ringo::testing
