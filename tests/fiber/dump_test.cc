// The fiber dump (fiber/dump.h, Scheduler::snapshot): the data of one loop's
// snapshot, the process-wide dump across a LoopGroup (from a plain thread and
// from a fiber), a busy loop reported as not answering, and SIGQUIT printing
// the dump to stderr and restoring the previous disposition. On both backends.
#include "fiber/dump.h"

#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/sync.h"
#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;
using ::testing::EndsWith;
using ::testing::HasSubstr;

class DumpTest : public fiber::testing::FiberLoopTest {};

const fiber::FiberInfo* find_named(const std::vector<fiber::FiberInfo>& fibers, const std::string& name) {
  auto it = std::find_if(fibers.begin(), fibers.end(), [&](const fiber::FiberInfo& f) { return f.name == name; });
  return it == fibers.end() ? nullptr : &*it;
}

void spin_for(std::int64_t ns) {
  const std::int64_t until = reactor::now_ns() + ns;
  while (reactor::now_ns() < until) {
  }
}

TEST_P(DumpTest, SnapshotDescribesEachFiber) {
  run_main([this] {
    fiber::Scheduler& s = *fiber::Scheduler::current();
    bool parking = false;
    bool released = false;
    const std::uint64_t line_before = __LINE__;
    auto worker = go(
        [&] {
          for (int i = 0; i < 3; ++i) this_fiber::yield();
          spin_for(2'000'000);
          parking = true;
          while (!released) this_fiber::park("dump test: parked");
        },
        {.name = "worker"});
    const std::uint64_t line_after = __LINE__;

    // Not run yet: runnable, no switches, no CPU time.
    std::vector<fiber::FiberInfo> snap = s.snapshot();
    ASSERT_EQ(snap.size(), 2u);  // main and worker
    const fiber::FiberInfo* w = find_named(snap, "worker");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->id, worker.fiber_id());
    EXPECT_EQ(w->state, fiber::FiberState::runnable);
    EXPECT_EQ(w->reason, nullptr);
    EXPECT_EQ(w->switches, 0u);
    EXPECT_EQ(w->cpu_ns, 0);
    EXPECT_EQ(snap[0].id, std::min(worker.fiber_id(), this_fiber::current().id()));  // sorted by id

    while (!parking) this_fiber::yield();  // it parks in the turn it set the flag
    snap = s.snapshot();
    ASSERT_EQ(snap.size(), 2u);
    w = find_named(snap, "worker");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->loop, loop_->index());
    EXPECT_EQ(w->state, fiber::FiberState::parked);
    ASSERT_NE(w->reason, nullptr);
    EXPECT_STREQ(w->reason, "dump test: parked");
    EXPECT_EQ(w->switches, 4u);           // the first resume and three yields
    EXPECT_GE(w->cpu_ns, 1'500'000);      // it spun ~2 ms (a loose lower bound for the cycle calibration)
    EXPECT_THAT(w->site.file, EndsWith("tests/fiber/dump_test.cc"));
    EXPECT_GE(w->site.line, line_before);
    EXPECT_LE(w->site.line, line_after);
    const fiber::FiberInfo* m = find_named(snap, "main");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->state, fiber::FiberState::running);
    EXPECT_EQ(m->id, this_fiber::current().id());

    const fiber::FiberInfo first = *w;
    this_fiber::sleep_for(5ms);
    snap = s.snapshot();
    w = find_named(snap, "worker");
    ASSERT_NE(w, nullptr);
    EXPECT_GE(w->in_state_ns - first.in_state_ns, 4'000'000);  // still parked, 5 ms later
    EXPECT_EQ(w->cpu_ns, first.cpu_ns);                        // parked fibers use no CPU
    EXPECT_EQ(w->switches, first.switches);

    const std::string text = s.dump();
    EXPECT_THAT(text, HasSubstr("loop L" + std::to_string(loop_->index()) + ": 2 fibers"));
    EXPECT_THAT(text, HasSubstr("fiber " + std::to_string(worker.fiber_id()) +
                                " \"worker\" [parked: dump test: parked, "));
    EXPECT_THAT(text, HasSubstr("4 switches, spawned at "));
    EXPECT_THAT(text, HasSubstr("tests/fiber/dump_test.cc:"));

    released = true;
    unpark(s.loop(), worker.fiber_id());
    worker.join();
    EXPECT_EQ(s.snapshot().size(), 1u);
  });
}

TEST_P(DumpTest, DumpAllLoopsAsksEveryLoop) {
  auto group = start_group(2);
  ASSERT_NE(group, nullptr);
  fiber::Event release;
  std::atomic<int> waiting{0};
  auto a = go_on(group->loop(0), [&] {
    waiting.fetch_add(1);
    (void)release.wait();
  }, {.name = "dump-a"});
  auto b = go_on(group->loop(1), [&] {
    waiting.fetch_add(1);
    (void)release.wait();
  }, {.name = "dump-b"});
  const std::int64_t give_up = reactor::now_ns() + 10'000'000'000;
  while (waiting.load() < 2 && reactor::now_ns() < give_up) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(waiting.load(), 2);

  // From a plain thread: every loop is asked through its inbox. (A fiber
  // parks in the turn it counted itself, and the snapshot runs on its loop's
  // thread: it is parked there.) This test's own loop has no scheduler: only
  // the group's loops are registered.
  const std::vector<fiber::LoopDump> loops = fiber::dump_all_loops(5s);
  const std::string text = fiber::format_dump(loops);
  ASSERT_EQ(loops.size(), 2u) << text;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(loops[i].loop, i);
    EXPECT_TRUE(loops[i].answered);
    ASSERT_EQ(loops[i].fibers.size(), 1u) << text;
  }
  const fiber::FiberInfo* fa = find_named(loops[0].fibers, "dump-a");
  ASSERT_NE(fa, nullptr) << text;
  EXPECT_EQ(fa->id, a.fiber_id());
  EXPECT_EQ(fa->loop, 0);
  EXPECT_EQ(fa->state, fiber::FiberState::parked);
  EXPECT_STREQ(fa->reason, "event");
  const fiber::FiberInfo* fb = find_named(loops[1].fibers, "dump-b");
  ASSERT_NE(fb, nullptr) << text;
  EXPECT_EQ(fb->id, b.fiber_id());
  EXPECT_EQ(fb->loop, 1);
  EXPECT_EQ(find_named(loops[0].fibers, "dump-b"), nullptr);
  EXPECT_THAT(text, HasSubstr("loop L0: 1 fibers\n"));
  EXPECT_THAT(text, HasSubstr("loop L1: 1 fibers\n"));
  EXPECT_THAT(text, HasSubstr("\"dump-a\" [parked: event, "));
  EXPECT_THAT(text, HasSubstr("\"dump-b\" [parked: event, "));

  // From a fiber of loop 1: its own loop is read directly (the asker shows
  // as running), the other one through its inbox.
  auto asker = go_on(group->loop(1), [] { return fiber::dump_all_loops(5s); }, {.name = "asker"});
  const std::vector<fiber::LoopDump> from_fiber = asker.join();
  ASSERT_EQ(from_fiber.size(), 2u);
  EXPECT_TRUE(from_fiber[0].answered);
  EXPECT_TRUE(from_fiber[1].answered);
  EXPECT_NE(find_named(from_fiber[0].fibers, "dump-a"), nullptr);
  EXPECT_NE(find_named(from_fiber[1].fibers, "dump-b"), nullptr);
  const fiber::FiberInfo* self = find_named(from_fiber[1].fibers, "asker");
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->state, fiber::FiberState::running);

  release.set();
  a.join();
  b.join();
  group->stop();
}

TEST_P(DumpTest, BusyLoopIsReportedAsNotAnswering) {
  auto group = start_group(2);
  ASSERT_NE(group, nullptr);
  fiber::Event release;
  std::atomic<bool> spinning{false};
  std::atomic<bool> stop_spinning{false};
  std::atomic<bool> idle{false};
  auto parked = go_on(group->loop(0), [&] {
    idle = true;
    (void)release.wait();
  }, {.name = "idle"});
  // Computes without parking (bounded at 2 s in case the test fails first).
  auto busy = go_on(group->loop(1), [&] {
    spinning = true;
    const std::int64_t until = reactor::now_ns() + 2'000'000'000;
    while (!stop_spinning.load() && reactor::now_ns() < until) {
    }
  }, {.name = "busy"});
  const std::int64_t give_up = reactor::now_ns() + 10'000'000'000;
  // Both spawns have arrived (a loop's scheduler registers with its first fiber).
  while (!(spinning.load() && idle.load()) && reactor::now_ns() < give_up) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(spinning.load());
  ASSERT_TRUE(idle.load());

  const std::int64_t t0 = reactor::now_ns();
  const std::vector<fiber::LoopDump> loops = fiber::dump_all_loops(50ms);
  const std::int64_t took = reactor::now_ns() - t0;
  // From a fiber too (its wait for the answers parks with the timeout).
  auto from_fiber = go_on(group->loop(0), [] { return fiber::dump_all_loops(50ms); });
  const std::vector<fiber::LoopDump> fiber_loops = from_fiber.join();
  stop_spinning = true;
  busy.join();
  release.set();
  parked.join();
  group->stop();

  const std::string text = fiber::format_dump(loops);
  ASSERT_EQ(loops.size(), 2u) << text;
  EXPECT_TRUE(loops[0].answered);
  EXPECT_NE(find_named(loops[0].fibers, "idle"), nullptr) << text;
  EXPECT_FALSE(loops[1].answered);
  EXPECT_TRUE(loops[1].fibers.empty());
  EXPECT_GE(took, 50'000'000);
  EXPECT_LT(took, 1'000'000'000);  // bounded by the timeout, not by the 2 s spin
  EXPECT_THAT(text, HasSubstr("loop L1: did not answer"));
  EXPECT_THAT(text, HasSubstr("loop L0: 1 fibers"));

  ASSERT_EQ(fiber_loops.size(), 2u);
  EXPECT_TRUE(fiber_loops[0].answered);
  EXPECT_FALSE(fiber_loops[1].answered);
}

std::atomic<int> g_test_quits{0};
void test_quit_handler(int) { g_test_quits.fetch_add(1); }

struct sigaction query_sigquit() {
  struct sigaction now {};
  ::sigaction(SIGQUIT, nullptr, &now);
  return now;
}

TEST_P(DumpTest, SigquitWritesTheDumpAndRestoresThePreviousHandler) {
  auto group = start_group(1);
  ASSERT_NE(group, nullptr);
  fiber::Event release;
  std::atomic<bool> waiting{false};
  auto h = go_on(group->loop(0), [&] {
    waiting = true;
    (void)release.wait();
  }, {.name = "sigquit-witness"});
  const std::int64_t give_up = reactor::now_ns() + 10'000'000'000;
  while (!waiting.load() && reactor::now_ns() < give_up) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(waiting.load());

  // A handler of our own first, to see it come back.
  g_test_quits = 0;
  struct sigaction original {};
  struct sigaction mine {};
  mine.sa_handler = &test_quit_handler;
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(::sigaction(SIGQUIT, &mine, &original), 0);

  std::string err;
  int dumped = 0;
  {
    auto dump = std::make_unique<fiber::SigquitDump>();
    EXPECT_NE(query_sigquit().sa_handler, &test_quit_handler);
    EXPECT_THROW({ fiber::SigquitDump second; }, std::logic_error);  // one at a time
    const int before = dump->dumps();
    ::testing::internal::CaptureStderr();
    ::raise(SIGQUIT);
    const std::int64_t until = reactor::now_ns() + 10'000'000'000;
    while (dump->dumps() == before && reactor::now_ns() < until) std::this_thread::sleep_for(1ms);
    err = ::testing::internal::GetCapturedStderr();
    dumped = dump->dumps() - before;
    dump.reset();
  }
  EXPECT_EQ(dumped, 1);
  EXPECT_THAT(err, HasSubstr("ringo: SIGQUIT: fiber dump\n"));
  EXPECT_THAT(err, HasSubstr("loop L0: 1 fibers\n"));
  EXPECT_THAT(err, HasSubstr("\"sigquit-witness\" [parked: event, "));
  EXPECT_EQ(g_test_quits.load(), 0);  // ours was replaced meanwhile

  // Destroyed: the previous disposition is back, and it is what runs.
  EXPECT_EQ(query_sigquit().sa_handler, &test_quit_handler);
  ::raise(SIGQUIT);
  const std::int64_t until = reactor::now_ns() + 10'000'000'000;
  while (g_test_quits.load() == 0 && reactor::now_ns() < until) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(g_test_quits.load(), 1);

  // And a second SigquitDump may be made now.
  { fiber::SigquitDump again; }
  EXPECT_EQ(query_sigquit().sa_handler, &test_quit_handler);
  ASSERT_EQ(::sigaction(SIGQUIT, &original, nullptr), 0);

  release.set();
  h.join();
  group->stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, DumpTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo
