// CPU placement: which CPUs this thread may run on, pinning to one, and
// which one it is on now. Loop groups pin one loop per CPU with these.
#pragma once

#include <vector>

#include "syscall/result.h"

namespace ringo::sys {

// The CPUs in the calling thread's affinity mask, ascending.
Result<std::vector<int>> affinity_cpus();
// sched_setaffinity for the calling thread only.
Result<void> set_affinity(const std::vector<int>& cpus);
Result<void> pin_to_cpu(int cpu);
// sched_getcpu(3): the CPU the calling thread runs on at this instant.
Result<int> current_cpu();

}  // namespace ringo::sys
