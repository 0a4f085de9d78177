// Small helpers shared by test files: descriptor flags, the registry record
// of one Fd, and dropping a capability (for EPERM paths when tests run as root).
#pragma once

#include <optional>

#include "syscall/fd.h"
#include "syscall/fd_registry.h"

namespace ringo::testing {

bool is_open(int fd);
bool is_cloexec(int fd);
bool is_nonblocking(int fd);

// The registry's record of this very Fd (number and owner tag), if any.
std::optional<sys::FdInfo> registered(const sys::Fd& fd);
std::optional<sys::FdKind> registered_kind(const sys::Fd& fd);

// Raw capget/capset (no libcap): whether `cap` is in the effective set, and
// clearing it from there (for the rest of the calling process: use in a
// death-test child).
bool has_effective_capability(int cap);
bool drop_effective_capability(int cap);

// Whether the running kernel is at least major.minor (uname).
bool kernel_at_least(int major, int minor);

// Sets the fd registry's violation policy for one scope and restores the
// previous one however the scope ends (ASSERT_* returns early).
class FdPolicyGuard {
 public:
  explicit FdPolicyGuard(sys::FdViolationPolicy policy) : saved_(sys::fd_registry::policy()) {
    sys::fd_registry::set_policy(policy);
  }
  ~FdPolicyGuard() { sys::fd_registry::set_policy(saved_); }
  FdPolicyGuard(const FdPolicyGuard&) = delete;
  FdPolicyGuard& operator=(const FdPolicyGuard&) = delete;

 private:
  sys::FdViolationPolicy saved_;
};

}  // namespace ringo::testing
