// See timer_heap.h.
#include "reactor/timer_heap.h"

#include <cstdio>
#include <cstdlib>

namespace ringo::reactor {

void TimerHeap::push(Timer& t) {
  if (t.armed()) {
    std::fprintf(stderr, "ringo: broken invariant: timer pushed twice\n");
    std::abort();
  }
  t.seq = next_seq_++;
  slots_.push_back(&t);
  t.heap_index = static_cast<std::uint32_t>(slots_.size() - 1);
  sift_up(slots_.size() - 1);
}

bool TimerHeap::remove(Timer& t) {
  if (!t.armed()) return false;
  const std::size_t i = t.heap_index;
  Timer* last = slots_.back();
  slots_.pop_back();
  t.heap_index = Timer::kNotQueued;
  if (last != &t) {
    place(last, i);
    sift_up(i);
    sift_down(last->heap_index);
  }
  return true;
}

Timer* TimerHeap::pop_expired(std::int64_t now_ns) {
  Timer* t = top();
  if (!t || t->deadline_ns > now_ns) return nullptr;
  remove(*t);
  return t;
}

void TimerHeap::sift_up(std::size_t i) {
  Timer* t = slots_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 4;
    if (!before(t, slots_[parent])) break;
    place(slots_[parent], i);
    i = parent;
  }
  place(t, i);
}

void TimerHeap::sift_down(std::size_t i) {
  Timer* t = slots_[i];
  const std::size_t n = slots_.size();
  for (;;) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t end = first + 4 < n ? first + 4 : n;
    for (std::size_t c = first + 1; c < end; ++c) {
      if (before(slots_[c], slots_[best])) best = c;
    }
    if (!before(slots_[best], t)) break;
    place(slots_[best], i);
    i = best;
  }
  place(t, i);
}

}  // namespace ringo::reactor
