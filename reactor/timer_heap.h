// Timers: an intrusive 4-ary min-heap keyed by (deadline, insertion order).
//
// Invariants: a Timer is in at most one heap; heap_index is its slot while
// queued and kNotQueued otherwise; equal deadlines fire in insertion order.
// Insert and cancel are O(log n) with no allocation once the slot vector has
// grown (a million timers need 8 MB of slots, nothing else).
//
// Rejected: a hierarchical timing wheel (O(1) insert, but its cascading costs
// show up as latency spikes, and per-tick granularity rounds deadlines the
// fiber sleeps want exact; the heap's log n on n = 100,000 is ~8 levels of a
// 4-ary tree in cache); std::multimap (an allocation per timer);
// std::priority_queue (no cancel).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace ringo::reactor {

struct Timer {
  using Fn = void (*)(Timer& timer);
  static constexpr std::uint32_t kNotQueued = std::numeric_limits<std::uint32_t>::max();

  Fn on_fire = nullptr;  // called on the loop's thread when the deadline passes
  void* user = nullptr;  // the caller's context
  std::int64_t deadline_ns = 0;  // absolute, reactor clock (clock.h)

  bool armed() const { return heap_index != kNotQueued; }

  // private to TimerHeap
  std::uint32_t heap_index = kNotQueued;
  std::uint64_t seq = 0;
};

class TimerHeap {
 public:
  void push(Timer& t);
  // Removes `t` if queued; returns whether it was.
  bool remove(Timer& t);
  Timer* top() const { return slots_.empty() ? nullptr : slots_.front(); }
  // Removes and returns the earliest timer whose deadline is <= now, or null.
  Timer* pop_expired(std::int64_t now_ns);
  std::size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }

 private:
  static bool before(const Timer* a, const Timer* b) {
    return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
  }
  void place(Timer* t, std::size_t i) {
    slots_[i] = t;
    t->heap_index = static_cast<std::uint32_t>(i);
  }
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);

  std::vector<Timer*> slots_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace ringo::reactor
