// blocking(fn) (fiber/blocking.h) on both backends: values of every kind and
// exceptions come back to the fiber; fn runs on a named pool thread (inline
// from a plain thread); the loop keeps running other fibers meanwhile; more
// concurrent calls than pool threads queue and never exceed the cap;
// cancellation does not cut fn short; fibers of two loops share the pool.
#include "fiber/blocking.h"

#include <pthread.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
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

class BlockingTest : public fiber::testing::FiberLoopTest {};

std::string thread_name() {
  char name[32] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof(name));
  return name;
}

// Polls `done` (plain sleeps: runs on a pool thread) for up to 5 s.
template <class Pred>
bool poll_until(Pred done) {
  const auto until = reactor::now_ns() + 5'000'000'000;
  while (!done()) {
    if (reactor::now_ns() > until) return false;
    std::this_thread::sleep_for(200us);
  }
  return true;
}

TEST_P(BlockingTest, ReturnsValuesOfEveryKind) {
  run_main([] {
    EXPECT_EQ(blocking([] { return 42; }), 42);
    EXPECT_EQ(blocking([] { return std::string(100, 'x'); }), std::string(100, 'x'));
    std::unique_ptr<int> p = blocking([] { return std::make_unique<int>(7); });
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 7);
    int target = 1;
    int& ref = blocking([&]() -> int& { return target; });
    EXPECT_EQ(&ref, &target);
    bool ran = false;
    blocking([&] { ran = true; });
    EXPECT_TRUE(ran);
    auto callable = [n = 5]() mutable { return ++n; };  // an lvalue, invoked in place
    EXPECT_EQ(blocking(callable), 6);
  });
}

TEST_P(BlockingTest, RethrowsTheExceptionInTheFiber) {
  run_main([] {
    try {
      blocking([]() -> int { throw std::runtime_error("disk on fire"); });
      ADD_FAILURE() << "blocking() did not throw";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "disk on fire");
    }
    EXPECT_EQ(blocking([] { return 1; }), 1);  // and the fiber goes on
  });
}

TEST_P(BlockingTest, RunsOnANamedPoolThreadInlineOutsideFibers) {
  const std::thread::id test_thread = std::this_thread::get_id();
  run_main([&] {
    const std::thread::id loop_thread = std::this_thread::get_id();
    struct Seen {
      std::thread::id id;
      std::string name;
      bool in_fiber;
    };
    const Seen seen = blocking([] { return Seen{std::this_thread::get_id(), thread_name(), this_fiber::in_fiber()}; });
    EXPECT_NE(seen.id, loop_thread);
    EXPECT_EQ(seen.name, "ringo-blocking");
    EXPECT_FALSE(seen.in_fiber);
  });
  // A plain thread (this one, outside the loop's run) calls fn itself.
  EXPECT_EQ(blocking([] { return std::this_thread::get_id(); }), test_thread);
  const BlockingStats stats = blocking_stats();
  EXPECT_GE(stats.threads, 1u);
  EXPECT_LE(stats.threads, stats.max_threads);
}

TEST_P(BlockingTest, LoopRunsOtherFibersMeanwhile) {
  run_main([] {
    std::atomic<int> ticks{0};
    std::atomic<bool> stop{false};
    auto ticker = go([&] {
      while (!stop) {
        this_fiber::sleep_for(1ms);
        ++ticks;
      }
    });
    // Returns only if the ticker keeps ticking while this fiber is parked.
    const bool saw_ticks = blocking([&] { return poll_until([&] { return ticks.load() >= 5; }); });
    EXPECT_TRUE(saw_ticks);
    // The dump names the wait while fn runs.
    std::atomic<bool> dumped{false};
    auto dumper = go([&] {
      const std::string dump = fiber_dump();
      EXPECT_THAT(dump, HasSubstr("blocking"));
      dumped = true;
    });
    blocking([&] { poll_until([&] { return dumped.load(); }); });
    dumper.join();
    stop = true;
    ticker.join();
  });
}

TEST_P(BlockingTest, MoreCallsThanThreadsQueueAndRespectTheCap) {
  run_main([] {
    const auto cap = static_cast<int>(blocking_threads());
    const int calls = 3 * cap;
    std::atomic<int> running{0}, max_running{0};
    const auto t0 = reactor::now_ns();
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < calls; ++i) {
      hs.push_back(go([&, i] {
        return blocking([&, i] {
          const int now = ++running;
          int m = max_running.load();
          while (now > m && !max_running.compare_exchange_weak(m, now)) {
          }
          std::this_thread::sleep_for(10ms);
          --running;
          return i;
        });
      }));
    }
    int sum = 0;
    for (auto& h : hs) sum += h.join();
    EXPECT_EQ(sum, calls * (calls - 1) / 2);
    EXPECT_LE(max_running.load(), cap);
    EXPECT_GE(max_running.load(), 1);
    EXPECT_GE(reactor::now_ns() - t0, 30'000'000);  // three waves of 10 ms at least
    EXPECT_LE(blocking_stats().threads, static_cast<std::size_t>(cap));
  });
}

TEST_P(BlockingTest, CancellationDoesNotCutFnShort) {
  run_main([] {
    CancelSource src;
    std::atomic<bool> fn_ended{false};
    auto worker = go(
        [&] {
          const int v = blocking([&] {
            poll_until([&] { return src.cancelled(); });
            std::this_thread::sleep_for(5ms);
            fn_ended = true;
            return 7;
          });
          EXPECT_TRUE(fn_ended.load());  // the fiber waited for fn's end
          return v;
        },
        {.token = src.token()});
    this_fiber::sleep_for(2ms);
    src.cancel();
    EXPECT_EQ(worker.join(), 7);
  });
}

TEST_P(BlockingTest, FibersOfTwoLoopsShareThePool) {
  auto group = start_group();
  ASSERT_NE(group, nullptr);
  std::vector<JoinHandle<int>> hs;
  for (int f = 0; f < 6; ++f) {
    hs.push_back(go_on(group->loop(f % 2), [f] {
      int sum = 0;
      for (int i = 0; i < 20; ++i) sum += blocking([f, i] { return f * 100 + i; });
      return sum;
    }));
  }
  int total = 0;
  for (auto& h : hs) total += h.join();
  group->stop();
  EXPECT_EQ(total, 20 * 100 * (0 + 1 + 2 + 3 + 4 + 5) + 6 * (19 * 20 / 2));
}

TEST(BlockingConfig, SetBlockingThreads) {
  const std::size_t before = blocking_threads();
  EXPECT_GE(before, 1u);
  set_blocking_threads(2);
  EXPECT_EQ(blocking_threads(), 2u);
  set_blocking_threads(0);  // back to the default
  EXPECT_EQ(blocking_threads(), before);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockingTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo
