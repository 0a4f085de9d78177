// See fd.h.
#include "syscall/fd.h"

#include <unistd.h>

namespace ringo::sys {

Result<void> close_owned(int fd, OwnerTag tag, Site site) {
  if (!fd_registry::on_close(fd, tag, site)) {
    return Error("close", EBADF, nullptr, "refused by the fd registry: the caller does not own this fd");
  }
  if (::close(fd) < 0 && errno != EINTR) {
    // EINTR: Linux has released the descriptor already (see fd.h); not an error.
    return Error::from_errno("close");
  }
  return ok();
}

Result<void> Fd::close(Site site) {
  if (fd_ < 0) return ok();
  const int fd = std::exchange(fd_, -1);
  return close_owned(fd, std::exchange(tag_, 0), site);
}

int Fd::release(Site site) noexcept {
  if (fd_ < 0) return -1;
  const int fd = std::exchange(fd_, -1);
  fd_registry::on_release(fd, std::exchange(tag_, 0), site);
  return fd;
}

}  // namespace ringo::sys
