// fd_registry_bench: what the fd registry (syscall/fd_registry.h) adds to the
// life of one descriptor, i.e. to one create+close pair.
//
// The registry sits on every accept, connect, eventfd and close the framework
// does, so its target is "well under 100 ns added per create+close pair when
// enabled without stack capture; none when compiled out". A pair is measured
// against peers that differ from it in one thing only:
//  - BM_BareEventfdClose: ::eventfd + ::close, no Ringo at all. The floor: two
//    syscalls (an fd-table insert and removal in the kernel). eventfd is the
//    cheapest descriptor Linux makes, so the registry's share looks as large
//    here as it can ever look; a socket or accept costs several times more.
//  - BM_RingoEventfd: ringo::sys::eventfd() then ~Fd. The same syscalls plus
//    the wrapper (Result<Fd>, Fd moves) and the registry's on_create/on_close.
//  - BM_RingoEventfdStacks: as above with creation stacks captured
//    (backtrace(3)), the opt-in debugging mode, to show what it costs.
//  - BM_RegistryOnly: fd_registry::on_create + on_close on one fd number,
//    no syscall: the pure bookkeeping, free of the kernel's noise.
//  - threads:2 variants of the bare and Ringo pairs: per-pair CPU time that
//    stays flat from 1 to 2 threads means no shared counter or lock; the bare
//    peer shows what the kernel's own fd table costs under the same load.
//  - BM_RegistryOnlyPair/stride:N/threads:2: bookkeeping on two threads whose
//    fd numbers are N apart. Records are 48 bytes, so neighbouring numbers (as
//    the kernel's lowest-free-number rule hands out) share a cache line.
//  - BM_FakeSyscallBare / BM_FakeSyscallRingo: the bare and Ringo pairs with
//    eventfd(2) and close(2) faked (the link wraps them, see below), so that
//    what Ringo's user-space path costs shows without the kernel's noise.
//    Paired with the real pairs this also shows how much more that path costs
//    right after real syscalls, with caches and predictors disturbed.
// The same binary is built with RINGO_FD_REGISTRY=OFF (registry compiled out);
// bench/run_fd_registry_bench.sh runs both, alternating, and compares each
// Ringo figure with the bare peer of the same run: machines are shared and
// noisy, and only differences within one run mean anything.
//
// Rejected: timing a socket pair or accept (more kernel work, so more noise,
// hiding a cost of tens of ns); timing the registry with std::chrono around
// single calls (the clock costs as much as what it would measure).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>

#include <benchmark/benchmark.h>

#include "syscall/events.h"
#include "syscall/fd.h"
#include "syscall/fd_registry.h"

// bench/syscall/CMakeLists.txt links with --wrap=eventfd --wrap=close: every
// call to them from this binary's own objects and libringo_syscall.a lands
// here. They pass through to libc unless a fake-syscall benchmark set
// g_fake_fd, a real descriptor that then stands for every "new" one.
namespace {
std::atomic<int> g_fake_fd{-1};
}  // namespace

extern "C" int __real_eventfd(unsigned initval, int flags);
extern "C" int __real_close(int fd);
extern "C" int __wrap_eventfd(unsigned initval, int flags) {
  const int fake = g_fake_fd.load(std::memory_order_relaxed);
  return fake >= 0 ? fake : __real_eventfd(initval, flags);
}
extern "C" int __wrap_close(int fd) {
  return g_fake_fd.load(std::memory_order_relaxed) >= 0 ? 0 : __real_close(fd);
}

namespace {

namespace sys = ringo::sys;
namespace reg = ringo::sys::fd_registry;

constexpr int kBareFlags = EFD_CLOEXEC | EFD_NONBLOCK;

void BM_BareEventfdClose(benchmark::State& state) {
  for (auto _ : state) {
    const int fd = ::eventfd(0, kBareFlags);
    if (fd < 0) {
      state.SkipWithError("eventfd failed");
      break;
    }
    benchmark::DoNotOptimize(fd);
    ::close(fd);
  }
}

// ringo::sys::eventfd adds EFD_CLOEXEC to its EFD_NONBLOCK default: the same
// flags as the bare peer.
void ringo_eventfd_loop(benchmark::State& state) {
  for (auto _ : state) {
    auto fd = sys::eventfd();
    if (!fd.ok()) {
      state.SkipWithError("ringo::sys::eventfd failed");
      break;
    }
    benchmark::DoNotOptimize(fd->get());
  }  // ~Result<Fd> -> ~Fd: fd_registry::on_close, then close(2)
}

void BM_RingoEventfd(benchmark::State& state) {
  reg::set_capture_stacks(false);
  ringo_eventfd_loop(state);
}

void BM_RingoEventfdStacks(benchmark::State& state) {
  reg::set_capture_stacks(true);
  ringo_eventfd_loop(state);
  reg::set_capture_stacks(false);
}

// One registration and unregistration of `fd` per iteration, no syscall.
void registry_loop(benchmark::State& state, int fd) {
  for (auto _ : state) {
    const sys::OwnerTag tag = reg::on_create(fd, sys::FdKind::eventfd, RINGO_HERE);
    benchmark::DoNotOptimize(tag);
    if (!reg::on_close(fd, tag, RINGO_HERE)) {
      state.SkipWithError("fd_registry::on_close refused its own tag");
      break;
    }
  }
}

void BM_RegistryOnly(benchmark::State& state) {
  // A real descriptor, created once and closed raw: the registry never holds
  // it outside the loop, which leaves it unregistered as it found it.
  const int fd = ::eventfd(0, kBareFlags);
  if (fd < 0) {
    state.SkipWithError("eventfd failed");
    return;
  }
  registry_loop(state, fd);
  ::close(fd);
}

// Each thread duplicates an eventfd to the lowest free number at or above
// 512 + stride * thread index: stride 1 gives the neighbours the kernel would
// hand out, stride 64 puts the two records on separate cache lines.
void BM_RegistryOnlyPair(benchmark::State& state) {
  const int stride = static_cast<int>(state.range(0));
  const int base = ::eventfd(0, kBareFlags);
  const int fd = base < 0 ? -1 : ::fcntl(base, F_DUPFD_CLOEXEC, 512 + stride * state.thread_index());
  if (base >= 0) ::close(base);
  if (fd < 0) {
    state.SkipWithError("eventfd or F_DUPFD failed");
    return;
  }
  registry_loop(state, fd);
  ::close(fd);
}

// Runs `loop` with eventfd(2) and close(2) faked: both return at once, the
// "new" descriptor always being one real eventfd held open meanwhile.
template <void (*loop)(benchmark::State&)>
void with_fake_syscalls(benchmark::State& state) {
  const int fd = ::eventfd(0, kBareFlags);
  if (fd < 0) {
    state.SkipWithError("eventfd failed");
    return;
  }
  g_fake_fd.store(fd, std::memory_order_relaxed);
  loop(state);
  g_fake_fd.store(-1, std::memory_order_relaxed);
  ::close(fd);
}

void BM_FakeSyscallBare(benchmark::State& state) { with_fake_syscalls<BM_BareEventfdClose>(state); }
void BM_FakeSyscallRingo(benchmark::State& state) { with_fake_syscalls<BM_RingoEventfd>(state); }

// Five repetitions, reported as mean/median/stddev/cv: the median is the
// figure; the spread shows how noisy the machine was.
void repeat(benchmark::internal::Benchmark* b) { b->Repetitions(5)->ReportAggregatesOnly(true); }

BENCHMARK(BM_BareEventfdClose)->Apply(repeat);
BENCHMARK(BM_RingoEventfd)->Apply(repeat);
BENCHMARK(BM_RingoEventfdStacks)->Apply(repeat);
BENCHMARK(BM_RegistryOnly)->Apply(repeat);
BENCHMARK(BM_FakeSyscallBare)->Apply(repeat);
BENCHMARK(BM_FakeSyscallRingo)->Apply(repeat);
BENCHMARK(BM_BareEventfdClose)->Threads(2)->Apply(repeat);
BENCHMARK(BM_RingoEventfd)->Threads(2)->Apply(repeat);
BENCHMARK(BM_RegistryOnlyPair)->ArgName("stride")->Arg(1)->Arg(64)->Threads(2)->Apply(repeat);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Says which build produced the numbers, in the console and JSON context.
  benchmark::AddCustomContext("fd_registry", reg::kEnabled ? "compiled in" : "compiled out");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
