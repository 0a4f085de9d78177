// The Waiter protocol (fiber/waiter.h) and fiber tokens (GoOptions::token,
// this_fiber::token/set_token); CancelToken itself: cancel_test.cc.
//  - Waiters: every party kind (fiber, plain thread) as waiter and as waker,
//    deadlines and cancellation (the waiter claims itself; a late waker's
//    try_claim fails), the claim-before-deadline race (the hand-off wins),
//    WaiterQueue order/erase/claim_front/wake_all, the park reason in the
//    dump, and a cross-thread stress ring checked exactly; on both backends.
// Timing assertions are lower bounds only (the test machines are busy).
#include "fiber/waiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// ---- Waiter, on both backends

class WaiterTest : public fiber::testing::FiberLoopTest {};

// Spins (politely) until `p` is published; bounded.
template <class T, class Relax>
T* await_published(const std::atomic<T*>& p, Relax relax) {
  const std::int64_t give_up = reactor::now_ns() + 10'000'000'000;
  T* v = nullptr;
  while ((v = p.load(std::memory_order_acquire)) == nullptr && reactor::now_ns() < give_up) relax();
  return v;
}
void fiber_relax() { this_fiber::sleep_for(1ms); }
void thread_relax() { std::this_thread::sleep_for(1ms); }

TEST_P(WaiterTest, FiberWaiterWokenByAnotherFiber) {
  const int value = run_main([] {
    int slot_value = 0;
    std::atomic<fiber::Waiter*> published{nullptr};
    auto waker = go([&] {
      fiber::Waiter* w = await_published(published, [] { this_fiber::yield(); });
      ASSERT_NE(w, nullptr);
      EXPECT_TRUE(w->is_fiber());
      ASSERT_TRUE(w->try_claim());
      EXPECT_TRUE(w->claimed());
      EXPECT_FALSE(w->try_claim());  // exactly one claimer
      this_fiber::sleep_for(2ms);    // claimed but not woken: the waiter must not return yet
      *static_cast<int*>(w->slot) = 42;
      w->result = 7;
      w->wake();
    });
    fiber::Waiter w("test handoff");
    EXPECT_TRUE(w.is_fiber());
    EXPECT_EQ(w.fiber().id, this_fiber::current().id());
    EXPECT_STREQ(w.reason(), "test handoff");
    EXPECT_FALSE(w.claimed());
    w.slot = &slot_value;
    published.store(&w, std::memory_order_release);
    EXPECT_EQ(w.wait(), 0);
    EXPECT_EQ(w.result, 7);
    waker.join();
    return slot_value;
  });
  EXPECT_EQ(value, 42);
}

TEST_P(WaiterTest, FiberWaiterWokenFromAPlainThread) {
  std::atomic<fiber::Waiter*> published{nullptr};
  std::thread waker([&] {
    fiber::Waiter* w = await_published(published, thread_relax);
    ASSERT_NE(w, nullptr);
    std::this_thread::sleep_for(2ms);  // let it really park
    ASSERT_TRUE(w->try_claim());
    std::this_thread::sleep_for(2ms);  // claimed, not yet woken
    *static_cast<int*>(w->slot) = 1234;
    w->wake();  // through the loop's inbox
  });
  const int value = run_main([&] {
    int slot_value = 0;
    fiber::Waiter w("from a thread");
    w.slot = &slot_value;
    published.store(&w, std::memory_order_release);
    EXPECT_EQ(w.wait(), 0);
    return slot_value;
  });
  waker.join();
  EXPECT_EQ(value, 1234);
}

TEST_P(WaiterTest, ThreadWaiterWokenByAFiber) {
  std::atomic<fiber::Waiter*> published{nullptr};
  int slot_value = 0;
  int rc = -1;
  bool was_fiber = true;
  std::thread sleeper([&] {
    fiber::Waiter w("thread wait");
    was_fiber = w.is_fiber();
    w.slot = &slot_value;
    published.store(&w, std::memory_order_release);
    rc = w.wait();
  });
  run_main([&] {
    fiber::Waiter* w = await_published(published, fiber_relax);
    ASSERT_NE(w, nullptr);
    this_fiber::sleep_for(2ms);  // let it really sleep
    ASSERT_TRUE(w->try_claim());
    *static_cast<int*>(w->slot) = 99;
    w->wake();
  });
  sleeper.join();
  EXPECT_FALSE(was_fiber);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(slot_value, 99);
}

