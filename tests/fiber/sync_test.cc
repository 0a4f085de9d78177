// Sync primitives (fiber/sync.h) on both backends: basic semantics; contention
// among many fibers with exact counts; parties on two loops (LoopGroup) and
// plain threads together; cancellation and deadlines of every waiting call,
// and that a failed wait leaves nothing behind; the mutex's FIFO hand-off;
// misuse errors; objects destroyed the moment a wait returns (ASan's job).
// Timing: lower bounds only.
#include "fiber/sync.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "fiber/fiber.h"
#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

int err_of(const sys::Result<void>& r) { return r.ok() ? 0 : r.error().errnum(); }

// Lets the fibers spawned so far run until they park (one loop, FIFO).
void settle() {
  for (int i = 0; i < 3; ++i) this_fiber::yield();
}

std::int64_t ms_since(std::int64_t t0) { return (reactor::now_ns() - t0) / 1'000'000; }

void update_max(std::atomic<int>& max, int v) {
  int m = max.load();
  while (v > m && !max.compare_exchange_weak(m, v)) {
  }
}

class MutexTest : public fiber::testing::FiberLoopTest {};
class CondVarTest : public fiber::testing::FiberLoopTest {};
class WaitGroupTest : public fiber::testing::FiberLoopTest {};
class SemaphoreTest : public fiber::testing::FiberLoopTest {};
class EventTest : public fiber::testing::FiberLoopTest {};
class GateTest : public fiber::testing::FiberLoopTest {};
class WaitContractTest : public fiber::testing::FiberLoopTest {};

// ---- Mutex

TEST_P(MutexTest, TryLockLockUnlockAndUniqueLock) {
  run_main([] {
    Mutex m;
    EXPECT_TRUE(m.try_lock());
    EXPECT_FALSE(m.try_lock());
    EXPECT_TRUE(m.is_locked());
    m.unlock();
    EXPECT_FALSE(m.is_locked());
    ASSERT_TRUE(m.lock().ok());
    m.unlock();
    {
      UniqueLock l(m);
      ASSERT_TRUE(l);
      EXPECT_TRUE(m.is_locked());
      l.unlock();
      EXPECT_FALSE(m.is_locked());
      EXPECT_TRUE(l.lock().ok());
    }
    EXPECT_FALSE(m.is_locked());
    // A free mutex is taken whatever the token says (the token is for waits).
    CancelSource src;
    src.cancel();
    EXPECT_TRUE(m.lock(src.token()).ok());
    m.unlock();
  });
}

// Go's two-mutex baton pass: each mutex is unlocked by the fiber that did not
// lock it, and every lock() parks until the other side's unlock hands it over.
TEST_P(MutexTest, BatonPassUnlockedByTheOtherFiber) {
  run_main([] {
    constexpr int kRounds = 2000;
    Mutex a, b;
    ASSERT_TRUE(b.try_lock());
    std::vector<int> log;
    auto pa = go([&] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(a.lock().ok());
        log.push_back(0);
        b.unlock();
      }
    });
    auto pb = go([&] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(b.lock().ok());
        log.push_back(1);
        a.unlock();
      }
    });
    pa.join();
    pb.join();
    ASSERT_EQ(log.size(), 2u * kRounds);
    for (std::size_t i = 0; i < log.size(); ++i) ASSERT_EQ(log[i], static_cast<int>(i % 2)) << i;
    EXPECT_FALSE(a.is_locked());
    EXPECT_TRUE(b.is_locked());
    b.unlock();
  });
}

TEST_P(MutexTest, ManyFibersContendCountsExact) {
  constexpr int kFibers = 50, kRounds = 100;
  const int total = run_main([] {
    Mutex m;
    int counter = 0, inside = 0, overlaps = 0;
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(go([&] {
        for (int i = 0; i < kRounds; ++i) {
          UniqueLock l(m);
          ASSERT_TRUE(l);
          if (++inside != 1) ++overlaps;
          ++counter;
          this_fiber::yield();  // hold it across a switch: the others queue
          --inside;
        }
      }));
    }
    for (auto& h : hs) h.join();
    EXPECT_EQ(overlaps, 0);
    EXPECT_FALSE(m.is_locked());
    return counter;
  });
  EXPECT_EQ(total, kFibers * kRounds);
}

TEST_P(MutexTest, FifoHandOffNoBarging) {
  run_main([] {
    Mutex m;
    ASSERT_TRUE(m.try_lock());
    std::vector<int> order;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 5; ++i) {
      hs.push_back(go([&, i] {
        ASSERT_TRUE(m.lock().ok());
        order.push_back(i);
        m.unlock();
      }));
      settle();  // queued in spawn order
    }
    m.unlock();
    // Handed to the first waiter, which has not even run yet: no barging.
    EXPECT_TRUE(m.is_locked());
    EXPECT_FALSE(m.try_lock());
    ASSERT_TRUE(m.lock().ok());  // queues behind all five
    order.push_back(99);
    m.unlock();
    for (auto& h : hs) h.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 99}));
    EXPECT_FALSE(m.is_locked());
  });
}

TEST_P(MutexTest, CancelledWaiterNeverOwnsAndPassesTheTurn) {
  run_main([] {
    Mutex m;
    ASSERT_TRUE(m.try_lock());
    CancelSource explicit_src, fiber_src;
    auto a = go([&] { return err_of(m.lock(explicit_src.token())); });
    auto c = go([&] { return err_of(m.lock()); }, {.token = fiber_src.token()});  // the fiber's token
    bool b_owned = false;
    auto b = go([&] {
      ASSERT_TRUE(m.lock().ok());
      b_owned = true;
      m.unlock();
    });
    settle();
    explicit_src.cancel();
    fiber_src.cancel();
    EXPECT_EQ(a.join(), ECANCELED);
    EXPECT_EQ(c.join(), ECANCELED);
    EXPECT_TRUE(m.is_locked());  // still ours: the cancelled ones took nothing
    m.unlock();                  // goes to b, the one left
    b.join();
    EXPECT_TRUE(b_owned);
    EXPECT_FALSE(m.is_locked());
  });
}

TEST_P(MutexTest, FibersOnTwoLoopsAndThreadsCountExact) {
  constexpr int kRounds = 1000;
  Mutex m;
  int counter = 0;
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<void>> hs;
  for (int f = 0; f < 6; ++f) {
    hs.push_back(go_on(group->loop(f % 2), [&, f] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(m.lock().ok());
        ++counter;
        if (i % 7 == f) this_fiber::yield();
        m.unlock();
      }
    }));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(m.lock().ok());
        ++counter;
        m.unlock();
      }
    });
  }
  for (auto& h : hs) h.join();
  for (auto& t : threads) t.join();
  group->stop();
  EXPECT_EQ(counter, 8 * kRounds);
  EXPECT_FALSE(m.is_locked());
}

// Waiters time out while unlocks hand the mutex over: a hand-off that meets a
// waiter which has just given up must go to the next one (else the mutex
// would stay locked by nobody, or two parties would own it).
TEST_P(MutexTest, TimeoutsRacingHandOffsLeaveNothing) {
  constexpr int kRounds = 300;
  Mutex m;
  int counter = 0;
  std::atomic<int> successes{0}, timeouts{0}, inside{0}, overlaps{0};
  auto party = [&](int seed) {
    for (int i = 0; i < kRounds; ++i) {
      const auto r = m.lock(CancelToken().with_timeout(std::chrono::microseconds((seed * 31 + i * 17) % 150)));
      if (!r.ok()) {
        ++timeouts;
        continue;
      }
      if (inside.fetch_add(1) != 0) ++overlaps;
      ++counter;
      ++successes;
      if (i % 3 == 0) this_fiber::yield();
      inside.fetch_sub(1);
      m.unlock();
    }
  };
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<void>> hs;
  for (int f = 0; f < 8; ++f) hs.push_back(go_on(group->loop(f % 2), [&, f] { party(f); }));
  std::thread t1([&] { party(100); }), t2([&] { party(200); });
  for (auto& h : hs) h.join();
  t1.join();
  t2.join();
  group->stop();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, successes.load());
  EXPECT_EQ(successes.load() + timeouts.load(), 10 * kRounds);
  EXPECT_FALSE(m.is_locked());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(MutexDeathTest, UnlockOfAnUnlockedMutexAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Mutex m;
        m.unlock();
      },
      "unlock of an unlocked mutex");
}

// ---- ConditionVariable

TEST_P(CondVarTest, ProducerConsumersAcrossLoopsAndAThread) {
  constexpr int kItems = 2000;
  Mutex mu;
  ConditionVariable cv;
  std::deque<int> queue;
  bool closed = false;
  auto consume = [&]() -> long {
    long sum = 0;
    UniqueLock l(mu);
    EXPECT_TRUE(l);
    for (;;) {
      EXPECT_TRUE(cv.wait(l, [&] { return !queue.empty() || closed; }).ok());
      if (queue.empty()) return sum;
      sum += queue.front();
      queue.pop_front();
    }
  };
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<long>> consumers;
  for (int c = 0; c < 4; ++c) consumers.push_back(go_on(group->loop(c % 2), consume));
  long thread_sum = 0;
  std::thread t([&] { thread_sum = consume(); });
  auto producer = go_on(group->loop(1), [&] {
    for (int i = 1; i <= kItems; ++i) {
      {
        UniqueLock l(mu);
        ASSERT_TRUE(l);
        queue.push_back(i);
      }
      cv.notify_one();
      if (i % 16 == 0) this_fiber::yield();
    }
    UniqueLock l(mu);
    closed = true;
    cv.notify_all();
  });
  producer.join();
  long sum = 0;
  for (auto& c : consumers) sum += c.join();
  t.join();
  group->stop();
  EXPECT_EQ(sum + thread_sum, static_cast<long>(kItems) * (kItems + 1) / 2);
}

TEST_P(CondVarTest, NotifyOneWakesTheLongestWaiterNotifyAllTheRest) {
  run_main([] {
    Mutex mu;
    ConditionVariable cv;
    std::vector<int> woke;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 4; ++i) {
      hs.push_back(go([&, i] {
        UniqueLock l(mu);
        ASSERT_TRUE(l);
        ASSERT_TRUE(cv.wait(l).ok());
        woke.push_back(i);
      }));
      settle();
    }
    cv.notify_one();
    settle();
    EXPECT_EQ(woke, (std::vector<int>{0}));
    cv.notify_all();
    for (auto& h : hs) h.join();
    EXPECT_EQ(woke, (std::vector<int>{0, 1, 2, 3}));
    cv.notify_all();  // nobody waits: nothing happens
  });
}

TEST_P(CondVarTest, DeadlineAndCancelReturnWithTheMutexHeld) {
  run_main([] {
    Mutex mu;
    ConditionVariable cv;
    {
      UniqueLock l(mu);
      EXPECT_EQ(err_of(cv.wait(l, [] { return false; }, CancelToken().with_timeout(1ms))), ETIMEDOUT);
      EXPECT_TRUE(l.owns_lock());
      EXPECT_TRUE(mu.is_locked());
    }
    // Cancelled while another fiber holds the mutex: returns only once the
    // mutex is back.
    CancelSource src;
    bool returned = false;
    auto w = go(
        [&] {
          UniqueLock l(mu);
          EXPECT_TRUE(l);
          const int err = err_of(cv.wait(l));  // the fiber's token
          EXPECT_TRUE(l.owns_lock());
          returned = true;
          return err;
        },
        {.token = src.token()});
    settle();
    ASSERT_TRUE(mu.lock().ok());
    src.cancel();
    settle();
    EXPECT_FALSE(returned);
    mu.unlock();
    EXPECT_EQ(w.join(), ECANCELED);
    EXPECT_FALSE(mu.is_locked());
    UniqueLock none(mu, std::defer_lock);
    EXPECT_THROW((void)cv.wait(none), std::logic_error);
  });
}

// ---- WaitGroup and Latch

TEST_P(WaitGroupTest, WaitsForEveryDone) {
  run_main([] {
    WaitGroup wg;
    EXPECT_TRUE(wg.wait().ok());  // zero: at once
    int finished = 0;
    wg.add(10);
    for (int i = 0; i < 10; ++i) {
      go([&, i] {
        this_fiber::sleep_for(std::chrono::milliseconds(i % 3));
        ++finished;
        wg.done();
      });
    }
    ASSERT_TRUE(wg.wait().ok());
    EXPECT_EQ(finished, 10);
    EXPECT_EQ(wg.count(), 0);
  });
}

TEST_P(WaitGroupTest, NegativeCounterIsAnError) {
  run_main([] {
    WaitGroup wg;
    EXPECT_THROW(wg.add(-1), std::logic_error);
    EXPECT_EQ(wg.count(), 0);
    wg.add(2);
    wg.done();
    EXPECT_THROW(wg.add(-2), std::logic_error);
    EXPECT_EQ(wg.count(), 1);  // unchanged by the failed add
    wg.done();
    EXPECT_THROW(wg.done(), std::logic_error);
    EXPECT_EQ(wg.count(), 0);
  });
}

TEST_P(WaitGroupTest, WaitersOnTwoLoopsAndThreadsAllReleased) {
  WaitGroup wg;
  wg.add(3);
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<int>> waiters;
  for (int i = 0; i < 4; ++i) waiters.push_back(go_on(group->loop(i % 2), [&] { return err_of(wg.wait()); }));
  std::atomic<int> thread_errs{0};
  std::thread t1([&] { thread_errs += err_of(wg.wait()); }), t2([&] { thread_errs += err_of(wg.wait()); });
  std::this_thread::sleep_for(5ms);
  go_on(group->loop(0), [&] { wg.done(); }).join();
  go_on(group->loop(1), [&] { wg.done(); }).join();
  wg.done();  // this thread
  for (auto& w : waiters) EXPECT_EQ(w.join(), 0);
  t1.join();
  t2.join();
  EXPECT_EQ(thread_errs.load(), 0);
  group->stop();
}

TEST_P(WaitGroupTest, LatchCountsDownOnce) {
  run_main([] {
    Latch latch(3);
    EXPECT_FALSE(latch.try_wait());
    for (int i = 0; i < 3; ++i) go([&] { latch.count_down(); });
    ASSERT_TRUE(latch.wait().ok());
    EXPECT_TRUE(latch.try_wait());
    EXPECT_THROW(latch.count_down(), std::logic_error);
    EXPECT_THROW(Latch(-1), std::logic_error);
  });
}

// ---- Semaphore

TEST_P(SemaphoreTest, CountsAndTryAcquire) {
  run_main([] {
    Semaphore s(2);
    EXPECT_TRUE(s.try_acquire());
    EXPECT_TRUE(s.try_acquire());
    EXPECT_FALSE(s.try_acquire());
    EXPECT_EQ(s.available(), 0);
    s.release(3);
    EXPECT_FALSE(s.try_acquire(4));
    EXPECT_TRUE(s.acquire(3).ok());
    EXPECT_TRUE(s.acquire(0).ok());
    EXPECT_EQ(s.available(), 0);
    EXPECT_THROW(s.release(-1), std::logic_error);
    EXPECT_THROW((void)s.acquire(-1), std::logic_error);
  });
}

TEST_P(SemaphoreTest, BoundsConcurrencyAmongManyFibers) {
  run_main([] {
    Semaphore s(3);
    std::atomic<int> inside{0}, max_inside{0};
    int done = 0;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 30; ++i) {
      hs.push_back(go([&] {
        ASSERT_TRUE(s.acquire().ok());
        update_max(max_inside, ++inside);
        this_fiber::sleep_for(1ms);
        --inside;
        ++done;
        s.release();
      }));
    }
    for (auto& h : hs) h.join();
    EXPECT_EQ(done, 30);
    EXPECT_EQ(max_inside.load(), 3);
    EXPECT_EQ(s.available(), 3);
  });
}

TEST_P(SemaphoreTest, FifoLargeRequestBlocksSmallerOnesBehindIt) {
  run_main([] {
    Semaphore s(0);
    std::vector<char> order;
    auto big = go([&] {
      ASSERT_TRUE(s.acquire(3).ok());
      order.push_back('B');
    });
    settle();
    auto small = go([&] {
      ASSERT_TRUE(s.acquire(1).ok());
      order.push_back('s');
    });
    settle();
    s.release(1);
    settle();
    EXPECT_TRUE(order.empty());  // small waits behind big
    EXPECT_FALSE(s.try_acquire(1));  // so does a newcomer
    s.release(2);
    big.join();
    EXPECT_EQ(order, (std::vector<char>{'B'}));
    s.release(1);
    small.join();
    EXPECT_EQ(order, (std::vector<char>{'B', 's'}));
    EXPECT_EQ(s.available(), 0);
  });
}

TEST_P(SemaphoreTest, CancelledHeadLetsTheRequestsBehindThrough) {
  run_main([] {
    Semaphore s(2);
    CancelSource src;
    auto big = go([&] { return err_of(s.acquire(3, src.token())); });
    settle();
    auto small = go([&] { return err_of(s.acquire(2)); });
    settle();
    EXPECT_FALSE(small.done());
    src.cancel();
    EXPECT_EQ(big.join(), ECANCELED);
    EXPECT_EQ(small.join(), 0);  // granted when big left, without a release
    EXPECT_EQ(s.available(), 0);
  });
}

TEST_P(SemaphoreTest, FibersOnTwoLoopsAndThreads) {
  constexpr int kRounds = 300;
  Semaphore s(2);
  std::atomic<int> inside{0}, max_inside{0}, timeouts{0};
  auto party = [&](bool with_timeouts) {
    for (int i = 0; i < kRounds; ++i) {
      const CancelToken t = with_timeouts ? CancelToken().with_timeout(std::chrono::microseconds(i % 50)) : CancelToken();
      if (!s.acquire(1 + i % 2, t).ok()) {
        ++timeouts;
        continue;
      }
      update_max(max_inside, inside += 1 + i % 2);
      if (i % 5 == 0) this_fiber::yield();
      inside -= 1 + i % 2;
      s.release(1 + i % 2);
    }
  };
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<void>> hs;
  for (int f = 0; f < 6; ++f) hs.push_back(go_on(group->loop(f % 2), [&, f] { party(f % 3 == 0); }));
  std::thread t1([&] { party(false); }), t2([&] { party(true); });
  for (auto& h : hs) h.join();
  t1.join();
  t2.join();
  group->stop();
  EXPECT_LE(max_inside.load(), 2);
  EXPECT_EQ(s.available(), 2);
}

// ---- Event

TEST_P(EventTest, SetReleasesPresentAndFutureWaiters) {
  Event ev;
  std::atomic<int> thread_err{-1};
  std::thread t([&] { thread_err = err_of(ev.wait()); });
  run_main([&] {
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(go([&] { return err_of(ev.wait()); }));
    settle();
    EXPECT_FALSE(ev.is_set());
    ev.set();
    ev.set();  // once is enough; again does nothing
    for (auto& h : hs) EXPECT_EQ(h.join(), 0);
    EXPECT_TRUE(ev.is_set());
    EXPECT_TRUE(ev.wait().ok());
  });
  t.join();
  EXPECT_EQ(thread_err.load(), 0);
}

