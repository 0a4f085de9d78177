// A fiber test on one loop of each backend: run_main(fn) runs `fn` as the
// test's "main" fiber and drives the loop until it ends (aborting with a fiber
// dump if it has not after two minutes: a hung test shows where it hangs).
//   class ChannelTest : public fiber::testing::FiberLoopTest {};
//   TEST_P(ChannelTest, X) { run_main([] { ... }); }
//   INSTANTIATE_TEST_SUITE_P(Backends, ChannelTest, reactor::testing::kAllBackends,
//                            reactor::testing::backend_name);
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "fiber/fiber.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "tests/reactor/backend_fixture.h"

namespace ringo::fiber::testing {

// For death tests: a loop of `backend` made inside the forked child (aborts
// if it cannot be made, which fails the test's expected message).
inline std::unique_ptr<reactor::Loop> loop_or_abort(reactor::BackendKind backend) {
  reactor::Loop::Options options;
  options.backend = backend;
  auto loop = reactor::Loop::create(options);
  if (!loop.ok()) std::abort();
  return std::move(*loop);
}

class FiberLoopTest : public reactor::testing::LoopTest {
 protected:
  // A LoopGroup of `loops` loops of the test's backend, unpinned, on the
  // first CPU of this thread's mask or (spread) round-robin over all of it.
  // Null (and the test failed) when it cannot start.
  std::unique_ptr<reactor::LoopGroup> start_group(std::size_t loops = 2, bool spread = false) {
    auto cpus = sys::affinity_cpus();
    EXPECT_TRUE(cpus.ok()) << cpus.error().message();
    if (!cpus.ok()) return nullptr;
    reactor::LoopGroup::Options options;
    for (std::size_t i = 0; i < loops; ++i) options.cpus.push_back(spread ? (*cpus)[i % cpus->size()] : cpus->front());
    options.pin = false;
    options.loop.backend = GetParam();
    auto group = reactor::LoopGroup::start(options);
    EXPECT_TRUE(group.ok()) << group.error().message();
    return group.ok() ? std::move(*group) : nullptr;
  }

  template <class F>
  auto run_main(F&& fn) {
    // When fn ends, a no-op post makes the loop's current turn end at once
    // instead of waiting out run_until's 10 ms poll.
    struct Nudge {
      reactor::Loop* loop;
      ~Nudge() { loop->post([] {}); }
    };
    auto h = go_on(
        *loop_,
        [f = std::forward<F>(fn), loop = loop_.get()]() mutable {
          Nudge nudge{loop};
          return f();
        },
        {.name = "main"});
    if (!run_until([&] { return h.done(); }, std::chrono::seconds(120))) {
      // join() would block this thread forever: show where the fibers are.
      std::fprintf(stderr, "main fiber did not finish:\n%s", Scheduler::of(*loop_).dump().c_str());
      std::abort();
    }
    return h.join();
  }
};

}  // namespace ringo::fiber::testing
