// LoopGroup: one loop per CPU, each on its own thread pinned to that CPU.
//
// By default the CPUs are those in the process's affinity mask (so `taskset`
// and cgroups decide), or an explicit list. Each thread pins itself with
// sched_setaffinity before it creates its loop, so the loop's memory (ring,
// stacks later) is first touched on its own CPU's NUMA node.
//
// Invariants: a loop thread destroys its loop only after stop() has finished
// posting to every loop (TSan found the race: a stop post that ends run()
// while the poster still reads the loop); start() returns only when every loop exists (or with the first
// error, after stopping the ones that started); stop() is idempotent, stops
// every loop and joins every thread; loop(i) stays valid until stop().
//
// Rejected: a thread pool with work stealing (moving work between cores
// defeats the point of per-core loops; fibers move only on purpose); letting
// the scheduler place threads (a loop that migrates loses its caches and its
// SO_INCOMING_CPU pairing with the NIC queue).
#pragma once

#include <cstddef>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "reactor/loop.h"

namespace ringo::reactor {

class LoopGroup {
 public:
  struct Options {
    std::vector<int> cpus;  // empty: every CPU in the affinity mask
    std::size_t count = 0;  // > 0: use only the first `count` of those CPUs
    bool pin = true;
    Loop::Options loop;     // index is set per loop
  };

  static sys::Result<std::unique_ptr<LoopGroup>> start(Options options);
  // The group whose loop thread this is, or null (any other thread).
  static LoopGroup* current();
  ~LoopGroup();
  LoopGroup(const LoopGroup&) = delete;
  LoopGroup& operator=(const LoopGroup&) = delete;

  std::size_t size() const { return loops_.size(); }
  Loop& loop(std::size_t i) { return *loops_[i]; }
  // The CPU loop i is pinned to (-1 when not pinned).
  int cpu(std::size_t i) const { return cpus_[i]; }

  void stop();

 private:
  LoopGroup() = default;

  std::vector<Loop*> loops_;
  std::vector<int> cpus_;
  std::vector<std::thread> threads_;
  // Set once stop() has posted to every loop; loop threads wait for it before
  // destroying their loop, so no post() reads a loop being destroyed.
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  bool stopped_ = false;
};

}  // namespace ringo::reactor
