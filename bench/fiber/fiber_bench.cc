// Fiber benchmarks, the Ringo side of bench/run_fiber_bench.sh: the same
// workloads as bench/go/fiberbench/main.go (read its head comment for what
// each one measures and why it is built that way), one BENCH line each:
//
//   fiber_bench [--bench NAME|all] [--n N]
//   BENCH <name> ns_per_op=<float> cpu_ns_per_op=<float> [extra=value ...]
//
// cpu_ns_per_op is the process's user+sys time (getrusage) over ops, as on
// the Go side. Loop benchmarks run a tenth of their ops untimed first. Fibers
// run on one loop of the RINGO_BACKEND backend (default: auto), driven by the
// main thread; chan_pingpong_cross puts the two fibers on two loops (a
// LoopGroup pinned to CPUs 0 and 1). The Go mirror of each construction:
//   yield                 two fibers, this_fiber::yield() in a loop
//   spawn_join_one        go(empty) then join, one at a time
//   spawn_join_batch      100 go(wg.done), then wg.wait() (a WaitGroup, as in Go)
//   chan_pingpong_*       ping/pong over two unbuffered Channel<int> (cross:
//                         two loops, sleeping when idle or spinning 50 µs)
//   chan_buffered         producer -> consumer over Channel<int>(1024)
//   mutex_handoff         the two-mutex baton pass over fiber Mutexes
//   timer_insert_cancel*  a 1 h loop timer armed and cancelled (what every
//                         deadline wait does), 0 or 100,000 others pending
//   sleep_100k            100,000 fibers sleep_for(10 ms) once: lateness
//   rss_*_100k            resident bytes per parked fiber (idle, 8 KiB touched)
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "fiber/channel.h"
#include "fiber/fiber.h"
#include "fiber/sync.h"
#include "reactor/clock.h"
#include "reactor/loop.h"
#include "reactor/loop_group.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;

std::int64_t cpu_ns() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& t) { return std::int64_t{t.tv_sec} * 1'000'000'000 + std::int64_t{t.tv_usec} * 1000; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

struct Sample {
  std::int64_t wall_ns = 0;
  std::int64_t cpu_ns = 0;
};

template <class F>
Sample measure(F&& fn) {
  const std::int64_t w0 = reactor::now_ns(), c0 = cpu_ns();
  fn();
  return Sample{reactor::now_ns() - w0, cpu_ns() - c0};
}

void report(const std::string& name, std::int64_t ops, Sample s, const std::string& extras = {}) {
  std::printf("BENCH %s ns_per_op=%.2f cpu_ns_per_op=%.2f%s%s\n", name.c_str(),
              static_cast<double>(s.wall_ns) / static_cast<double>(ops),
              static_cast<double>(s.cpu_ns) / static_cast<double>(ops), extras.empty() ? "" : " ", extras.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "fiber_bench: %s: %lld ops in %.3f s (cpu %.3f s)\n", name.c_str(),
               static_cast<long long>(ops), static_cast<double>(s.wall_ns) / 1e9, static_cast<double>(s.cpu_ns) / 1e9);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fiber_bench: %s\n", what.c_str());
  std::exit(1);
}

// Runs `fn` as a fiber on a fresh loop driven by this thread.
template <class F>
void on_loop(F&& fn) {
  auto options = reactor::Loop::options_from_env();
  if (!options.ok()) fail(options.error().message());
  auto loop = reactor::Loop::create(*options);
  if (!loop.ok()) fail(loop.error().message());
  reactor::Loop* l = loop->get();
  auto h = go_on(*l, [&] {
    fn();
    l->stop();
  }, {.name = "bench"});
  l->run();
  h.join();
}

// A workload "do about n ops, return how many were done", timed after a
// tenth of n untimed.
using Workload = std::function<std::int64_t(std::int64_t n)>;

void timed_loop(const std::string& name, std::int64_t n, const Workload& w) {
  on_loop([&] {
    w(n / 10 + 2);
    std::int64_t ops = 0;
    const Sample s = measure([&] { ops = w(n); });
    report(name, ops, s);
  });
}

// ---- scheduler, spawn, channels, mutex

std::int64_t yield_pingpong(std::int64_t n) {
  const std::int64_t per = n / 2;
  auto body = [per] {
    for (std::int64_t i = 0; i < per; ++i) this_fiber::yield();
  };
  auto a = go(body), b = go(body);
  a.join();
  b.join();
  return 2 * per;
}

std::int64_t spawn_join_one(std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) go([] {}).join();
  return n;
}

constexpr int kSpawnBatch = 100;

// As on the Go side: one WaitGroup for the batch (the handles are dropped).
std::int64_t spawn_join_batch(std::int64_t n) {
  const std::int64_t batches = n / kSpawnBatch;
  WaitGroup wg;
  for (std::int64_t b = 0; b < batches; ++b) {
    wg.add(kSpawnBatch);
    for (int i = 0; i < kSpawnBatch; ++i) go([&wg] { wg.done(); });
    (void)wg.wait();
  }
  return batches * kSpawnBatch;
}

