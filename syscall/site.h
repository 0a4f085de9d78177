// Site: where in the source something happened (file, function, line), taken
// at the caller through default arguments: `void f(Site site = RINGO_HERE)`.
//
// Rejected: std::source_location, which clang 14 with libstdc++ 12 lacks
// (it needs __builtin_source_location, clang 15+). The __builtin_FILE family
// is in both g++ and clang and is evaluated at the call site when used in a
// default argument, which is exactly what a creation site needs.
#pragma once

#include <cstdint>

namespace ringo::sys {

struct Site {
  // The defaults are evaluated where a function taking `Site site = {}` is
  // called, in g++ and clang alike; a braced {__builtin_FILE(), ...} default
  // argument is not (g++ evaluates it at the declaration).
  constexpr Site(const char* file_ = __builtin_FILE(), const char* function_ = __builtin_FUNCTION(),
                 std::uint64_t line_ = __builtin_LINE())
      : file(file_), function(function_), line(line_) {}

  const char* file;
  const char* function;
  // 64 bits on purpose: a 32-bit line plus padding, copied as one 64-bit word
  // when a Site is passed by value, stalls store forwarding (~5 ns per call,
  // bench/syscall/fd_registry_bench.cc).
  std::uint64_t line;
};

}  // namespace ringo::sys

// The caller's site, as a default argument: `void f(Site site = RINGO_HERE)`.
#define RINGO_HERE ::ringo::sys::Site()
