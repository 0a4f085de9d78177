// TimerHeap: order (deadline, then insertion), cancel anywhere in the heap,
// and a million timers.
#include "reactor/timer_heap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

namespace ringo::reactor {
namespace {

TEST(TimerHeap, PopsInDeadlineThenInsertionOrder) {
  TimerHeap heap;
  std::vector<Timer> timers(6);
  const std::int64_t deadlines[] = {50, 10, 30, 10, 20, 10};
  for (std::size_t i = 0; i < timers.size(); ++i) {
    timers[i].deadline_ns = deadlines[i];
    heap.push(timers[i]);
  }
  std::vector<std::size_t> order;
  while (Timer* t = heap.pop_expired(1000)) order.push_back(static_cast<std::size_t>(t - timers.data()));
  EXPECT_EQ(order, (std::vector<std::size_t>{1, 3, 5, 4, 2, 0}));
  for (const Timer& t : timers) EXPECT_FALSE(t.armed());
}

TEST(TimerHeap, PopExpiredStopsAtNow) {
  TimerHeap heap;
  Timer a, b;
  a.deadline_ns = 5;
  b.deadline_ns = 15;
  heap.push(a);
  heap.push(b);
  EXPECT_EQ(heap.pop_expired(10), &a);
  EXPECT_EQ(heap.pop_expired(10), nullptr);
  EXPECT_TRUE(b.armed());
  EXPECT_EQ(heap.pop_expired(15), &b);
}

TEST(TimerHeap, CancelFromAnywhere) {
  TimerHeap heap;
  std::vector<Timer> timers(100);
  for (std::size_t i = 0; i < timers.size(); ++i) {
    timers[i].deadline_ns = static_cast<std::int64_t>((i * 37) % 100);
    heap.push(timers[i]);
  }
  for (std::size_t i = 0; i < timers.size(); i += 3) EXPECT_TRUE(heap.remove(timers[i]));
  EXPECT_FALSE(heap.remove(timers[0]));  // already removed
  std::int64_t last = -1;
  std::size_t popped = 0;
  while (Timer* t = heap.pop_expired(1000)) {
    EXPECT_GE(t->deadline_ns, last);
    EXPECT_NE((t - timers.data()) % 3, 0);
    last = t->deadline_ns;
    ++popped;
  }
  EXPECT_EQ(popped, 66u);
}

TEST(TimerHeap, AMillionTimersInsertCancelAndExpireInOrder) {
  constexpr std::size_t kCount = 1'000'000;
  auto timers = std::make_unique<Timer[]>(kCount);
  TimerHeap heap;
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i < kCount; ++i) {
    timers[i].deadline_ns = static_cast<std::int64_t>(rng() % 10'000'000);
    heap.push(timers[i]);
  }
  ASSERT_EQ(heap.size(), kCount);
  // Cancel every other one, in a scattered order.
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < kCount; i += 2) cancelled += heap.remove(timers[(i * 7919) % kCount]) ? 1 : 0;
  const std::size_t left = heap.size();
  EXPECT_EQ(left, kCount - cancelled);
  std::int64_t last = -1;
  std::size_t popped = 0;
  while (Timer* t = heap.pop_expired(std::numeric_limits<std::int64_t>::max())) {
    ASSERT_GE(t->deadline_ns, last);
    last = t->deadline_ns;
    ++popped;
  }
  EXPECT_EQ(popped, left);
}

TEST(TimerHeapDeathTest, DoublePushAborts) {
  TimerHeap heap;
  Timer t;
  heap.push(t);
  EXPECT_DEATH(heap.push(t), "timer pushed twice");
  heap.remove(t);
}

}  // namespace
}  // namespace ringo::reactor
