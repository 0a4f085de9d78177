// Resource limits. A server holding tens of thousands of connections needs
// RLIMIT_NOFILE's soft limit raised to the hard one at start-up
// (raise_nofile_limit); the hard limit itself only root can raise.
#pragma once

#include <sys/resource.h>

#include "syscall/result.h"

namespace ringo::sys {

struct Limit {
  rlim_t soft = 0;
  rlim_t hard = 0;
};

Result<Limit> getrlimit(int resource);
Result<void> setrlimit(int resource, Limit limit);
// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new limit.
Result<Limit> raise_nofile_limit();

}  // namespace ringo::sys
