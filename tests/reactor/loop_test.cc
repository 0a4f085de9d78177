// Loop on both backends: timers in order, cancel, ready work, the remote inbox
// (4 threads x 100,000 posts, nothing lost or duplicated), coalesced
// wake-ups, idle spinning, stop from another thread, the attachment slot's
// lifetime; and backend selection,
// including the automatic fallback when seccomp refuses io_uring.
#include "reactor/loop.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "tests/reactor/backend_fixture.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

struct RecordingTimer : Timer {
  std::vector<int>* fired = nullptr;
  int id = 0;
};

void record_fire(Timer& t) {
  auto& rt = static_cast<RecordingTimer&>(t);
  rt.fired->push_back(rt.id);
}

TEST_P(LoopTest, TimersFireInDeadlineOrder) {
  std::vector<RecordingTimer> timers(200);
  std::vector<int> fired;
  std::mt19937 rng(7);
  const std::int64_t base = now_ns();
  for (int i = 0; i < 200; ++i) {
    timers[i].fired = &fired;
    timers[i].id = i;
    timers[i].on_fire = record_fire;
    timers[i].deadline_ns = base + static_cast<std::int64_t>(rng() % 40) * 1'000'000;
    loop_->add_timer(timers[i]);
  }
  ASSERT_TRUE(run_until([&] { return fired.size() == 200; }));
  for (std::size_t i = 1; i < fired.size(); ++i) {
    const auto& a = timers[fired[i - 1]];
    const auto& b = timers[fired[i]];
    ASSERT_TRUE(a.deadline_ns < b.deadline_ns || (a.deadline_ns == b.deadline_ns && fired[i - 1] < fired[i]));
  }
  EXPECT_GE(now_ns(), base + 39 * 1'000'000);
  EXPECT_EQ(loop_->stats().timers_fired, 200u);
}

TEST_P(LoopTest, TimerDoesNotFireEarlyAndCancelledTimerNeverFires) {
  std::vector<int> fired;
  RecordingTimer keep, drop;
  keep.fired = drop.fired = &fired;
  keep.id = 1;
  drop.id = 2;
  keep.on_fire = drop.on_fire = record_fire;
  const std::int64_t start = now_ns();
  keep.deadline_ns = start + 30'000'000;
  drop.deadline_ns = start + 10'000'000;
  loop_->add_timer(keep);
  loop_->add_timer(drop);
  EXPECT_TRUE(loop_->cancel_timer(drop));
  ASSERT_TRUE(run_until([&] { return !fired.empty(); }));
  EXPECT_GE(now_ns() - start, 30'000'000);  // the loop slept until the timer, not before
  loop_->run_once(20ms);
  EXPECT_EQ(fired, std::vector<int>{1});
}

struct CountingRunnable : Runnable {
  int runs = 0;
  int reschedule = 0;
  Loop* loop = nullptr;
};

TEST_P(LoopTest, ReadyWorkRunsOnceAndReschedulingWaitsForNextTurn) {
  CountingRunnable r;
  r.loop = loop_.get();
  r.reschedule = 2;
  r.run = [](Runnable& self) {
    auto& c = static_cast<CountingRunnable&>(self);
    ++c.runs;
    if (c.reschedule-- > 0) c.loop->schedule(c);
  };
  loop_->schedule(r);
  loop_->run_once(0ns);
  EXPECT_EQ(r.runs, 1);  // rescheduled itself, but not in the same phase
  loop_->run_once(0ns);
  loop_->run_once(0ns);
  EXPECT_EQ(r.runs, 3);
  loop_->run_once(0ns);
  EXPECT_EQ(r.runs, 3);
}

TEST_P(LoopTest, FourThreadsPostHundredThousandEachNothingLostOrDuplicated) {
  constexpr int kThreads = 4;
  constexpr int kPosts = 100'000;
  std::vector<std::vector<int>> seen(kThreads);
  for (auto& v : seen) v.reserve(kPosts);
  std::size_t total = 0;
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        loop_->post([&seen, &total, t, i] {
          seen[t].push_back(i);
          ++total;
        });
      }
    });
  }
  const bool done = run_until([&] { return total == std::size_t{kThreads} * kPosts; }, 60'000ms);
  for (auto& p : posters) p.join();
  ASSERT_TRUE(done) << total;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), std::size_t{kPosts});
    for (int i = 0; i < kPosts; ++i) ASSERT_EQ(seen[t][i], i) << "thread " << t;  // per-producer FIFO
  }
  EXPECT_EQ(loop_->stats().tasks_run, std::uint64_t{kThreads} * kPosts);
}