// ---- Gate

TEST_P(GateTest, CloseWaitsForHoldersAndRejectsNewEntries) {
  run_main([] {
    Gate gate;
    ASSERT_TRUE(gate.enter().ok());
    auto holder = go([&] {
      auto h = gate.hold();
      EXPECT_TRUE(h.ok());
      this_fiber::sleep_for(20ms);
    });  // leaves when it ends
    settle();
    EXPECT_EQ(gate.holders(), 2);
    bool closed = false;
    const auto t0 = reactor::now_ns();
    auto closer = go([&] {
      EXPECT_TRUE(gate.close().ok());
      closed = true;
    });
    settle();
    EXPECT_TRUE(gate.is_closed());
    auto r = gate.enter();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().errnum(), ESHUTDOWN);
    EXPECT_THAT(r.error().message(), HasSubstr("the gate is closed"));
    EXPECT_FALSE(gate.hold().ok());
    gate.leave();  // ours
    EXPECT_FALSE(closed);
    holder.join();
    closer.join();
    EXPECT_TRUE(closed);
    EXPECT_GE(ms_since(t0), 20);
    EXPECT_EQ(gate.holders(), 0);
    EXPECT_TRUE(gate.close().ok());  // again: empty, at once
    EXPECT_THROW(gate.leave(), std::logic_error);
  });
}

TEST_P(GateTest, PartiesOnTwoLoopsAndThreadsDrainOnClose) {
  Gate gate;
  std::atomic<int> inside{0}, entries{0};
  auto party = [&] {
    for (;;) {
      auto h = gate.hold();
      if (!h.ok()) return;
      ++inside;
      ++entries;
      this_fiber::sleep_for(std::chrono::microseconds(200));
      --inside;
    }
  };
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<void>> hs;
  for (int f = 0; f < 6; ++f) hs.push_back(go_on(group->loop(f % 2), party));
  std::thread t(party);
  while (entries.load() < 20) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(gate.close().ok());  // this plain thread blocks until empty
  EXPECT_EQ(inside.load(), 0);
  EXPECT_EQ(gate.holders(), 0);
  for (auto& h : hs) h.join();
  t.join();
  group->stop();
}

// ---- What every waiting call shares

// A deadline returns ETIMEDOUT (not earlier), in a fiber and in a plain
// thread; the fiber's own token returns ECANCELED; neither leaves anything
// behind: a waiter queued after the cancelled one is released by `release`
// as usual. wait(nullptr) waits with the calling fiber's token.
template <class Wait, class Release>
void check_wait_contract(const char* what, Wait wait, Release release) {
  SCOPED_TRACE(what);
  const auto t0 = reactor::now_ns();
  const CancelToken soon = CancelToken().with_timeout(10ms);
  EXPECT_EQ(err_of(wait(&soon)), ETIMEDOUT);
  EXPECT_GE(ms_since(t0), 10);
  int thread_err = 0;
  std::thread([&] {
    const CancelToken t = CancelToken().with_timeout(5ms);
    thread_err = err_of(wait(&t));
  }).join();  // blocks this loop for 5 ms: nobody needs it meanwhile
  EXPECT_EQ(thread_err, ETIMEDOUT);
  CancelSource src;
  auto cancelled = go([&] { return err_of(wait(nullptr)); }, {.token = src.token()});
  auto released = go([&] { return err_of(wait(nullptr)); });
  settle();
  src.cancel();
  EXPECT_EQ(cancelled.join(), ECANCELED);
  EXPECT_FALSE(released.done());
  release();
  EXPECT_EQ(released.join(), 0);
}

TEST_P(WaitContractTest, EveryWaitHonoursDeadlineAndCancelAndLeavesNothing) {
  run_main([] {
    Mutex m;
    ASSERT_TRUE(m.try_lock());
    check_wait_contract(
        "Mutex::lock",
        [&](const CancelToken* t) {
          auto r = t != nullptr ? m.lock(*t) : m.lock();
          if (r.ok()) m.unlock();
          return r;
        },
        [&] { m.unlock(); });
    EXPECT_FALSE(m.is_locked());
    Mutex mu;
    ConditionVariable cv;
    check_wait_contract(
        "ConditionVariable::wait",
        [&](const CancelToken* t) {
          UniqueLock l(mu);
          return t != nullptr ? cv.wait(l, *t) : cv.wait(l);
        },
        [&] { cv.notify_one(); });  // the cancelled waiter left: this one gets it
    WaitGroup wg;
    wg.add(1);
    check_wait_contract(
        "WaitGroup::wait", [&](const CancelToken* t) { return t != nullptr ? wg.wait(*t) : wg.wait(); },
        [&] { wg.done(); });
    Latch latch(1);
    check_wait_contract(
        "Latch::wait", [&](const CancelToken* t) { return t != nullptr ? latch.wait(*t) : latch.wait(); },
        [&] { latch.count_down(); });
    Event ev;
    check_wait_contract(
        "Event::wait", [&](const CancelToken* t) { return t != nullptr ? ev.wait(*t) : ev.wait(); },
        [&] { ev.set(); });
    Semaphore sem(0);
    check_wait_contract(
        "Semaphore::acquire", [&](const CancelToken* t) { return t != nullptr ? sem.acquire(1, *t) : sem.acquire(); },
        [&] { sem.release(); });
    EXPECT_EQ(sem.available(), 0);  // the failed acquires took nothing
    Gate gate;
    auto holder = gate.hold();
    ASSERT_TRUE(holder.ok());
    check_wait_contract(
        "Gate::close", [&](const CancelToken* t) { return t != nullptr ? gate.close(*t) : gate.close(); },
        [&] {
          EXPECT_TRUE(gate.is_closed());  // the failed closes closed it all the same
          EXPECT_FALSE(gate.enter().ok());
          holder->leave();
        });
  });
}

// Each object is destroyed as soon as the wait returns, while the call that
// released it (on another loop) may still be returning: it must not touch
// the object after the release (ASan's job).
TEST_P(WaitContractTest, ObjectsFreedAsSoonAsAWaitReturns) {
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  run_main([&] {
    for (int i = 0; i < 100; ++i) {
      reactor::Loop& other = group->loop(i % 2);
      auto wg = std::make_unique<WaitGroup>();
      wg->add(1);
      go_on(other, [p = wg.get()] { p->done(); });
      EXPECT_TRUE(wg->wait().ok());
      wg.reset();
      auto ev = std::make_unique<Event>();
      go_on(other, [p = ev.get()] { p->set(); });
      EXPECT_TRUE(ev->wait().ok());
      ev.reset();
      auto sem = std::make_unique<Semaphore>(0);
      go_on(other, [p = sem.get()] { p->release(); });
      EXPECT_TRUE(sem->acquire().ok());
      sem.reset();
      auto gate = std::make_unique<Gate>();
      ASSERT_TRUE(gate->enter().ok());
      go_on(other, [p = gate.get()] { p->leave(); });
      EXPECT_TRUE(gate->close().ok());
      gate.reset();
      auto m = std::make_unique<Mutex>();
      ASSERT_TRUE(m->try_lock());
      go_on(other, [p = m.get()] { p->unlock(); });  // Go semantics: any party unlocks
      EXPECT_TRUE(m->lock().ok());
      m->unlock();
      m.reset();
    }
  });
  group->stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, MutexTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, CondVarTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, WaitGroupTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, SemaphoreTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, EventTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, GateTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, WaitContractTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo
