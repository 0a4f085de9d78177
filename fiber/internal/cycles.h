// Cycles: the scheduler's cheap clock. One read per fiber switch feeds both
// the per-fiber CPU time and the long-run check, so it must cost a few ns:
// RDTSC on x86-64 (measured ~10 ns on the dev VM, against ~25 ns for a vDSO
// clock_gettime), CLOCK_MONOTONIC elsewhere. The TSC is trusted only where
// the CPU says it is invariant (constant_tsc + nonstop_tsc); otherwise the
// clock is used on x86-64 too.
//
// Conversion to nanoseconds uses a rate measured once per process (a 2 ms
// calibration against CLOCK_MONOTONIC, the first time a rate is needed).
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "reactor/clock.h"

namespace ringo::fiber::internal {

// Whether the CPU's TSC is invariant (read from /proc/cpuinfo).
bool tsc_is_invariant();

// Whether cycles() reads the TSC (decided once, on first use).
inline bool cycles_are_tsc() {
  static const bool use = tsc_is_invariant();
  return use;
}

inline std::uint64_t cycles() {
#if defined(__x86_64__)
  if (cycles_are_tsc()) [[likely]] return __rdtsc();
#endif
  return static_cast<std::uint64_t>(reactor::now_ns());
}

// Cycles per nanosecond (1.0 when cycles() is the clock).
double cycles_per_ns();
inline std::int64_t cycles_to_ns(std::uint64_t c) { return static_cast<std::int64_t>(static_cast<double>(c) / cycles_per_ns()); }
inline std::uint64_t ns_to_cycles(std::int64_t ns) { return static_cast<std::uint64_t>(static_cast<double>(ns) * cycles_per_ns()); }

}  // namespace ringo::fiber::internal
