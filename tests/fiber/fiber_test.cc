// Fibers and the per-loop scheduler, on both backends: spawn and join (values,
// exceptions, from fibers and plain threads), yield ordering, sleeps (lower
// bounds only: the test machines are busy), 10,000 concurrent sleepers,
// cross-loop spawn and join, unpark from a plain thread, the dump, long-run
// accounting, unjoined exceptions, spawns that never ran, and the abort when a
// loop dies under a parked fiber.
#include "fiber/fiber.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class FiberTest : public fiber::testing::FiberLoopTest {};

TEST_P(FiberTest, JoinReturnsTheValue) {
  const int v = run_main([] {
    auto a = go([] { return 40; });
    auto b = go([] { return std::string("two"); }, {.name = "stringer"});
    auto c = go([] {});
    c.join();
    return a.join() + static_cast<int>(b.join().size()) - 1;
  });
  EXPECT_EQ(v, 42);
  EXPECT_EQ(fiber::Scheduler::of(*loop_).live(), 0u);
}

TEST_P(FiberTest, JoinRethrowsTheFibersException) {
  run_main([] {
    auto h = go([]() -> int { throw std::runtime_error("boom"); });
    try {
      h.join();
      ADD_FAILURE() << "join() did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_FALSE(h.valid());
    EXPECT_THROW(h.join(), std::logic_error);  // once
  });
}

TEST_P(FiberTest, JoinWaitsForAFiberThatParks) {
  const auto t0 = reactor::now_ns();
  const int v = run_main([] {
    auto h = go([] {
      this_fiber::sleep_for(20ms);
      return 7;
    });
    EXPECT_FALSE(h.done());
    return h.join();
  });
  EXPECT_EQ(v, 7);
  EXPECT_GE(reactor::now_ns() - t0, 20'000'000);
}

TEST_P(FiberTest, YieldAlternatesTwoFibers) {
  const std::vector<std::string> order = run_main([] {
    std::vector<std::string> log;
    auto player = [&log](const char* who) {
      for (int i = 0; i < 4; ++i) {
        log.push_back(who + std::to_string(i));
        this_fiber::yield();
      }
    };
    auto a = go([&] { player("a"); });
    auto b = go([&] { player("b"); });
    a.join();
    b.join();
    return log;
  });
  EXPECT_EQ(order, (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"}));
}

TEST_P(FiberTest, SleepNeverWakesEarly) {
  run_main([] {
    for (auto d : {1ms, 5ms, 20ms}) {
      const auto t0 = reactor::now_ns();
      this_fiber::sleep_for(d);
      EXPECT_GE(reactor::now_ns() - t0, std::chrono::nanoseconds(d).count());
    }
    const auto until = std::chrono::steady_clock::now() + 10ms;
    this_fiber::sleep_until(until);
    EXPECT_GE(std::chrono::steady_clock::now(), until);
    this_fiber::sleep_for(-5ms);  // already passed: returns
  });
}

// TSan's runtime maps memory of its own per fiber (__tsan_create_fiber), and
// with 10,000 live fibers its munmap fails on vm.max_map_count (65,530 here):
// "ThreadSanitizer failed to deallocate", then a hang. Fewer fibers there.
#if defined(RINGO_FIBER_TSAN)
constexpr int kSleepers = 1'000;
#else
constexpr int kSleepers = 10'000;
#endif

TEST_P(FiberTest, TenThousandConcurrentSleepersAllFinish) {
  constexpr int kFibers = kSleepers;
  const auto t0 = reactor::now_ns();
  const int total = run_main([] {
    std::vector<JoinHandle<int>> handles;
    handles.reserve(kFibers);
    for (int i = 0; i < kFibers; ++i) {
      handles.push_back(go([i] {
        this_fiber::sleep_for(10ms);
        return i % 2;
      }));
    }
    EXPECT_EQ(fiber::Scheduler::current()->live(), static_cast<std::size_t>(kFibers) + 1);
    int sum = 0;
    for (auto& h : handles) sum += h.join();
    return sum;
  });
  EXPECT_EQ(total, kFibers / 2);
  EXPECT_GE(reactor::now_ns() - t0, 10'000'000);
  const auto stats = fiber::Scheduler::of(*loop_).stats();
  EXPECT_EQ(stats.spawned, static_cast<std::uint64_t>(kFibers) + 1);
  EXPECT_EQ(stats.finished, stats.spawned);
  EXPECT_EQ(stats.live, 0u);
}

TEST_P(FiberTest, SleepWithATokenEndsEarlyOnlyWhenTheTokenFires) {
  run_main([] {
    // Runs its full time when the token stays quiet.
    auto t0 = reactor::now_ns();
    EXPECT_TRUE(this_fiber::sleep_for(20ms, CancelSource().token()).ok());
    EXPECT_GE(reactor::now_ns() - t0, 20'000'000);
    // The token's earlier deadline: ETIMEDOUT then, not at the wake-up time.
    t0 = reactor::now_ns();
    sys::Result<void> r = this_fiber::sleep_for(10s, CancelToken().with_timeout(20ms));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ETIMEDOUT)) << r.error().message();
    EXPECT_GE(reactor::now_ns() - t0, 20'000'000);
    EXPECT_LT(reactor::now_ns() - t0, 5'000'000'000);
    // Cancelled from a plain thread: ECANCELED at once.
    CancelSource source;
    std::thread canceller([&] {
      std::this_thread::sleep_for(10ms);
      source.cancel();
    });
    t0 = reactor::now_ns();
    r = this_fiber::sleep_for(10s, source.token());
    canceller.join();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ECANCELED)) << r.error().message();
    EXPECT_LT(reactor::now_ns() - t0, 5'000'000'000);
    // A token already cancelled: at once, no matter how long the sleep.
    r = this_fiber::sleep_for(10s, source.token());
    EXPECT_TRUE(!r.ok() && r.error().is(ECANCELED));
  });
}

TEST(SleepTest, APlainThreadSleepsWithATokenToo) {
  CancelSource source;
  std::thread canceller([&] {
    std::this_thread::sleep_for(10ms);
    source.cancel();
  });
  const auto t0 = reactor::now_ns();
  sys::Result<void> r = this_fiber::sleep_for(10s, source.token());
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(ECANCELED));
  EXPECT_LT(reactor::now_ns() - t0, 5'000'000'000);
  EXPECT_TRUE(this_fiber::sleep_for(5ms, CancelToken()).ok());
}

TEST_P(FiberTest, GoOnAnotherLoopAndJoinAcrossLoops) {
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  reactor::Loop& second = group->loop(1);
  // Spawned from this plain thread on loop 0; that fiber spawns on loop 1 and
  // joins across loops (woken through loop 0's inbox); this thread joins on a
  // condition variable.
  auto outer = go_on(group->loop(0), [&second] {
    auto inner = go_on(second, [] {
      this_fiber::sleep_for(5ms);
      return reactor::Loop::current()->index();
    });
    auto failing = go_on(second, []() -> int { throw std::out_of_range("far away"); });
    int caught = 0;
    try {
      failing.join();
    } catch (const std::out_of_range&) {
      caught = 100;
    }
    return reactor::Loop::current()->index() * 10 + inner.join() + caught;
  });
  EXPECT_EQ(outer.join(), 101);  // ran on loop 0, inner on loop 1, exception seen
  group->stop();
}

TEST_P(FiberTest, GoOnByIndexUsesTheCallersLoopGroup) {
  auto group = start_group(3);
  ASSERT_NE(group, nullptr);
  auto h = go_on(group->loop(0), [] {
    auto a = go_on(2, [] { return reactor::Loop::current()->index(); });
    auto b = go_on(1, [] { return reactor::Loop::current()->index(); });
    std::string error;
    try {
      go_on(3, [] {});
    } catch (const std::out_of_range& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "go_on(loop index 3): the group has 3 loops");
    return a.join() * 10 + b.join();
  });
  EXPECT_EQ(h.join(), 21);
  group->stop();
  // This test's own loop belongs to no group.
  run_main([] { EXPECT_THROW(go_on(0, [] {}), std::logic_error); });
}

TEST_P(FiberTest, UnparkFromAPlainThread) {
  std::atomic<fiber::Fiber*> parked{nullptr};
  std::atomic<bool> released{false};
  std::atomic<bool> thread_done{false};
  std::thread waker([&] {
    fiber::Fiber* f = nullptr;
    while ((f = parked.load()) == nullptr) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(5ms);  // let it really park
    released = true;
    unpark(*f);  // through the loop's inbox
    thread_done = true;
  });
  const bool woke = run_main([&] {
    auto waiter = go([&] {
      parked = &this_fiber::current();
      while (!released) this_fiber::park("plain thread");
      // Stay alive until the thread is done with the fiber's reference.
      while (!thread_done) this_fiber::sleep_for(1ms);
      return true;
    });
    return waiter.join();
  });
  waker.join();
  EXPECT_TRUE(woke);
}

TEST_P(FiberTest, DumpShowsNameStateReasonAndSite) {
  run_main([] {
    bool go_on_flag = false;
    auto h = go(
        [&] {
          while (!go_on_flag) this_fiber::park("io read");
        },
        {.name = "conn-42"});
    auto s = go([] { this_fiber::sleep_for(50ms); }, {.name = "sleeper"});
    this_fiber::yield();  // both run until they park
    this_fiber::sleep_for(2ms);
    const std::string dump = fiber_dump();
    EXPECT_THAT(dump, HasSubstr("\"conn-42\" [parked: io read,"));
    EXPECT_THAT(dump, HasSubstr("\"sleeper\" [parked: sleep,"));
    EXPECT_THAT(dump, HasSubstr("\"main\" [running,"));
    EXPECT_THAT(dump, HasSubstr("spawned at tests/fiber/fiber_test.cc:"));
    EXPECT_THAT(dump, HasSubstr("3 fibers"));
    go_on_flag = true;
    unpark(fiber::Scheduler::current()->loop(), h.fiber_id());
    h.join();
    s.join();
  });
}

TEST_P(FiberTest, LongRunWithoutParkingIsCounted) {
  fiber::Scheduler::of(*loop_).set_long_run_threshold(2ms);
  run_main([] {
    const auto until = reactor::now_ns() + 5'000'000;
    while (reactor::now_ns() < until) {
    }
  });
  EXPECT_GE(fiber::Scheduler::of(*loop_).stats().long_runs, 1u);
}

TEST_P(FiberTest, UnjoinedExceptionIsLoggedWithTheFibersName) {
  ::testing::internal::CaptureStderr();
  run_main([] {
    go([] { throw std::runtime_error("lost"); }, {.name = "doomed"});  // handle dropped
    this_fiber::sleep_for(1ms);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr("'doomed' ended with an exception nobody joined: lost"));
}

TEST_P(FiberTest, OwnStackSize) {
  const std::size_t used = run_main([] {
    auto h = go(
        [] {
          volatile char big[200 * 1024];  // more than the default stack holds
          big[0] = 1;
          big[sizeof(big) - 1] = 2;
          return static_cast<std::size_t>(big[0] + big[sizeof(big) - 1]);
        },
        {.name = "big", .stack_size = 512 * 1024});
    return h.join();
  });
  EXPECT_EQ(used, 3u);
}

TEST_P(FiberTest, SpawnThatNeverRanCompletesItsHandle) {
  auto h = go_on(*loop_, [] { return 1; }, {.name = "orphan"});
  loop_.reset();  // the posted spawn is dropped with the loop
  ASSERT_TRUE(h.done());
  try {
    h.join();
    ADD_FAILURE() << "join() did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("'orphan' never ran"));
  }
}

using FiberDeathTest = FiberTest;

TEST_P(FiberDeathTest, LoopDestroyedUnderAParkedFiberAbortsWithADump) {
  const auto doomed = [backend = GetParam()] {
    auto loop = fiber::testing::loop_or_abort(backend);
    auto h = go_on(*loop, [] { this_fiber::park("forever"); }, {.name = "stuck"});
    loop->run_once(0ns);  // spawns
    loop->run_once(0ns);  // runs it until it parks
    loop.reset();
  };
  EXPECT_DEATH(doomed(), "\"stuck\" \\[parked: forever.*destroyed with 1 started, unfinished fibers");
}

INSTANTIATE_TEST_SUITE_P(Backends, FiberDeathTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, FiberTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo
