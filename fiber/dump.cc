// See dump.h for how the dump is gathered and why.
#include "fiber/dump.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>
#include <system_error>

#include <fmt/format.h>

#include "fiber/sync.h"
#include "reactor/loop.h"
#include "syscall/events.h"
#include "syscall/io.h"

namespace ringo::fiber {
namespace {

// Every live scheduler; the lock is held while posting to one (dump.h).
struct Registry {
  std::mutex mu;
  std::vector<Scheduler*> schedulers;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: schedulers may outlive static destruction order
  return *r;
}

// What the loops' answers are gathered into; shared with the posted tasks,
// which may answer after the caller stopped waiting.
struct Gather {
  explicit Gather(std::int64_t n) : latch(n) {}
  std::mutex mu;
  std::vector<LoopDump> loops;
  Latch latch;
};

std::string format_line(const FiberInfo& f) {
  const std::string state =
      f.state == FiberState::parked ? fmt::format("parked: {}", f.reason) : std::string(to_string(f.state));
  return fmt::format("fiber {} \"{}\" [{}, {:.3f} ms] L{}, cpu {:.3f} ms, {} switches, spawned at {}:{} ({})\n",
                     f.id, f.name, state, static_cast<double>(f.in_state_ns) / 1e6, f.loop,
                     static_cast<double>(f.cpu_ns) / 1e6, f.switches, f.site.file, f.site.line, f.site.function);
}

std::atomic<int> g_sigquit_fd{-1};
std::atomic<int> g_dumps{0};
struct sigaction g_previous_action {};

void on_sigquit(int) {
  const int saved = errno;
  const int fd = g_sigquit_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const char q = 'q';
    [[maybe_unused]] ssize_t n = ::write(fd, &q, 1);  // a full pipe: a dump is pending anyway
  }
  errno = saved;
}

}  // namespace

namespace detail {

void register_scheduler(Scheduler* s) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.schedulers.push_back(s);
}

void unregister_scheduler(Scheduler* s) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::erase(r.schedulers, s);
}

}  // namespace detail

std::vector<LoopDump> dump_all_loops(std::chrono::milliseconds timeout) {
  Scheduler* mine = Scheduler::current();
  std::vector<LoopDump> out;
  std::shared_ptr<Gather> gather;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    const auto others = static_cast<std::int64_t>(r.schedulers.size()) - (mine != nullptr ? 1 : 0);
    gather = std::make_shared<Gather>(std::max<std::int64_t>(others, 0));
    for (Scheduler* s : r.schedulers) {
      if (s == mine) continue;
      out.push_back(LoopDump{s->loop().index(), false, {}});
      s->loop().post([s, gather, slot = out.size() - 1] {
        std::vector<FiberInfo> fibers = s->snapshot();
        {
          std::lock_guard g(gather->mu);
          if (gather->loops.size() <= slot) gather->loops.resize(slot + 1);
          gather->loops[slot] = LoopDump{s->loop().index(), true, std::move(fibers)};
        }
        gather->latch.count_down();
      });
    }
  }
  (void)gather->latch.wait(CancelToken().with_timeout(timeout));  // a timeout leaves the silent ones unanswered
  {
    std::lock_guard g(gather->mu);
    for (std::size_t i = 0; i < gather->loops.size() && i < out.size(); ++i) {
      if (gather->loops[i].answered) out[i] = std::move(gather->loops[i]);
    }
  }
  if (mine != nullptr) out.push_back(LoopDump{mine->loop().index(), true, mine->snapshot()});
  std::sort(out.begin(), out.end(), [](const LoopDump& a, const LoopDump& b) { return a.loop < b.loop; });
  return out;
}

std::string format_dump(const std::vector<LoopDump>& loops) {
  std::string out;
  for (const LoopDump& l : loops) {
    if (!l.answered) {
      fmt::format_to(std::back_inserter(out), "loop L{}: did not answer (busy: a fiber running without parking?)\n",
                     l.loop);
      continue;
    }
    fmt::format_to(std::back_inserter(out), "loop L{}: {} fibers\n", l.loop, l.fibers.size());
    for (const FiberInfo& f : l.fibers) out += format_line(f);
  }
  return out;
}

SigquitDump::SigquitDump() {
  sys::Result<sys::Pipe> p = sys::pipe2(0);
  if (!p.ok()) throw std::system_error(p.error().code(), "SigquitDump: " + p.error().message());
  read_end_ = std::move(p->read);
  write_end_ = std::move(p->write);
  int expected = -1;
  if (!g_sigquit_fd.compare_exchange_strong(expected, write_end_.get())) {
    throw std::logic_error("SigquitDump: one at a time per process");
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    g_sigquit_fd.store(-1);
    throw;
  }
  struct sigaction sa {};
  sa.sa_handler = &on_sigquit;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(SIGQUIT, &sa, &g_previous_action) != 0) {
    const int err = errno;
    stop_thread();
    g_sigquit_fd.store(-1);
    throw std::system_error(err, std::generic_category(), "SigquitDump: sigaction(SIGQUIT)");
  }
}

SigquitDump::~SigquitDump() {
  // The previous disposition first, then no fd for a handler to write to. A
  // handler already running on another thread may still hold the fd: the pipe
  // stays open until the dumping thread has ended (the members close it).
  ::sigaction(SIGQUIT, &g_previous_action, nullptr);
  g_sigquit_fd.store(-1);
  stop_thread();
}

void SigquitDump::stop_thread() {
  const std::byte stop{'x'};
  (void)sys::write(write_end_.get(), std::span(&stop, 1));
  thread_.join();
}

int SigquitDump::dumps() const { return g_dumps.load(); }

void SigquitDump::run() {
  for (;;) {
    std::byte b{};
    sys::Result<std::size_t> n = sys::read(read_end_.get(), std::span(&b, 1));
    if (!n.ok() && n.error().code().value() == EINTR) continue;
    if (!n.ok() || *n == 0 || b == std::byte{'x'}) return;
    const std::string text = "ringo: SIGQUIT: fiber dump\n" + format_dump(dump_all_loops());
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
    g_dumps.fetch_add(1);
  }
}

}  // namespace ringo::fiber
