// See cpu.h.
#include "syscall/cpu.h"

#include <sched.h>

namespace ringo::sys {

Result<std::vector<int>> affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) < 0) return Error::from_errno("sched_getaffinity");
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

Result<void> set_affinity(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return Error("sched_setaffinity", EINVAL, nullptr, "cpu number out of range");
    CPU_SET(cpu, &set);
  }
  if (::sched_setaffinity(0, sizeof(set), &set) < 0) return Error::from_errno("sched_setaffinity");
  return ok();
}

Result<void> pin_to_cpu(int cpu) { return set_affinity({cpu}); }

Result<int> current_cpu() {
  const int cpu = ::sched_getcpu();
  if (cpu < 0) return Error::from_errno("sched_getcpu");
  return cpu;
}

}  // namespace ringo::sys