TEST_P(LoopTest, PostWakesASleepingLoop) {
  std::atomic<bool> ran{false};
  std::thread poster([&] {
    std::this_thread::sleep_for(50ms);
    loop_->post([&] { ran = true; });
  });
  // The first turn blocks with no timeout until the post wakes it; the task
  // itself runs in the next turn's inbox phase.
  loop_->run_once(10'000ms);
  const std::int64_t start = now_ns();
  while (!ran && now_ns() - start < 10'000'000'000) loop_->run_once(100ms);
  poster.join();
  EXPECT_TRUE(ran);
  const LoopStats s = loop_->stats();
  EXPECT_GE(s.sleeps, 1u);
  EXPECT_GE(s.wakeups, 1u);
}

TEST_P(LoopTest, PostsToABusyLoopDoNotWakeIt) {
  // The loop is not sleeping (nobody runs it), so posting never touches the backend.
  int ran = 0;
  std::thread poster([&] {
    for (int i = 0; i < 1000; ++i) loop_->post([&] { ++ran; });
  });
  poster.join();
  EXPECT_EQ(loop_->stats().wakeups, 0u);
  loop_->run_once(0ns);
  EXPECT_EQ(ran, 1000);
}

TEST_P(LoopTest, IdleSpinFindsWorkBeforeSleeping) {
  Loop::Options options;
  options.backend = GetParam();
  options.idle_spin = std::chrono::microseconds(2'000'000);
  auto spinning = Loop::create(options);
  ASSERT_TRUE(spinning.ok());
  std::atomic<bool> ran{false};
  std::thread poster([&] {
    std::this_thread::sleep_for(5ms);
    (*spinning)->post([&] { ran = true; });
  });
  while (!ran) (*spinning)->run_once(10'000ms);
  poster.join();
  const LoopStats s = (*spinning)->stats();
  EXPECT_GE(s.spin_hits, 1u);
  EXPECT_EQ(s.wakeups, 0u) << "a spinning loop needs no wake-up";
}

TEST_P(LoopTest, StopFromAnotherThreadEndsRun) {
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    loop_->stop();
  });
  loop_->run();  // returns once the stop is seen
  stopper.join();
  EXPECT_EQ(Loop::current(), nullptr);
}

TEST_P(LoopTest, CurrentIsTheRunningLoop) {
  Loop* seen = nullptr;
  loop_->post([&] { seen = Loop::current(); });
  loop_->run_once(0ns);
  EXPECT_EQ(seen, loop_.get());
}

// The attachment (the fiber scheduler's slot) dies with the loop, on it, after
// the backend has completed what was in flight.
TEST_P(LoopTest, AttachmentIsDestroyedAfterTheBackendCompletesInFlightWork) {
  struct Seen {
    bool completed = false;
    bool completed_first = false;
    Loop* current = nullptr;
  } seen;
  struct Probe final : LoopAttachment {
    explicit Probe(Seen& s) : seen(s) {}
    ~Probe() override {
      seen.completed_first = seen.completed;
      seen.current = Loop::current();
    }
    Seen& seen;
  };
  Operation op;
  prepare_timeout(op, 1h);
  op.user = &seen;
  op.on_complete = [](Operation& o, Completion&) { static_cast<Seen*>(o.user)->completed = true; };
  loop_->submit(op);
  loop_->run_once(0ns);
  EXPECT_EQ(loop_->attachment(), nullptr);
  loop_->set_attachment(std::make_unique<Probe>(seen));
  EXPECT_NE(loop_->attachment(), nullptr);
  Loop* const loop = loop_.get();
  loop_.reset();
  EXPECT_TRUE(seen.completed_first);
  EXPECT_EQ(seen.current, loop);
}

INSTANTIATE_TEST_SUITE_P(Backends, LoopTest, testing::kAllBackends, testing::backend_name);

TEST(BackendSelection, ParsesKindsAndRejectsOthers) {
  EXPECT_EQ(*parse_backend_kind("auto"), BackendKind::automatic);
  EXPECT_EQ(*parse_backend_kind("io_uring"), BackendKind::io_uring);
  EXPECT_EQ(*parse_backend_kind("epoll"), BackendKind::epoll);
  auto bad = parse_backend_kind("kqueue");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("expected auto, io_uring or epoll"), std::string::npos);
}

TEST(BackendSelection, EnvironmentChoosesTheBackend) {
  ::setenv("RINGO_BACKEND", "epoll", 1);
  auto options = Loop::options_from_env();
  ::setenv("RINGO_BACKEND", "bogus", 1);
  auto bad = Loop::options_from_env();
  ::unsetenv("RINGO_BACKEND");
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->backend, BackendKind::epoll);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("RINGO_BACKEND"), std::string::npos);
}

TEST(BackendSelection, AutoPrefersIoUringWhereAllowed) {
  auto backend = make_backend(BackendKind::automatic);
  ASSERT_TRUE(backend.ok());
  EXPECT_EQ((*backend)->kind(), BackendKind::io_uring) << "this machine allows io_uring";
}

// Makes io_uring_setup fail with EPERM in this process, as Docker's default
// seccomp profile does.
void refuse_io_uring_setup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    std::fprintf(stderr, "seccomp setup failed\n");
    std::_Exit(3);
  }
}

TEST(BackendSelectionDeathTest, AutoFallsBackToEpollWhenSeccompRefusesIoUring) {
  EXPECT_EXIT(
      {
        refuse_io_uring_setup();
        auto forced = make_backend(BackendKind::io_uring);
        if (forced.ok() || !forced.error().is(EPERM)) std::_Exit(4);
        std::fprintf(stderr, "forced: %s\n", forced.error().message().c_str());
        Loop::Options options;  // automatic
        auto loop = Loop::create(options);
        if (!loop.ok() || (*loop)->backend_kind() != BackendKind::epoll) std::_Exit(5);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0),
      "forced: io_uring_setup: EPERM(.|\n)*backend auto: io_uring unavailable \\(io_uring_setup: EPERM.*using epoll");
}

}  // namespace
}  // namespace ringo::reactor
