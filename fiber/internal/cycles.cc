// See cycles.h.
#include "fiber/internal/cycles.h"

#include <fstream>
#include <string>

namespace ringo::fiber::internal {
bool tsc_is_invariant() {
#if defined(__x86_64__)
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" constant_tsc") != std::string::npos && line.find(" nonstop_tsc") != std::string::npos;
    }
  }
#endif
  return false;
}

namespace {

double calibrate() {
  if (!cycles_are_tsc()) return 1.0;
  const std::int64_t ns0 = reactor::now_ns();
  const std::uint64_t c0 = cycles();
  std::int64_t ns1 = ns0;
  while (ns1 - ns0 < 2'000'000) ns1 = reactor::now_ns();
  const std::uint64_t c1 = cycles();
  return static_cast<double>(c1 - c0) / static_cast<double>(ns1 - ns0);
}

}  // namespace

double cycles_per_ns() {
  static const double rate = calibrate();
  return rate;
}

}  // namespace ringo::fiber::internal
