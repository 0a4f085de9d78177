// See rlimit.h.
#include "syscall/rlimit.h"

namespace ringo::sys {

Result<Limit> getrlimit(int resource) {
  rlimit rl{};
  if (::getrlimit(resource, &rl) < 0) return Error::from_errno("getrlimit");
  return Limit{rl.rlim_cur, rl.rlim_max};
}

Result<void> setrlimit(int resource, Limit limit) {
  rlimit rl{limit.soft, limit.hard};
  if (::setrlimit(resource, &rl) < 0) {
    Error e = Error::from_errno("setrlimit");
    if (e.is(EPERM)) return e.with_hint("raising a hard limit needs CAP_SYS_RESOURCE");
    return e;
  }
  return ok();
}

Result<Limit> raise_nofile_limit() {
  Result<Limit> cur = getrlimit(RLIMIT_NOFILE);
  if (!cur) return cur;
  if (cur->soft >= cur->hard) return cur;
  Limit next{cur->hard, cur->hard};
  if (auto r = setrlimit(RLIMIT_NOFILE, next); !r) return r.error();
  return next;
}

}  // namespace ringo::sys
