// Context: switching both ways with values, nesting, symmetric switch_to,
// exceptions handed to the resumer, 10,000 live contexts on pooled stacks,
// resident memory of an idle context, and the invariants that abort.
#include "fiber/internal/context.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ringo::fiber::internal {
namespace {

Stack new_stack(std::size_t size = kDefaultStackSize) {
  sys::Result<Stack> s = Stack::map(size);
  if (!s.ok()) ADD_FAILURE() << s.error().message();
  return s.ok() ? std::move(*s) : Stack();
}

void* as_ptr(std::uintptr_t v) { return reinterpret_cast<void*>(v); }
std::uintptr_t as_int(void* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(Context, RunsItsEntryOnItsOwnStackThenFinishes) {
  struct Seen {
    Context* current = nullptr;
    const void* local = nullptr;  // in the entry's frame
    void* arg = nullptr;
    void* first = nullptr;
  } seen;
  Context c(new_stack(), [](void* arg, void* first) {
    auto* s = static_cast<Seen*>(arg);
    s->current = Context::current();
    // The frame, not a local's address: ASan's detect_stack_use_after_return
    // moves locals to a "fake stack" on the heap.
    s->local = __builtin_frame_address(0);
    s->arg = arg;
    s->first = first;
  }, &seen, "runner");
  EXPECT_FALSE(c.started());
  EXPECT_EQ(Context::current(), nullptr);
  EXPECT_EQ(c.resume(as_ptr(7)), nullptr);
  EXPECT_TRUE(c.finished());
  EXPECT_EQ(seen.current, &c);
  EXPECT_EQ(seen.arg, &seen);
  EXPECT_EQ(seen.first, as_ptr(7));
  EXPECT_GE(static_cast<const std::byte*>(seen.local), c.stack().bottom());
  EXPECT_LT(static_cast<const std::byte*>(seen.local), c.stack().top());
  EXPECT_EQ(Context::current(), nullptr);
  EXPECT_STREQ(c.name(), "runner");
}

// The context doubles what it is given and sends it back, until given 0.
void doubler(void*, void* first) {
  std::uintptr_t v = as_int(first);
  while (v != 0) v = as_int(Context::current()->suspend(as_ptr(2 * v)));
}

TEST(Context, SwitchesBackAndForthPassingValues) {
  Context c(new_stack(), doubler, nullptr, "doubler");
  constexpr std::uintptr_t kRounds = 100'000;
  for (std::uintptr_t i = 1; i <= kRounds; ++i) {
    ASSERT_EQ(as_int(c.resume(as_ptr(i))), 2 * i);
    ASSERT_TRUE(c.suspended());
  }
  EXPECT_EQ(c.resume(nullptr), nullptr);
  EXPECT_TRUE(c.finished());
}

TEST(Context, NestedContextsSuspendOneLevelAtATime) {
  struct Log {
    std::vector<std::string> events;
    Context* inner = nullptr;
  } log;
  Context inner(new_stack(), [](void* arg, void*) {
    auto* l = static_cast<Log*>(arg);
    l->events.push_back("inner starts");
    Context::current()->suspend(as_ptr(1));
    l->events.push_back("inner ends");
  }, &log, "inner");
  log.inner = &inner;
  Context outer(new_stack(), [](void* arg, void*) {
    auto* l = static_cast<Log*>(arg);
    Context* self = Context::current();
    l->events.push_back("outer starts");
    l->events.push_back("inner gave " + std::to_string(as_int(l->inner->resume())));
    EXPECT_EQ(Context::current(), self);
    self->suspend();
    l->events.push_back("outer resumes inner again");
    EXPECT_EQ(l->inner->resume(), nullptr);
    EXPECT_TRUE(l->inner->finished());
  }, &log, "outer");
  outer.resume();
  log.events.push_back("main");
  outer.resume();
  EXPECT_TRUE(outer.finished());
  EXPECT_EQ(log.events, (std::vector<std::string>{"outer starts", "inner starts", "inner gave 1", "main",
                                                  "outer resumes inner again", "inner ends"}));
}

TEST(Context, SwitchToHandsTheResumerOver) {
  struct Pair {
    Context* b = nullptr;
    std::vector<std::string> events;
  } pair;
  Context b(new_stack(), [](void* arg, void* first) {
    auto* p = static_cast<Pair*>(arg);
    p->events.push_back("b got " + std::to_string(as_int(first)));
    Context::current()->suspend(as_ptr(20));  // to a's resumer: main
    p->events.push_back("b finishes");
  }, &pair, "b");
  pair.b = &b;
  Context a(new_stack(), [](void* arg, void*) {
    auto* p = static_cast<Pair*>(arg);
    p->events.push_back("a switches");
    void* back = Context::current()->switch_to(*p->b, as_ptr(10));
    p->events.push_back("a resumed with " + std::to_string(as_int(back)));
  }, &pair, "a");
  EXPECT_EQ(as_int(a.resume()), 20u);  // b's suspend arrives here
  EXPECT_TRUE(a.suspended());
  EXPECT_TRUE(b.suspended());
  EXPECT_EQ(b.resume(), nullptr);  // b finishes
  EXPECT_EQ(a.resume(as_ptr(30)), nullptr);
  EXPECT_EQ(pair.events, (std::vector<std::string>{"a switches", "b got 10", "b finishes", "a resumed with 30"}));
}

TEST(Context, AnExceptionComesOutOfResume) {
  Context c(new_stack(), [](void*, void*) { throw std::runtime_error("boom in a context"); }, nullptr, "thrower");
  try {
    c.resume();
    ADD_FAILURE() << "resume() did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom in a context");
  }
  EXPECT_TRUE(c.finished());
  EXPECT_FALSE(c.take_stack().empty());
}

TEST(Context, AnExceptionAfterSwitchToReachesTheResumer) {
  Context b(new_stack(), [](void*, void*) { throw std::logic_error("from b"); }, nullptr, "b");
  Context a(new_stack(), [](void* arg, void*) { Context::current()->switch_to(*static_cast<Context*>(arg)); },
            &b, "a");
  EXPECT_THROW(a.resume(), std::logic_error);
  EXPECT_TRUE(b.finished());
  EXPECT_TRUE(a.suspended());
  EXPECT_EQ(a.resume(), nullptr);
}

TEST(Context, ExceptionsCaughtInsideStayInside) {
  Context c(new_stack(), [](void*, void*) {
    for (int i = 0; i < 3; ++i) {
      int caught = 0;
      try {
        throw i;
      } catch (int v) {
        caught = v;
      }
      Context::current()->suspend(as_ptr(static_cast<std::uintptr_t>(caught) + 1));
    }
  }, nullptr, "catcher");
  EXPECT_EQ(as_int(c.resume()), 1u);
  EXPECT_EQ(as_int(c.resume()), 2u);
  EXPECT_EQ(as_int(c.resume()), 3u);
  EXPECT_EQ(c.resume(), nullptr);
}

// 10,000 stacks are 20,000 mappings (vm.max_map_count is 65,530 by default);
// under TSan each context also costs ~4 mappings of TSan's own, which it keeps
// for reuse after the context is gone: this test fits once per process under
// TSan (as ctest runs it), not twice (--gtest_repeat).
TEST(Context, TenThousandAliveThenAllFinishedOnPooledStacks) {
  constexpr std::size_t kCount = 10'000;
  StackPool pool({.max_pooled = 128, .map_batch = 1});  // one mmap per stack: exact counts below
  std::vector<std::unique_ptr<Context>> contexts;
  std::size_t finished = 0;
  for (std::size_t i = 0; i < kCount; ++i) {
    sys::Result<Stack> s = pool.acquire();
    if (!s.ok()) {
      ADD_FAILURE() << "context " << i << ": " << s.error().message();
      break;  // still finish the live ones below: destroying them suspended aborts
    }
    contexts.push_back(std::make_unique<Context>(std::move(*s), [](void* arg, void*) {
      Context::current()->suspend();
      ++*static_cast<std::size_t*>(arg);
    }, &finished, "worker"));
    contexts.back()->resume();
  }
  EXPECT_EQ(pool.stats().maps, kCount);
  for (auto& c : contexts) {
    EXPECT_EQ(c->resume(), nullptr);
    pool.release(c->take_stack());
  }
  ASSERT_EQ(finished, kCount);
  contexts.clear();
  StackPool::Stats st = pool.stats();
  EXPECT_EQ(st.pooled, 128u);
  EXPECT_EQ(st.unmaps, kCount - 128);
  // The same again, one at a time: every stack comes from the pool.
  for (std::size_t i = 0; i < kCount; ++i) {
    Context c(*pool.acquire(), [](void* arg, void*) { ++*static_cast<std::size_t*>(arg); }, &finished, "again");
    c.resume();
    pool.release(c.take_stack());
  }
  EXPECT_EQ(finished, 2 * kCount);
  EXPECT_EQ(pool.stats().maps, kCount);
  EXPECT_EQ(pool.stats().reuses, kCount);
}

TEST(Context, AnIdleContextTouchesAtMostTwoPages) {
  Context c(new_stack(), [](void*, void*) {
    int small[16] = {};
    asm volatile("" : : "r"(small) : "memory");  // a small frame that is really there
    Context::current()->suspend();
  }, nullptr, "idle");
  EXPECT_EQ(*c.stack().resident_bytes(), page_size());  // make_fcontext's first frame
  c.resume();
  const std::size_t resident = *c.stack().resident_bytes();
  EXPECT_LE(resident, 2 * page_size()) << resident / 1024 << " KiB resident";
  c.resume();
}

TEST(Context, NamesAreCutToCapacity) {
  const std::string longer(100, 'n');
  Context c(new_stack(), [](void*, void*) {}, nullptr, longer);
  EXPECT_EQ(std::string(c.name()), longer.substr(0, Context::kNameCapacity - 1));
  Context unnamed(new_stack(), [](void*, void*) {}, nullptr);
  EXPECT_STREQ(unnamed.name(), "");
}

TEST(Context, AFreshContextGivesItsStackBackUnrun) {
  Context c(new_stack(), [](void*, void*) { ADD_FAILURE() << "never runs"; }, nullptr);
  Stack s = c.take_stack();
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(c.finished());
}

TEST(ContextDeathTest, DestroyingASuspendedContextAborts) {
  EXPECT_DEATH(
      {
        Context c(new_stack(), [](void*, void*) { Context::current()->suspend(); }, nullptr, "parked");
        c.resume();
      },
      "broken invariant: a context destroyed while running or suspended .*'parked'");
}

TEST(ContextDeathTest, ResumingAFinishedContextAborts) {
  EXPECT_DEATH(
      {
        Context c(new_stack(), [](void*, void*) {}, nullptr, "done");
        c.resume();
        c.resume();
      },
      "broken invariant: resume\\(\\) of a context that is running or finished \\(context 'done'\\)");
}

TEST(ContextDeathTest, SuspendOutsideTheContextAborts) {
  EXPECT_DEATH(
      {
        Context c(new_stack(), [](void*, void*) {}, nullptr, "elsewhere");
        c.suspend();
      },
      "broken invariant: suspend\\(\\) called outside the context");
}

TEST(ContextDeathTest, ResumingYourOwnResumerAborts) {
  EXPECT_DEATH(
      {
        Context* outer_ptr = nullptr;
        Context inner(new_stack(), [](void* arg, void*) { (*static_cast<Context**>(arg))->resume(); }, &outer_ptr,
                      "inner");
        Context outer(new_stack(), [](void* arg, void*) { static_cast<Context*>(arg)->resume(); }, &inner, "outer");
        outer_ptr = &outer;
        outer.resume();
      },
      "resume\\(\\) of a context that is running or finished \\(context 'outer'\\)");
}

}  // namespace
}  // namespace ringo::fiber::internal
