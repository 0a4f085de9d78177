// Stack overflow reports: a context that recurses into its guard page dies
// with a message naming it and its stack size, on any thread; every other
// fault dies as it would without Ringo; the report's format; the handler and
// alternate signal stacks.
#include "fiber/internal/overflow.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "fiber/internal/context.h"

namespace ringo::fiber::internal {
namespace {

volatile std::size_t g_depth_limit = SIZE_MAX;  // opaque: the recursion has a way out
volatile std::uintptr_t g_bad_address = 8;      // a member at offset 8 of a null pointer

// Uses ~512 bytes of stack per level (the compiler can neither drop the
// buffer nor turn the recursion into a loop: the buffer's address escapes on
// both sides of the call).
[[gnu::noinline]] std::size_t recurse(std::size_t depth) {
  char pad[512];
  std::memset(pad, static_cast<int>(depth), sizeof(pad));
  asm volatile("" : : "r"(pad) : "memory");
  if (depth >= g_depth_limit) return static_cast<std::size_t>(pad[depth % sizeof(pad)]);
  const std::size_t below = recurse(depth + 1);
  asm volatile("" : : "r"(pad) : "memory");
  return below + static_cast<std::size_t>(pad[0]);
}

void overflow_entry(void*, void*) { (void)recurse(0); }

void run_overflowing_context(std::size_t stack_size, const char* name) {
  sys::Result<Stack> s = Stack::map(stack_size);
  if (!s.ok()) std::abort();
  Context c(std::move(*s), overflow_entry, nullptr, name);
  c.resume();
}

[[gnu::noinline]] void dereference_null_member() {
  *reinterpret_cast<volatile int*>(g_bad_address) = 1;
}

// A fault that is not an overflow: under a sanitizer its report, else the
// default action.
#if defined(RINGO_FIBER_ASAN) || defined(RINGO_FIBER_TSAN)
#define EXPECT_PLAIN_SEGV(statement) EXPECT_DEATH(statement, "SEGV on unknown address")
#else
#define EXPECT_PLAIN_SEGV(statement) EXPECT_EXIT(statement, ::testing::KilledBySignal(SIGSEGV), "")
#endif

TEST(ContextOverflowDeathTest, GuardPageHitNamesTheFiberAndItsStackSize) {
  EXPECT_DEATH(run_overflowing_context(64 * 1024, "conn-42"),
               "ringo: fiber 'conn-42' overflowed its 64 KiB stack \\(guard page hit at 0x[0-9a-f]+\\)");
}

TEST(ContextOverflowDeathTest, DefaultPooledStackIs128KiB) {
  EXPECT_DEATH(
      {
        StackPool pool;
        Context c(*pool.acquire(), overflow_entry, nullptr, "deep-recursion");
        c.resume();
      },
      "ringo: fiber 'deep-recursion' overflowed its 128 KiB stack \\(guard page hit at 0x[0-9a-f]+\\)");
}

TEST(ContextOverflowDeathTest, ReportedOnAnyThread) {
  EXPECT_DEATH(std::thread([] { run_overflowing_context(32 * 1024, "worker-7"); }).join(),
               "ringo: fiber 'worker-7' overflowed its 32 KiB stack");
}

TEST(ContextOverflowDeathTest, NullDereferenceOutsideAFiberIsAPlainSegv) {
  ASSERT_TRUE(prepare_thread_for_overflow_reports().ok());
  EXPECT_PLAIN_SEGV(dereference_null_member());
}

TEST(ContextOverflowDeathTest, NullDereferenceInsideAFiberIsAPlainSegv) {
  EXPECT_PLAIN_SEGV({
    sys::Result<Stack> s = Stack::map();
    Context c(std::move(*s), [](void*, void*) { dereference_null_member(); }, nullptr, "not-an-overflow");
    c.resume();
  });
}

TEST(ContextOverflow, HandlerIsInstalledOnceWithItsOwnStack) {
  ASSERT_TRUE(install_overflow_handler().ok());
  struct sigaction first {};
  ASSERT_EQ(::sigaction(SIGSEGV, nullptr, &first), 0);
  EXPECT_NE(first.sa_flags & SA_ONSTACK, 0);
  EXPECT_NE(first.sa_flags & SA_SIGINFO, 0);
  ASSERT_TRUE(install_overflow_handler().ok());
  struct sigaction second {};
  ASSERT_EQ(::sigaction(SIGSEGV, nullptr, &second), 0);
  EXPECT_EQ(first.sa_sigaction, second.sa_sigaction);
  struct sigaction bus {};
  ASSERT_EQ(::sigaction(SIGBUS, nullptr, &bus), 0);
  EXPECT_EQ(bus.sa_sigaction, first.sa_sigaction);
}

TEST(ContextOverflow, EachThreadGetsAnAlternateSignalStack) {
  std::thread([] {
    ASSERT_TRUE(ensure_signal_stack().ok());
    stack_t ss{};
    ASSERT_EQ(::sigaltstack(nullptr, &ss), 0);
    EXPECT_EQ(ss.ss_flags & SS_DISABLE, 0);
    EXPECT_GE(ss.ss_size, kMinSignalStack);
    const void* sp = ss.ss_sp;
    ASSERT_TRUE(ensure_signal_stack().ok());  // idempotent
    ASSERT_EQ(::sigaltstack(nullptr, &ss), 0);
    EXPECT_EQ(ss.ss_sp, sp);
  }).join();
}

TEST(ContextOverflow, ReportFormat) {
  char buf[256];
  auto report = [&](const char* name, std::size_t size, std::uintptr_t addr, bool guard) {
    return std::string(buf, format_overflow_report(buf, sizeof(buf), name, size, reinterpret_cast<void*>(addr), guard));
  };
  EXPECT_EQ(report("conn-42", 128 * 1024, 0x7f00dead1000, true),
            "ringo: fiber 'conn-42' overflowed its 128 KiB stack (guard page hit at 0x7f00dead1000)\n");
  EXPECT_EQ(report("", 8 << 20, 0x10, true),
            "ringo: fiber '(unnamed)' overflowed its 8 MiB stack (guard page hit at 0x10)\n");
  EXPECT_EQ(report("big", 4096, 0xabc, false),
            "ringo: fiber 'big' overflowed its 4 KiB stack (a frame larger than the guard page skipped it; "
            "fault at 0xabc)\n");
  char tiny[16];
  const std::size_t n = format_overflow_report(tiny, sizeof(tiny), "x", 4096, nullptr, true);
  EXPECT_EQ(n, sizeof(tiny));
  EXPECT_EQ(std::string(tiny, n), "ringo: fiber 'x\n");
}

TEST(ContextOverflow, ClassifiesFaultsAgainstTheStack) {
  sys::Result<Stack> s = Stack::map(64 * 1024);
  ASSERT_TRUE(s.ok());
  const std::byte* guard = s->guard();
  const std::byte* bottom = s->bottom();
  EXPECT_EQ(classify_fault(*s, guard, bottom + 64), FaultKind::guard_hit);
  EXPECT_EQ(classify_fault(*s, bottom - 1, bottom + 64), FaultKind::guard_hit);
  EXPECT_EQ(classify_fault(*s, guard - 4096, guard - 8192), FaultKind::below_stack);
  EXPECT_EQ(classify_fault(*s, guard - 4096, bottom + 64), FaultKind::not_ours);  // sp fine: a wild pointer
  EXPECT_EQ(classify_fault(*s, bottom, bottom), FaultKind::not_ours);
  EXPECT_EQ(classify_fault(*s, nullptr, bottom + 64), FaultKind::not_ours);
  EXPECT_EQ(classify_fault(Stack(), nullptr, nullptr), FaultKind::not_ours);
}

}  // namespace
}  // namespace ringo::fiber::internal
