// The reactor's clock: CLOCK_MONOTONIC in nanoseconds, the one time base of
// timers, deadlines and operation timeouts (never the wall clock, which jumps).
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace ringo::reactor {

inline std::int64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace ringo::reactor
