// Error formatting and the abort for a misused Result (see result.h).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "syscall/result.h"

namespace ringo::sys {

const char* errno_name(int errnum) {
  // strerrorname_np is glibc >= 2.32 (Debian 12 has 2.36); it returns nullptr
  // for numbers it does not know.
  const char* name = ::strerrorname_np(errnum);
  return name ? name : "E?";
}

std::string Error::message() const {
  std::string out = subject_ ? fmt::format("{} {}", op_, subject_) : std::string(op_);
  const int n = code_.value();
  const char* name = ::strerrorname_np(n);
  if (name) {
    fmt::format_to(std::back_inserter(out), ": {} ({})", name, ::strerrordesc_np(n));
  } else {
    fmt::format_to(std::back_inserter(out), ": errno {}", n);
  }
  if (hint_) fmt::format_to(std::back_inserter(out), ": {}", hint_);
  return out;
}

void result_misuse(const char* what, const Error* error) {
  if (error) {
    std::fprintf(stderr, "ringo: broken invariant: %s (%s)\n", what, error->message().c_str());
  } else {
    std::fprintf(stderr, "ringo: broken invariant: %s\n", what);
  }
  std::abort();
}

}  // namespace ringo::sys
