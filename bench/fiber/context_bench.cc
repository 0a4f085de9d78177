// Context benchmarks: the cost of the bricks fibers are made of.
//   ContextRoundTrip      resume + suspend (two switches), thread stack <-> context
//   ContextSwitchTo       symmetric switch between two contexts (one switch per iteration)
//   CreateRunFinish       a context on a pooled stack: acquire, construct, run a
//                         trivial entry to its end, give the stack back
//   CreateRunFinishMmap   the same with a freshly mapped stack each time (what
//                         the pool saves)
//   StackPoolChurn        acquire + release alone
// Peers: Go 1.19's yield (63-88 ns per switch) and spawn+join (279-423 ns),
// quoted in the fibers issue; a fiber switch and spawn add a scheduler on top
// of these figures, which bound them from below.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "fiber/internal/context.h"
#include "fiber/stack.h"

namespace ringo::fiber::internal {
namespace {

Stack must(sys::Result<Stack> s) {
  if (!s.ok()) std::abort();
  return std::move(*s);
}

// Suspends until resumed with a non-null value. The context knows itself
// (arg), as a scheduler's fiber would, rather than asking Context::current():
// that load, just after the switch wrote it, would sit on the critical path.
void ping(void* arg, void* first) {
  Context& self = **static_cast<Context**>(arg);
  void* v = first;
  while (v == nullptr) v = self.suspend();
}

void BM_ContextRoundTrip(benchmark::State& state) {
  Context* self = nullptr;
  Context c(must(Stack::map()), ping, &self, "ping");
  self = &c;
  for (auto _ : state) benchmark::DoNotOptimize(c.resume());
  c.resume(&state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ContextRoundTrip);

// Two contexts hand the thread to each other; each switch_to is one switch.
struct PingPong {
  Context* peer[2] = {nullptr, nullptr};
  std::int64_t left = 0;
};

template <int Me>
void pong(void* arg, void*) {
  auto* p = static_cast<PingPong*>(arg);
  while (p->left > 0) {
    --p->left;
    p->peer[Me]->switch_to(*p->peer[1 - Me]);
  }
}

void BM_ContextSwitchTo(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    PingPong p;
    p.left = 1'000'000;
    Context a(must(Stack::map()), pong<0>, &p, "a");
    Context b(must(Stack::map()), pong<1>, &p, "b");
    p.peer[0] = &a;
    p.peer[1] = &b;
    state.ResumeTiming();
    a.resume();  // ends when one finishes: the other is suspended
    state.PauseTiming();
    (a.finished() ? b : a).resume();  // let the other see left == 0 and finish
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 1'000'000);
}
BENCHMARK(BM_ContextSwitchTo)->Unit(benchmark::kMillisecond);

void nothing(void* arg, void*) { ++*static_cast<std::int64_t*>(arg); }

void BM_CreateRunFinish(benchmark::State& state) {
  StackPool pool;
  std::int64_t runs = 0;
  for (auto _ : state) {
    Context c(must(pool.acquire()), nothing, &runs, "short");
    c.resume();
    pool.release(c.take_stack());
  }
  if (runs != state.iterations()) state.SkipWithError("not every context ran");
  state.SetItemsProcessed(state.iterations());
  state.counters["maps"] = static_cast<double>(pool.stats().maps);
}
BENCHMARK(BM_CreateRunFinish);

void BM_CreateRunFinishMmap(benchmark::State& state) {
  std::int64_t runs = 0;
  for (auto _ : state) {
    Context c(must(Stack::map()), nothing, &runs, "short");
    c.resume();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateRunFinishMmap);

void BM_StackPoolChurn(benchmark::State& state) {
  StackPool pool;
  for (auto _ : state) pool.release(must(pool.acquire()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StackPoolChurn);

}  // namespace
}  // namespace ringo::fiber::internal

BENCHMARK_MAIN();