TEST_P(WaiterTest, FiberDeadlineTimesOutAndTheWaiterClaimsItself) {
  run_main([] {
    fiber::Waiter w("deadline");
    const std::int64_t t0 = reactor::now_ns();
    EXPECT_EQ(w.wait(CancelToken().with_timeout(10ms)), ETIMEDOUT);
    EXPECT_GE(reactor::now_ns() - t0, 10'000'000);
    EXPECT_TRUE(w.claimed());
    EXPECT_FALSE(w.try_claim());  // a late waker loses
    EXPECT_FALSE(w.try_wake());
  });
}

TEST_P(WaiterTest, FiberCancelledFromAnotherThread) {
  CancelSource src;
  std::atomic<bool> waiting{false};
  std::thread canceller([&] {
    while (!waiting.load()) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(5ms);  // let it really park
    src.cancel();
  });
  run_main([&] {
    fiber::Waiter w("cancellable");
    waiting = true;
    // The deadline is far: only the cancellation can end this wait.
    EXPECT_EQ(w.wait(src.token().with_timeout(60s)), ECANCELED);
    EXPECT_TRUE(w.claimed());
    EXPECT_FALSE(w.try_claim());
  });
  canceller.join();
}

TEST_P(WaiterTest, FiberTokenAlreadyFiredReturnsAtOnce) {
  run_main([] {
    CancelSource src;
    src.cancel();
    const std::uint64_t switches = this_fiber::current().switches();
    fiber::Waiter cancelled("x");
    EXPECT_EQ(cancelled.wait(src.token().with_timeout(-1s)), ECANCELED);  // ECANCELED first
    fiber::Waiter late("y");
    EXPECT_EQ(late.wait(CancelToken().with_timeout(-1s)), ETIMEDOUT);
    EXPECT_EQ(this_fiber::current().switches(), switches);  // never parked
    // Claimed and woken before wait(): the hand-off wins over the token.
    fiber::Waiter woken("z");
    ASSERT_TRUE(woken.try_wake());
    EXPECT_EQ(woken.wait(src.token()), 0);
  });
}

// The waker claims well before the deadline but hands off after it: the
// token fires while the waiter is claimed, and wait() must wait for the
// hand-off and return 0.
TEST_P(WaiterTest, WakerClaimingBeforeTheDeadlineWins) {
  run_main([] {
    CancelSource src;
    for (const bool cancel : {false, true}) {
      int slot_value = 0;
      std::atomic<fiber::Waiter*> published{nullptr};
      auto waker = go([&] {
        fiber::Waiter* w = await_published(published, [] { this_fiber::yield(); });
        ASSERT_NE(w, nullptr);
        ASSERT_TRUE(w->try_claim());
        if (cancel) src.cancel();
        this_fiber::sleep_for(20ms);  // past the 5 ms deadline
        *static_cast<int*>(w->slot) = 5;
        w->wake();
      });
      fiber::Waiter w("race");
      w.slot = &slot_value;
      const std::int64_t t0 = reactor::now_ns();
      published.store(&w, std::memory_order_release);
      EXPECT_EQ(w.wait(src.token().with_timeout(5ms)), 0) << "cancel=" << cancel;
      EXPECT_GE(reactor::now_ns() - t0, 20'000'000);
      EXPECT_EQ(slot_value, 5);
      waker.join();
    }
  });
}

TEST_P(WaiterTest, WakerThreadClaimingBeforeTheDeadlineWins) {
  std::atomic<fiber::Waiter*> published{nullptr};
  std::thread waker([&] {
    fiber::Waiter* w = await_published(published, [] { std::this_thread::yield(); });
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(w->try_claim());
    std::this_thread::sleep_for(20ms);  // past the 5 ms deadline
    *static_cast<int*>(w->slot) = 6;
    w->wake();
  });
  const int value = run_main([&] {
    int slot_value = 0;
    fiber::Waiter w("race");
    w.slot = &slot_value;
    published.store(&w, std::memory_order_release);
    EXPECT_EQ(w.wait(CancelToken().with_timeout(5ms)), 0);
    return slot_value;
  });
  waker.join();
  EXPECT_EQ(value, 6);
}

TEST_P(WaiterTest, DumpShowsTheWaitersReason) {
  run_main([] {
    std::atomic<fiber::Waiter*> published{nullptr};
    auto h = go(
        [&] {
          fiber::Waiter w("test: waiting for godot");
          published.store(&w, std::memory_order_release);
          return w.wait();
        },
        {.name = "vladimir"});
    fiber::Waiter* w = await_published(published, [] { this_fiber::yield(); });
    ASSERT_NE(w, nullptr);  // it parked in the turn it published
    EXPECT_THAT(fiber_dump(), HasSubstr("\"vladimir\" [parked: test: waiting for godot,"));
    bool found = false;
    for (const fiber::FiberInfo& f : fiber::Scheduler::current()->snapshot()) {
      if (f.id != h.fiber_id()) continue;
      found = true;
      EXPECT_EQ(f.state, fiber::FiberState::parked);
      EXPECT_STREQ(f.reason, "test: waiting for godot");
    }
    EXPECT_TRUE(found);
    ASSERT_TRUE(w->try_wake());
    EXPECT_EQ(h.join(), 0);
  });
}

// ---- WaiterQueue

// Queue structure only: waiters of this plain thread that never wait.
TEST(WaiterQueueTest, FifoOrder) {
  fiber::Waiter a("a"), b("b"), c("c");
  fiber::WaiterQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pop_front(), nullptr);
  q.push_back(a);
  q.push_back(b);
  q.push_back(c);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.front(), &a);
  EXPECT_TRUE(b.queued);
  EXPECT_EQ(q.pop_front(), &a);
  EXPECT_FALSE(a.queued);
  EXPECT_EQ(q.pop_front(), &b);
  q.push_back(a);  // re-queued at the back
  EXPECT_EQ(q.pop_front(), &c);
  EXPECT_EQ(q.pop_front(), &a);
  EXPECT_EQ(q.pop_front(), nullptr);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
}

TEST(WaiterQueueTest, EraseMiddleHeadAndTail) {
  fiber::Waiter a("a"), b("b"), c("c"), d("d");
  fiber::WaiterQueue q;
  for (fiber::Waiter* w : {&a, &b, &c, &d}) q.push_back(*w);
  q.erase(b);  // middle
  EXPECT_FALSE(b.queued);
  EXPECT_EQ(q.size(), 3u);
  q.erase(b);  // not queued: no-op
  EXPECT_EQ(q.size(), 3u);
  q.erase(a);  // head
  EXPECT_EQ(q.front(), &c);
  q.erase(d);  // tail
  EXPECT_EQ(q.size(), 1u);
  q.push_back(b);
  EXPECT_EQ(q.pop_front(), &c);
  EXPECT_EQ(q.pop_front(), &b);
  EXPECT_TRUE(q.empty());
}

TEST(WaiterQueueTest, ClaimFrontSkipsWaitersClaimedByOthers) {
  fiber::Waiter a("a"), b("b"), c("c"), d("d");
  fiber::WaiterQueue q;
  for (fiber::Waiter* w : {&a, &b, &c, &d}) q.push_back(*w);
  ASSERT_TRUE(a.try_claim());  // e.g. its own timeout, or another select case
  ASSERT_TRUE(b.try_claim());
  fiber::Waiter* first = q.claim_front();
  EXPECT_EQ(first, &c);
  EXPECT_TRUE(c.claimed());
  EXPECT_FALSE(c.try_claim());
  EXPECT_FALSE(a.queued);  // the claimed ones were dropped from the queue
  EXPECT_FALSE(b.queued);
  EXPECT_FALSE(c.queued);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.front(), &d);
  ASSERT_TRUE(d.try_claim());
  EXPECT_EQ(q.claim_front(), nullptr);  // only claimed ones left
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.claim_front(), nullptr);
}

