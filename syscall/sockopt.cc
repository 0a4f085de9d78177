// See sockopt.h.
#include "syscall/sockopt.h"

namespace ringo::sys::sockopt_detail {

Result<void> set_int(int fd, int level, int name, const char* label, const char* eperm_hint, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) < 0) {
    Error e = Error::from_errno("setsockopt", label);
    if (e.is(EPERM) && eperm_hint) return e.with_hint(eperm_hint);
    return e;
  }
  return ok();
}

Result<int> get_int(int fd, int level, int name, const char* label) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, level, name, &value, &len) < 0) return Error::from_errno("getsockopt", label);
  return value;
}

}  // namespace ringo::sys::sockopt_detail