std::int64_t chan_pingpong(std::int64_t n) {
  const std::int64_t rounds = n / 2;
  Channel<int> ping, pong;
  auto echo = go([&] {
    for (int v : ping) (void)pong.send(v + 1);
  });
  int v = 0;
  for (std::int64_t i = 0; i < rounds; ++i) {
    (void)ping.send(v);
    v = **pong.recv();
  }
  ping.close();
  echo.join();
  return 2 * rounds;
}

std::int64_t chan_buffered(std::int64_t n) {
  Channel<std::int64_t> ch(1024);
  auto producer = go([&] {
    for (std::int64_t i = 0; i < n; ++i) (void)ch.send(i);
    ch.close();
  });
  std::int64_t sum = 0;
  for (std::int64_t v : ch) sum += v;
  producer.join();
  if (sum != n * (n - 1) / 2) fail("chan_buffered: lost items");
  return n;
}

std::int64_t mutex_handoff(std::int64_t n) {
  const std::int64_t per = n / 2;
  Mutex a, b;
  (void)b.lock();
  auto x = go([&] {
    for (std::int64_t i = 0; i < per; ++i) {
      (void)a.lock();
      b.unlock();
    }
  });
  auto y = go([&] {
    for (std::int64_t i = 0; i < per; ++i) {
      (void)b.lock();
      a.unlock();
    }
  });
  x.join();
  y.join();
  return 2 * per;
}

// Two loops on two CPUs, one fiber on each, ping-pong over unbuffered channels.
// Every message wakes the other loop: from sleep (an eventfd write and a
// wake-up in the kernel, tens of µs on a VM) unless the loops spin when idle
// (`spin`: Loop::Options::idle_spin = 50 µs, which burns the CPU the Go
// runtime's spinning Ps burn too: compare cpu_ns_per_op).
void chan_pingpong_cross(const std::string& name, std::int64_t n, bool spin) {
  reactor::LoopGroup::Options options;
  options.cpus = {0, 1};
  auto env = reactor::Loop::options_from_env();
  if (!env.ok()) fail(env.error().message());
  options.loop = *env;
  if (spin) options.loop.idle_spin = 50us;
  auto group = reactor::LoopGroup::start(options);
  if (!group.ok()) fail(group.error().message());
  auto run = [&](std::int64_t count) {
    const std::int64_t rounds = count / 2;
    Channel<int> ping, pong;
    auto echo = go_on((*group)->loop(1), [&] {
      for (int v : ping) (void)pong.send(v + 1);
    });
    auto main = go_on((*group)->loop(0), [&] {
      int v = 0;
      for (std::int64_t i = 0; i < rounds; ++i) {
        (void)ping.send(v);
        v = **pong.recv();
      }
      ping.close();
    });
    main.join();  // this thread is no loop's: it blocks
    echo.join();
    return 2 * rounds;
  };
  run(n / 10 + 2);
  std::int64_t ops = 0;
  const Sample s = measure([&] { ops = run(n); });
  (*group)->stop();
  report(name, ops, s);
}

// ---- timers

void timer_insert_cancel(const std::string& name, std::int64_t n, int pending) {
  on_loop([&] {
    reactor::Loop& loop = *reactor::Loop::current();
    std::vector<reactor::Timer> background(static_cast<std::size_t>(pending));
    const std::int64_t now = reactor::now_ns();
    for (int i = 0; i < pending; ++i) {
      const std::int64_t slot = (std::int64_t{i} * 7919) % pending;  // scrambled, as on the Go side
      background[static_cast<std::size_t>(i)].on_fire = [](reactor::Timer&) {};
      background[static_cast<std::size_t>(i)].deadline_ns =
          now + std::int64_t{30 * 60} * 1'000'000'000 + slot * (std::int64_t{3600} * 1'000'000'000 / pending);
      loop.add_timer(background[static_cast<std::size_t>(i)]);
    }
    auto work = [&](std::int64_t count) {
      reactor::Timer t;
      t.on_fire = [](reactor::Timer&) {};
      for (std::int64_t i = 0; i < count; ++i) {
        t.deadline_ns = reactor::now_ns() + std::int64_t{3600} * 1'000'000'000;
        loop.add_timer(t);
        loop.cancel_timer(t);
      }
      return count;
    };
    work(n / 10 + 2);
    const Sample s = measure([&] { work(n); });
    report(name, n, s);
    for (auto& t : background) loop.cancel_timer(t);
  });
}

// ---- sleep lateness

void sleep_100k(const std::string& name, std::int64_t n) {
  on_loop([&] {
    std::vector<std::int64_t> late(static_cast<std::size_t>(n));
    std::vector<JoinHandle<void>> handles(static_cast<std::size_t>(n));
    const Sample s = measure([&] {
      for (std::int64_t i = 0; i < n; ++i) {
        handles[static_cast<std::size_t>(i)] = go([&late, i] {
          const std::int64_t start = reactor::now_ns();
          this_fiber::sleep_for(10ms);
          late[static_cast<std::size_t>(i)] = reactor::now_ns() - start - 10'000'000;
        });
      }
      for (auto& h : handles) h.join();
    });
    std::sort(late.begin(), late.end());
    auto us = [&](double p) {
      auto rank = static_cast<std::int64_t>(p / 100 * static_cast<double>(n) + 0.999999) - 1;
      rank = std::clamp<std::int64_t>(rank, 0, n - 1);
      return static_cast<double>(late[static_cast<std::size_t>(rank)]) / 1e3;
    };
    report(name, n, s, fmt::format("p50_us={:.1f} p90_us={:.1f} p99_us={:.1f} max_us={:.1f}", us(50), us(90), us(99), us(100)));
  });
}

// ---- resident memory per parked fiber

std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) fail("cannot read /proc/self/statm");
  return resident * ::sysconf(_SC_PAGESIZE);
}

// Writes 8 KiB of its own frame, parks until released, reads it back.
[[gnu::noinline]] unsigned char touch_and_park(Event& release) {
  volatile unsigned char buf[8192];
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<unsigned char>(i);
  (void)release.wait();
  unsigned char sum = 0;
  for (std::size_t i = 0; i < sizeof buf; ++i) sum = static_cast<unsigned char>(sum + buf[i]);
  return sum;
}

void resident_per_fiber(const std::string& name, std::int64_t n, bool touch) {
  on_loop([&] {
    std::vector<JoinHandle<unsigned char>> handles(static_cast<std::size_t>(n));
    Event release;
    const std::int64_t before = resident_bytes();
    const Sample s = measure([&] {
      for (auto& h : handles) {
        h = go([&release, touch]() -> unsigned char {
          if (touch) return touch_and_park(release);
          (void)release.wait();
          return 0;
        });
      }
      this_fiber::yield();  // each runs until it parks
      this_fiber::yield();
    });
    const std::int64_t after = resident_bytes();
    release.set();
    for (auto& h : handles) h.join();
    report(name, n, s, fmt::format("bytes_per_fiber={:.0f}", static_cast<double>(after - before) / static_cast<double>(n)));
  });
}

struct Benchmark {
  const char* name;
  std::int64_t n;
  std::function<void(const std::string&, std::int64_t)> run;
};

std::vector<Benchmark> benchmarks() {
  auto loop_of = [](std::int64_t (*w)(std::int64_t)) {
    return [w](const std::string& name, std::int64_t n) { timed_loop(name, n, w); };
  };
  return {
      {"yield", 20'000'000, loop_of(yield_pingpong)},
      {"spawn_join_one", 2'000'000, loop_of(spawn_join_one)},
      {"spawn_join_batch", 3'000'000, loop_of(spawn_join_batch)},
      {"chan_pingpong_local", 5'000'000, loop_of(chan_pingpong)},
      {"chan_pingpong_cross", 20'000,
       [](const std::string& nm, std::int64_t n) { chan_pingpong_cross(nm, n, false); }},
      {"chan_pingpong_cross_spin", 2'000'000,
       [](const std::string& nm, std::int64_t n) { chan_pingpong_cross(nm, n, true); }},
      {"chan_buffered", 20'000'000, loop_of(chan_buffered)},
      {"mutex_handoff", 3'000'000, loop_of(mutex_handoff)},
      {"timer_insert_cancel", 5'000'000, [](const std::string& nm, std::int64_t n) { timer_insert_cancel(nm, n, 0); }},
      {"timer_insert_cancel_100k", 4'000'000,
       [](const std::string& nm, std::int64_t n) { timer_insert_cancel(nm, n, 100'000); }},
      {"sleep_100k", 100'000, sleep_100k},
      {"rss_idle_100k", 100'000, [](const std::string& nm, std::int64_t n) { resident_per_fiber(nm, n, false); }},
      {"rss_touched_100k", 100'000, [](const std::string& nm, std::int64_t n) { resident_per_fiber(nm, n, true); }},
  };
}

}  // namespace
}  // namespace ringo

int main(int argc, char** argv) {
  std::string which = "all";
  std::int64_t n = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--bench") == 0 && i + 1 < argc) {
      which = argv[++i];
    } else if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      n = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: fiber_bench [--bench NAME|all] [--n N]\n");
      return 2;
    }
  }
  bool found = false;
  for (const auto& b : ringo::benchmarks()) {
    if (which != "all" && which != b.name) continue;
    found = true;
    b.run(b.name, n > 0 ? n : b.n);
  }
  if (!found) {
    std::fprintf(stderr, "fiber_bench: unknown benchmark '%s'\n", which.c_str());
    return 2;
  }
  return 0;
}