TEST_P(WaiterTest, WakeAllWakesEveryWaiterInOrderWithTheResult) {
  run_main([] {
    fiber::WaiterQueue q;  // one loop, no preemption: no lock needed here
    std::vector<std::string> woken;
    std::vector<JoinHandle<int>> hs;
    for (const char* name : {"a", "b", "c"}) {
      hs.push_back(go([&q, &woken, name] {
        fiber::Waiter w("queued");
        q.push_back(w);
        const int rc = w.wait();
        woken.push_back(name);
        return rc == 0 ? w.result : -1;
      }));
    }
    fiber::Waiter gone("gone");  // claimed by someone else: skipped, not counted
    q.push_back(gone);
    ASSERT_TRUE(gone.try_claim());
    // All three queue up and park (a yield alone need not run them all:
    // the scheduler interleaves fresh fibers with ready ones).
    for (int i = 0; i < 1000 && q.size() < 4; ++i) this_fiber::yield();
    ASSERT_EQ(q.size(), 4u);
    EXPECT_EQ(q.wake_all(EPIPE), 3u);
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(gone.queued);
    for (auto& h : hs) EXPECT_EQ(h.join(), EPIPE);
    EXPECT_EQ(woken, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(q.wake_all(0), 0u);
  });
}

// ---- Thread waiters (no loop involved)

TEST(ThreadWaiterTest, DeadlineTimesOutAndTheWaiterClaimsItself) {
  fiber::Waiter w("thread deadline");
  EXPECT_FALSE(w.is_fiber());
  const std::int64_t t0 = reactor::now_ns();
  EXPECT_EQ(w.wait(CancelToken().with_timeout(10ms)), ETIMEDOUT);
  EXPECT_GE(reactor::now_ns() - t0, 10'000'000);
  EXPECT_TRUE(w.claimed());
  EXPECT_FALSE(w.try_claim());
}

TEST(ThreadWaiterTest, CancelledFromAnotherThread) {
  CancelSource src;
  std::thread canceller([&src] {
    std::this_thread::sleep_for(5ms);
    src.cancel();
  });
  fiber::Waiter w("thread cancel");
  EXPECT_EQ(w.wait(src.token().with_timeout(60s)), ECANCELED);
  EXPECT_FALSE(w.try_claim());
  canceller.join();
}

TEST(ThreadWaiterTest, ClaimedBeforeTheDeadlineWaitsForTheHandOff) {
  CancelSource src;
  fiber::Waiter w("thread race");
  int slot_value = 0;
  w.slot = &slot_value;
  ASSERT_TRUE(w.try_claim());
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    src.cancel();  // fires too, after the claim: ignored
    *static_cast<int*>(w.slot) = 3;
    w.wake();
  });
  EXPECT_EQ(w.wait(src.token().with_timeout(2ms)), 0);
  EXPECT_EQ(slot_value, 3);
  waker.join();
}

// ---- Fiber tokens

TEST_P(WaiterTest, GoOptionsTokenBecomesTheFibersToken) {
  run_main([] {
    CancelSource src;
    auto h = go([] { return this_fiber::token().deadline_ns(); }, {.token = src.token().with_deadline_ns(12345)});
    EXPECT_EQ(h.join(), 12345);
    auto sees_cancel = go(
        [] {
          while (!this_fiber::token().cancelled()) this_fiber::sleep_for(1ms);
          return this_fiber::token().error();
        },
        {.token = src.token()});
    this_fiber::sleep_for(2ms);
    src.cancel();
    EXPECT_EQ(sees_cancel.join(), ECANCELED);
    // The main fiber's own token is untouched (go_on from a plain thread: none).
    EXPECT_FALSE(this_fiber::token().cancellable());
  });
  // Outside a fiber: a token that is never cancelled.
  EXPECT_FALSE(this_fiber::token().cancellable());
  EXPECT_FALSE(this_fiber::token().has_deadline());
}

TEST_P(WaiterTest, ChildrenInheritTheSpawningFibersToken) {
  CancelSource outer;
  run_main([&outer] {
    // main was spawned with no token; give the work fiber one.
    auto work = go(
        [] {
          EXPECT_EQ(this_fiber::token().deadline_ns(), 1'000'000);
          auto child = go([] {
            auto grandchild = go([] { return this_fiber::token().deadline_ns(); });
            return std::pair(this_fiber::token().deadline_ns(), grandchild.join());
          });
          return child.join();
        },
        {.token = outer.token().with_deadline_ns(1'000'000)});
    EXPECT_EQ(work.join(), (std::pair<std::int64_t, std::int64_t>(1'000'000, 1'000'000)));

    // Inherited tokens share the cancellation.
    auto waiting = go(
        [] {
          auto child = go([] {
            fiber::Waiter w("inherited");
            return w.wait(this_fiber::token());
          });
          return child.join();
        },
        {.token = outer.token()});
    this_fiber::sleep_for(2ms);
    outer.cancel();
    EXPECT_EQ(waiting.join(), ECANCELED);
  });
}

TEST_P(WaiterTest, SetTokenChangesWhatLaterChildrenInherit) {
  run_main([] {
    CancelSource first;
    CancelSource second;
    this_fiber::set_token(first.token().with_deadline_ns(111));
    EXPECT_EQ(this_fiber::token().deadline_ns(), 111);
    EXPECT_EQ(this_fiber::current().token().deadline_ns(), 111);
    auto before = go([] {
      fiber::Waiter w("before");
      return std::pair(this_fiber::token().deadline_ns(), w.wait(this_fiber::token().with_timeout(1h)));
    });
    this_fiber::set_token(second.token());
    auto after = go([] { return std::pair(this_fiber::token().deadline_ns(), this_fiber::token().cancelled()); });
    auto explicit_none = go([] { return this_fiber::token().cancellable(); }, {.token = CancelToken()});
    EXPECT_EQ(after.join(), (std::pair<std::int64_t, bool>(CancelToken::kNoDeadline, false)));
    EXPECT_FALSE(explicit_none.join());  // an explicit token wins over inheritance
    // `before` kept the first token: its deadline (111 ns of the monotonic
    // clock, long past) times it out at once, and the second's cancel does
    // not reach it; the first's does not reach `after`'s token.
    second.cancel();
    EXPECT_EQ(before.join(), (std::pair<std::int64_t, int>(111, ETIMEDOUT)));
    EXPECT_TRUE(this_fiber::token().cancelled());
    EXPECT_FALSE(first.cancelled());
  });
}

// ---- Stress: fibers on two loops and two plain threads wake each other.

// Six parties: fibers on loop 0 (L0a, L0b), fibers on loop 1 (L1a, L1b),
// plain threads A and B, in the ring order L0a, A, L1a, B, L0b, L1b. Each
// keeps a Waiter in its mailbox and waits on it; a party that receives a
// baton (claim, hand-off, wake) registers its next Waiter and passes the
// baton on to the next party in ring order that is waiting. Neighbours run on
// different threads, so most hops cross threads (fiber -> thread, thread -> a
// loop's inbox, fiber -> the other loop's inbox); a party still waking up is
// skipped rather than waited for (spinning on it made the test take seconds
// on two busy CPUs). Four batons circulate, so wake-ups overlap; kPerBaton
// receptions each, counted exactly. A baton is a plain int written by each
// receiver and handed over through the waiter's slot: TSan checks the
// hand-off's release/acquire.
struct Ring {
  static constexpr int kParties = 6;
  static constexpr int kBatons = 4;
  static constexpr int kPerBaton = 2'500;  // 10,000 wake-ups in all
  struct Baton {
    int visits = 0;  // not atomic on purpose
  };
  std::array<std::atomic<fiber::Waiter*>, kParties> mailbox{};
  std::array<Baton, kBatons> batons{};
  std::atomic<int> total{0};
  std::atomic<int> finished{0};
  CancelSource stop;

