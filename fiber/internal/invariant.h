// The small helpers every file of fiber/ shares: how a broken invariant ends
// the process, and how a spin-wait says so to the CPU.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace ringo::fiber::internal {

// A program bug that cannot be handled (a lifetime or misuse error): says
// what was broken, then aborts (a core dump shows where).
[[noreturn]] inline void die(const char* what) {
  std::fprintf(stderr, "ringo: broken invariant: %s\n", what);
  std::abort();
}

// One round of a spin-wait: tells the CPU (and a hyperthread sibling).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace ringo::fiber::internal
