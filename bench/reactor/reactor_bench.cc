// Reactor benchmarks, io_uring and epoll side by side in one run (the same
// binary, the same machine state): cross-loop post round trip (median, p99),
// timer insert+cancel, no-op completions per second, and an echo round trip
// over loopback TCP. Figures go to docs/BENCHMARKS.md; bench/run_reactor_bench.sh
// runs this with the pinning it needs.
//
// Peers: the two backends against each other (the point of the fallback is
// that it costs little), and the timer heap against Go's AfterFunc+Stop
// figure quoted in the fibers issue.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "reactor/clock.h"
#include "reactor/loop.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "syscall/io.h"
#include "syscall/socket.h"
#include "syscall/sockopt.h"

namespace ringo::reactor {
namespace {

BackendKind kind_of(const benchmark::State& state) {
  return state.range(0) == 0 ? BackendKind::io_uring : BackendKind::epoll;
}

// Argument 0 picks the backend (0 = io_uring, 1 = epoll); the label names it.
void name_backend(benchmark::internal::Benchmark* b) {
  b->ArgName("backend")->Arg(0)->Arg(1);
}

// Backend x idle spin (0 or 50 us): a sleeping loop pays a cross-core wake-up
// (an eventfd write and a scheduler hop, tens of microseconds on these VMs);
// a spinning loop trades CPU for that latency.
void name_backend_spin(benchmark::internal::Benchmark* b) {
  b->ArgNames({"backend", "spin_us"});
  for (int spin : {0, 50}) {
    for (int backend : {0, 1}) b->Args({backend, spin});
  }
}

void set_label(benchmark::State& state) { state.SetLabel(to_string(kind_of(state))); }

double percentile(std::vector<std::int64_t>& v, double p) {
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return static_cast<double>(v[i]);
}

// Two loops of the benchmark's backend and idle spin (one per CPU where there are two).
sys::Result<std::unique_ptr<LoopGroup>> start_two_loops(const benchmark::State& state) {
  LoopGroup::Options options;
  options.count = 2;
  options.loop.backend = kind_of(state);
  options.loop.idle_spin = std::chrono::microseconds(state.range(1));
  return LoopGroup::start(options);
}

// Loop 0 posts to loop 1, which posts back: one round trip, timed on loop 0.
void BM_CrossLoopPostRoundTrip(benchmark::State& state) {
  auto group = start_two_loops(state);
  if (!group) return state.SkipWithError(group.error().message().c_str());
  Loop& a = (*group)->loop(0);
  Loop& b = (*group)->loop((*group)->size() > 1 ? 1 : 0);
  std::vector<std::int64_t> samples;
  for (auto _ : state) {
    std::promise<std::int64_t> done;
    const std::int64_t start = now_ns();
    a.post([&] { b.post([&] { a.post([&] { done.set_value(now_ns() - start); }); }); });
    samples.push_back(done.get_future().get());
  }
  state.counters["p50_ns"] = percentile(samples, 0.50);
  state.counters["p99_ns"] = percentile(samples, 0.99);
  set_label(state);
}
BENCHMARK(BM_CrossLoopPostRoundTrip)->Apply(name_backend_spin)->Iterations(20000)->UseRealTime();

// The same round trip measured purely between the two loops (no benchmark
// thread in the path): loop 0 pings loop 1 N times back to back.
void BM_CrossLoopPingPong(benchmark::State& state) {
  auto group = start_two_loops(state);
  if (!group) return state.SkipWithError(group.error().message().c_str());
  Loop& a = (*group)->loop(0);
  Loop& b = (*group)->loop((*group)->size() > 1 ? 1 : 0);
  constexpr int kRounds = 10000;
  for (auto _ : state) {
    std::promise<void> done;
    std::vector<std::int64_t> samples;
    samples.reserve(kRounds);
    std::function<void(std::int64_t)> ping = [&](std::int64_t sent) {
      b.post([&, sent] {
        a.post([&, sent] {
          samples.push_back(now_ns() - sent);
          if (samples.size() == kRounds) return done.set_value();
          ping(now_ns());
        });
      });
    };
    a.post([&] { ping(now_ns()); });
    done.get_future().get();
    state.counters["p50_ns"] = percentile(samples, 0.50);
    state.counters["p99_ns"] = percentile(samples, 0.99);
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
  set_label(state);
}
BENCHMARK(BM_CrossLoopPingPong)->Apply(name_backend_spin)->Iterations(5)->UseRealTime();

void BM_TimerInsertCancel(benchmark::State& state) {
  TimerHeap heap;
  std::vector<Timer> background(static_cast<std::size_t>(state.range(0)));
  std::int64_t d = 0;
  for (Timer& t : background) {
    t.deadline_ns = (d += 7919) % 1'000'000'000;
    heap.push(t);
  }
  Timer t;
  std::int64_t deadline = 0;
  for (auto _ : state) {
    t.deadline_ns = (deadline += 104729) % 1'000'000'000;
    heap.push(t);
    benchmark::DoNotOptimize(heap.top());
    heap.remove(t);
  }
  for (Timer& b : background) heap.remove(b);
}
BENCHMARK(BM_TimerInsertCancel)->ArgName("others")->Arg(0)->Arg(1000)->Arg(100000);

// Batches of 64 no-ops through the backend: the per-completion floor.
void BM_NopCompletions(benchmark::State& state) {
  Loop::Options options;
  options.backend = kind_of(state);
  auto loop = Loop::create(options);
  if (!loop) return state.SkipWithError(loop.error().message().c_str());
  constexpr int kBatch = 64;
  std::vector<Operation> ops(kBatch);
  int completed = 0;
  for (Operation& op : ops) {
    prepare_nop(op);
    op.user = &completed;
    op.on_complete = [](Operation& o, Completion&) { ++*static_cast<int*>(o.user); };
  }
  for (auto _ : state) {
    completed = 0;
    for (Operation& op : ops) (*loop)->submit(op);
    while (completed < kBatch) (*loop)->run_once(std::chrono::milliseconds(100));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  set_label(state);
}
BENCHMARK(BM_NopCompletions)->Apply(name_backend);

// An echo server made of operations on one loop thread (pinned to the last
// CPU); the benchmark thread is a blocking client on the first CPU.
struct EchoConnection {
  Loop* loop;
  sys::Fd fd;
  Operation op;
  char buf[256];
  std::promise<void> finished;  // set once the client's close has been seen
  void start_recv() {
    prepare_recv(op, fd.get(), buf, sizeof(buf));
    op.user = this;
    op.on_complete = [](Operation& o, Completion& c) {
      auto* self = static_cast<EchoConnection*>(o.user);
      if (c.result <= 0) {
        self->fd.reset();
        self->finished.set_value();
        return;
      }
      prepare_send(o, self->fd.get(), self->buf, static_cast<std::size_t>(c.result));
      o.on_complete = [](Operation& o2, Completion& c2) {
        if (c2.result > 0) static_cast<EchoConnection*>(o2.user)->start_recv();
      };
      self->loop->submit(o);
    };
    loop->submit(op);
  }
};

void BM_EchoRoundTrip(benchmark::State& state) {
  auto cpus = sys::affinity_cpus();
  LoopGroup::Options options;
  options.cpus = {cpus->back()};
  options.loop.backend = kind_of(state);
  // spin_us > 0: the server loop spins before sleeping and the client polls
  // with MSG_DONTWAIT, so neither side pays a scheduler wake-up and the
  // figure is the two backends' own path.
  const bool spin = state.range(1) > 0;
  options.loop.idle_spin = std::chrono::microseconds(state.range(1));
  auto group = LoopGroup::start(options);
  if (!group) return state.SkipWithError(group.error().message().c_str());
  (void)sys::pin_to_cpu(cpus->front());
  auto listener = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  (void)sys::set_option(listener->get(), sys::opt::reuse_addr, true);
  (void)sys::bind(listener->get(), sys::SockAddr::ipv4_loopback(0));
  (void)sys::listen(*listener, 16);
  auto addr = sys::getsockname(listener->get());
  Loop& loop = (*group)->loop(0);
  EchoConnection conn{&loop, {}, {}, {}, {}};
  Operation accept_op;
  prepare_accept(accept_op, listener->get());
  loop.post([&] {
    accept_op.user = &conn;
    accept_op.on_complete = [](Operation& o, Completion& c) {
      auto* self = static_cast<EchoConnection*>(o.user);
      self->fd = std::move(c.fd);
      (void)sys::set_option(self->fd.get(), sys::opt::tcp_nodelay, true);
      self->start_recv();
    };
    loop.submit(accept_op);
  });
  auto client = sys::socket(AF_INET, SOCK_STREAM);
  (void)sys::connect(client->get(), *addr);
  (void)sys::set_option(client->get(), sys::opt::tcp_nodelay, true);
  char msg[64] = {};
  char reply[64];
  std::vector<std::int64_t> samples;
  for (auto _ : state) {
    const std::int64_t start = now_ns();
    (void)sys::write(client->get(), std::as_bytes(std::span(msg)));
    std::size_t got = 0;
    while (got < sizeof(reply)) {
      const ssize_t n = ::recv(client->get(), reply + got, sizeof(reply) - got, spin ? MSG_DONTWAIT : 0);
      if (n < 0 && errno == EAGAIN) continue;
      if (n <= 0) return state.SkipWithError("echo connection failed");
      got += static_cast<std::size_t>(n);
    }
    samples.push_back(now_ns() - start);
  }
  client->reset();  // the server's recv sees end of stream and closes its side
  conn.finished.get_future().get();
  (*group)->stop();
  (void)sys::set_affinity(*cpus);
  state.counters["p50_ns"] = percentile(samples, 0.50);
  state.counters["p99_ns"] = percentile(samples, 0.99);
  set_label(state);
}
BENCHMARK(BM_EchoRoundTrip)->Apply(name_backend_spin)->Iterations(50000)->UseRealTime();

}  // namespace
}  // namespace ringo::reactor

BENCHMARK_MAIN();