  // Hands the baton to the first party after `from` (in ring order) that has
  // a Waiter registered; there always is one (fewer batons than parties, and
  // a party registers its next Waiter before it passes), so a passer never
  // waits on a party that is still waking up.
  template <class Relax>
  void pass(int from, int hops, Baton* baton, Relax relax) {
    const std::int64_t give_up = reactor::now_ns() + 20'000'000'000;
    for (int i = 1;; ++i) {
      const int to = (from + i) % kParties;
      if (to == from) {
        relax();  // raced with other passers: all taken this round
        if (reactor::now_ns() > give_up) {
          ADD_FAILURE() << "no party waits";
          stop.cancel();
          return;
        }
        continue;
      }
      if (fiber::Waiter* w = mailbox[to].exchange(nullptr, std::memory_order_acq_rel)) {
        ASSERT_TRUE(w->try_claim());
        w->slot = baton;
        w->result = hops;
        w->wake();
        return;
      }
    }
  }

  // One party; returns how many batons it received. Its next Waiter is in
  // the mailbox before it passes the baton on, so a passer rarely spins.
  template <class Relax>
  int party(int me, Relax relax) {
    int received = 0;
    auto w = std::make_unique<fiber::Waiter>("ring");
    mailbox[me].store(w.get(), std::memory_order_release);
    for (;;) {
      if (const int err = w->wait(stop.token()); err != 0) {
        EXPECT_EQ(err, ECANCELED);
        fiber::Waiter* mine = w.get();
        mailbox[me].compare_exchange_strong(mine, nullptr);
        return received;
      }
      ++received;
      total.fetch_add(1, std::memory_order_relaxed);
      auto* baton = static_cast<Baton*>(w->slot);
      const int hops = w->result;
      ++baton->visits;
      w = std::make_unique<fiber::Waiter>("ring");
      mailbox[me].store(w.get(), std::memory_order_release);
      if (hops == kPerBaton) {
        if (finished.fetch_add(1) + 1 == kBatons) stop.cancel();
        continue;
      }
      pass(me, hops + 1, baton, relax);
    }
  }
};

TEST_P(WaiterTest, StressTwoLoopsAndTwoThreadsWakeEachOther) {
  auto group = start_group(2, /*spread=*/true);
  ASSERT_NE(group, nullptr);

  auto ring = std::make_unique<Ring>();
  const auto fiber_yield = [] { this_fiber::yield(); };
  const auto thread_yield = [] { std::this_thread::yield(); };
  const std::int64_t t0 = reactor::now_ns();
  // Ring order: L0a, A, L1a, B, L0b, L1b.
  std::array<int, Ring::kParties> received{};
  std::vector<JoinHandle<int>> fibers;
  std::vector<std::thread> threads;
  for (const int i : {0, 2, 4, 5}) {
    reactor::Loop& loop = group->loop(i == 0 || i == 4 ? 0 : 1);
    fibers.push_back(go_on(loop, [&ring, i, fiber_yield] { return ring->party(i, fiber_yield); },
                           {.name = "ring-" + std::to_string(i)}));
  }
  for (const int i : {1, 3}) {
    threads.emplace_back([&ring, &received, i, thread_yield] { received[i] = ring->party(i, thread_yield); });
  }
  for (int b = 0; b < Ring::kBatons; ++b) {
    ring->pass((b + Ring::kParties - 1) % Ring::kParties, 1, &ring->batons[b], thread_yield);
  }
  received[0] = fibers[0].join();
  received[2] = fibers[1].join();
  received[4] = fibers[2].join();
  received[5] = fibers[3].join();
  for (auto& t : threads) t.join();
  const std::int64_t elapsed = reactor::now_ns() - t0;
  group->stop();

  EXPECT_EQ(ring->total.load(), Ring::kBatons * Ring::kPerBaton);
  int sum = 0;
  for (int b = 0; b < Ring::kBatons; ++b) EXPECT_EQ(ring->batons[b].visits, Ring::kPerBaton);
  for (int i = 0; i < Ring::kParties; ++i) {
    EXPECT_GT(received[i], 0) << "party " << i;
    sum += received[i];
  }
  EXPECT_EQ(sum, Ring::kBatons * Ring::kPerBaton);
  RecordProperty("ring_ms", static_cast<int>(elapsed / 1'000'000));
}

INSTANTIATE_TEST_SUITE_P(Backends, WaiterTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo
