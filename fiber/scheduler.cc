// See scheduler.h for the states, invariants and rejected designs.
#include "fiber/scheduler.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "reactor/clock.h"
#include "syscall/log.h"

namespace ringo::fiber {
namespace {

std::atomic<std::uint64_t> g_next_id{1};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ringo: broken invariant: %s\n", what);
  std::abort();
}

}  // namespace

const char* to_string(FiberState state) {
  switch (state) {
    case FiberState::runnable: return "runnable";
    case FiberState::running: return "running";
    case FiberState::parked: return "parked";
    case FiberState::done: return "done";
  }
  return "?";
}

std::uint64_t next_fiber_id() { return g_next_id.fetch_add(1, std::memory_order_relaxed); }

Fiber::Fiber(Init init)
    : id_(init.id),
      name_(std::move(init.name)),
      site_(init.site),
      scheduler_(init.scheduler),
      loop_(&init.scheduler->loop()),
      since_ns_(reactor::now_ns()),
      context_(std::move(init.stack), &Fiber::entry, this, name_) {}

void Fiber::entry(void* self, void*) {
  auto* f = static_cast<Fiber*>(self);
  f->body();
  f->state_ = FiberState::done;
}

Scheduler& Scheduler::of(reactor::Loop& loop) {
  if (auto* s = static_cast<Scheduler*>(loop.attachment())) return *s;
  auto owned = std::make_unique<Scheduler>(loop);
  Scheduler& s = *owned;
  loop.set_attachment(std::move(owned));
  return s;
}

Scheduler* Scheduler::current() {
  reactor::Loop* loop = reactor::Loop::current();
  return loop != nullptr ? &of(*loop) : nullptr;
}

Scheduler& Scheduler::current_or_die(const char* what) {
  Scheduler* s = current();
  if (s == nullptr) {
    std::fprintf(stderr, "ringo: broken invariant: %s needs a running loop on this thread\n", what);
    std::abort();
  }
  return *s;
}

Scheduler::Scheduler(reactor::Loop& loop) : loop_(loop) {}

Scheduler::~Scheduler() {
  std::size_t started = 0;
  for (const auto& [id, f] : live_) started += f->context_.started() ? 1 : 0;
  if (started > 0) {
    std::fprintf(stderr, "%s", dump().c_str());
    std::fprintf(stderr,
                 "ringo: broken invariant: loop L%d destroyed with %zu started, unfinished fibers "
                 "(a loop must outlive its fibers: their frames could never unwind)\n",
                 loop_.index(), started);
    std::abort();
  }
  live_.clear();  // never ran: their joiners get an exception (fiber.h)
}

Fiber::Init Scheduler::prepare(std::uint64_t id, std::string name, std::size_t stack_size, sys::Site site) {
  StackPool& pool = StackPool::this_thread();
  sys::Result<Stack> stack = stack_size == 0 || stack_size == pool.stack_size() ? pool.acquire()
                                                                                : Stack::map(stack_size);
  if (!stack.ok()) {
    throw std::system_error(stack.error().code(), "fiber stack: " + stack.error().message());
  }
  if (name.empty()) name = fmt::format("fiber-{}", id);
  return Fiber::Init{id, std::move(name), std::move(*stack), site, this};
}

Fiber& Scheduler::start(std::unique_ptr<Fiber> fiber) {
  Fiber& f = *fiber;
  f.run = &Scheduler::run;
  live_.emplace(f.id_, std::move(fiber));
  ++stats_.spawned;
  f.state_ = FiberState::runnable;
  f.since_ns_ = reactor::now_ns();
  loop_.schedule(f);
  return f;
}

void Scheduler::run(reactor::Runnable& r) {
  auto& f = static_cast<Fiber&>(r);
  f.scheduler_->resume(f);
}

void Scheduler::resume(Fiber& f) {
  const std::int64_t t0 = reactor::now_ns();
  f.state_ = FiberState::running;
  f.reason_ = nullptr;
  f.since_ns_ = t0;
  ++f.switches_;
  ++stats_.switches;
  running_ = &f;
  f.context_.resume();  // until it parks, yields or finishes; its body throws nothing
  running_ = nullptr;
  const std::int64_t t1 = reactor::now_ns();
  f.since_ns_ = t1;
  if (t1 - t0 > long_run_ns_) note_long_run(f, t1 - t0);
  if (f.context_.finished()) retire(f);
}

void Scheduler::retire(Fiber& f) {
  Stack stack = f.context_.take_stack();
  ++stats_.finished;
  live_.erase(f.id_);  // destroys f
  StackPool::this_thread().release(std::move(stack));  // a stack of another size is unmapped
}

void Scheduler::note_long_run(const Fiber& f, std::int64_t ran_ns) {
  ++stats_.long_runs;
  sys::log(sys::LogLevel::debug, "fiber {} '{}' ran {:.1f} ms without parking (threshold {:.1f} ms)", f.id_,
           f.name_, static_cast<double>(ran_ns) / 1e6, static_cast<double>(long_run_ns_) / 1e6);
}

Fiber& Scheduler::running_or_die(const char* what) const {
  if (running_ == nullptr) {
    std::fprintf(stderr, "ringo: broken invariant: %s called outside a fiber\n", what);
    std::abort();
  }
  return *running_;
}

void Scheduler::park(const char* reason) {
  Fiber& f = running_or_die("park()");
  if (reason == nullptr) die("park() needs a reason");
  f.state_ = FiberState::parked;
  f.reason_ = reason;
  f.context_.suspend();
}

void Scheduler::yield() {
  Fiber& f = running_or_die("yield()");
  f.state_ = FiberState::runnable;
  loop_.schedule(f);
  f.context_.suspend();
}

void Scheduler::unpark(Fiber& f) {
  if (f.scheduler_ != this) die("Scheduler::unpark() of another loop's fiber (post to its loop)");
  if (f.state_ != FiberState::parked) return;
  f.state_ = FiberState::runnable;
  f.since_ns_ = reactor::now_ns();
  loop_.schedule(f);
}

void Scheduler::unpark(std::uint64_t id) {
  auto it = live_.find(id);
  if (it != live_.end()) unpark(*it->second);
}

std::string Scheduler::dump() const {
  std::vector<const Fiber*> fibers;
  fibers.reserve(live_.size());
  for (const auto& [id, f] : live_) fibers.push_back(f.get());
  std::sort(fibers.begin(), fibers.end(), [](const Fiber* a, const Fiber* b) { return a->id_ < b->id_; });
  const std::int64_t now = reactor::now_ns();
  std::string out = fmt::format("loop L{}: {} fibers\n", loop_.index(), fibers.size());
  for (const Fiber* f : fibers) {
    const std::string state = f->state_ == FiberState::parked
                                  ? fmt::format("parked: {}", f->reason_)
                                  : std::string(to_string(f->state_));
    fmt::format_to(std::back_inserter(out),
                   "fiber {} \"{}\" [{}, {:.3f} ms] L{}, {} switches, spawned at {}:{} ({})\n", f->id_,
                   f->name_, state, static_cast<double>(now - f->since_ns_) / 1e6, loop_.index(),
                   f->switches_, f->site_.file, f->site_.line, f->site_.function);
  }
  return out;
}

Scheduler::Stats Scheduler::stats() const {
  Stats s = stats_;
  s.live = live_.size();
  return s;
}

}  // namespace ringo::fiber
