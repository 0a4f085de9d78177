// See scheduler.h for the states, the batches, invariants and rejected designs.
#include "fiber/scheduler.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "fiber/dump.h"
#include "fiber/internal/cycles.h"
#include "fiber/internal/invariant.h"
#include "reactor/clock.h"
#include "syscall/log.h"

namespace ringo::fiber {
namespace {

std::atomic<std::uint64_t> g_next_id{1};

using internal::die;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// The name the context keeps for overflow reports: the given one or
// "fiber-<id>" (std::to_chars: a spawn must not pay for a format string).
struct ContextName {
  char text[internal::Context::kNameCapacity];
  std::string_view view;
  ContextName(std::uint64_t id, const std::string& name) {
    if (!name.empty()) {
      view = name;
    } else {
      constexpr std::string_view prefix = "fiber-";
      std::memcpy(text, prefix.data(), prefix.size());
      char* end = std::to_chars(text + prefix.size(), text + sizeof text, id).ptr;
      view = std::string_view(text, static_cast<std::size_t>(end - text));
    }
  }
};

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

// ---- Fiber

Fiber::Fiber(FiberSpec spec, Stack stack, std::size_t top_reserved, Scheduler& scheduler, std::uint32_t slot)
    : id_(spec.id),
      name_(std::move(spec.name)),
      site_(spec.site),
      scheduler_(&scheduler),
      loop_(&scheduler.loop()),
      slot_(slot),
      token_(std::move(spec.token)),
      body_(stack.top() - top_reserved),  // the top of a stack is page-aligned
      context_(std::move(stack), &Fiber::entry, this, ContextName(id_, name_).view, top_reserved) {}

Fiber::~Fiber() {
  if (drop_body_ != nullptr) drop_body_(body_, *this);  // never ran: its joiner hears why
}

std::string Fiber::name() const { return name_.empty() ? fmt::format("fiber-{}", id_) : name_; }

std::int64_t Fiber::cpu_ns() const { return internal::cycles_to_ns(cpu_); }

void Fiber::entry(void* self, void*) {
  auto* f = static_cast<Fiber*>(self);
  f->drop_body_ = nullptr;  // from here on, run_body_ destroys it
  f->run_body_(f->body_);
  f->state_ = FiberState::done;
}

// ---- Scheduler

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

Scheduler::Scheduler(reactor::Loop& loop)
    : loop_(loop),
      long_run_cycles_(internal::ns_to_cycles(kDefaultLongRun.count())),
      batch_cycles_(internal::ns_to_cycles(std::chrono::nanoseconds(kBatchBudget).count())),
      trim_cycles_(internal::ns_to_cycles(std::chrono::nanoseconds(kTrimInterval).count())),
      last_trim_(internal::cycles()) {
  batch_.run = &Scheduler::run_batch;
  batch_.scheduler = this;
  detail::register_scheduler(this);
}

Scheduler::~Scheduler() {
  detail::unregister_scheduler(this);  // first: no dump may post to this loop from now on
  std::size_t started = 0;
  for (const auto& f : slots_) started += f && f->context_.started() ? 1 : 0;
  if (started > 0) {
    std::fprintf(stderr, "%s", dump().c_str());
    std::fprintf(stderr,
                 "ringo: broken invariant: loop L%d destroyed with %zu started, unfinished fibers "
                 "(a loop must outlive its fibers: their frames could never unwind)\n",
                 loop_.index(), started);
    std::abort();
  }
  // Never ran: dropping them tells their joiners why (fiber.h). The batch
  // Runnable may still be in the loop's ready list; the loop never runs it
  // again (it is being destroyed).
  slots_.clear();  // each body is destroyed before its stack is unmapped
}

Fiber& Scheduler::create(FiberSpec&& spec, std::size_t body_size, std::size_t body_align) {
  StackPool& pool = StackPool::this_thread();
  const std::size_t wanted = spec.stack_size;
  sys::Result<Stack> stack = wanted == 0 || wanted == pool.stack_size() ? pool.acquire() : Stack::map(wanted);
  if (!stack.ok()) {
    throw std::system_error(stack.error().code(), "fiber stack: " + stack.error().message());
  }
  const std::size_t reserved = round_up(body_size, std::max<std::size_t>(body_align, 16));
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[slot].reset(new Fiber(std::move(spec), std::move(*stack), reserved, *this, slot));
  ++live_;
  return *slots_[slot];
}

void Scheduler::discard(Fiber& f) {
  const std::uint32_t slot = f.slot_;
  f.drop_body_ = nullptr;  // its constructor threw: there is no body
  Stack stack = f.context_.take_stack();
  slots_[slot].reset();
  free_slots_.push_back(slot);
  --live_;
  StackPool::this_thread().release(std::move(stack));
}

void Scheduler::start(Fiber& f) {
  ++stats_.spawned;
  f.state_ = FiberState::runnable;
  enqueue(f, false);
}

void Scheduler::Queue::push(Fiber& f) {
  f.next_ready_ = nullptr;
  if (tail != nullptr) {
    tail->next_ready_ = &f;
  } else {
    head = &f;
  }
  tail = &f;
}

Fiber* Scheduler::Queue::pop() {
  Fiber* f = head;
  if (f != nullptr) {
    head = f->next_ready_;
    if (head == nullptr) tail = nullptr;
  }
  return f;
}

void Scheduler::enqueue(Fiber& f, bool woken) {
  (woken ? woken_ : ready_).push(f);
  if (!batch_queued_ && !in_batch_) {
    batch_queued_ = true;
    loop_.schedule(batch_);
  }
}

Fiber* Scheduler::next_to_run() {
  if (woken_.head != nullptr && (ready_.head == nullptr || woken_turn_)) {
    woken_turn_ = false;
    return woken_.pop();
  }
  woken_turn_ = true;
  return ready_.pop();
}

void Scheduler::run_batch(reactor::Runnable& r) { static_cast<BatchRunnable&>(r).scheduler->run_batch(); }

void Scheduler::run_batch() {
  batch_queued_ = false;
  in_batch_ = true;
  ++stats_.batches;
  const std::uint64_t start = internal::cycles();
  std::uint64_t t = start;
  Fiber* next = nullptr;
  for (int n = 0; n < kBatchMaxResumes && t - start < batch_cycles_ && (next = next_to_run()) != nullptr; ++n) {
    Fiber& f = *next;
    f.state_ = FiberState::running;
    f.reason_ = nullptr;
    ++f.switches_;
    ++stats_.switches;
    running_ = &f;
    f.context_.resume();  // until it parks, yields or finishes; its body throws nothing
    running_ = nullptr;
    const std::uint64_t now = internal::cycles();
    f.cpu_ += now - t;
    f.since_ = now;
    if (now - t > long_run_cycles_) [[unlikely]] note_long_run(f, now - t);
    t = now;
    if (f.context_.finished()) retire(f);
  }
  in_batch_ = false;
  if (t - last_trim_ > trim_cycles_) [[unlikely]] {  // off the spawn path: see stack.h
    last_trim_ = t;
    StackPool::this_thread().trim();
  }
  if (woken_.head != nullptr || ready_.head != nullptr) {  // the budget ran out: the rest after timers, inbox and I/O
    batch_queued_ = true;
    loop_.schedule(batch_);
  }
}

void Scheduler::retire(Fiber& f) {
  const std::uint32_t slot = f.slot_;
  Stack stack = f.context_.take_stack();
  ++stats_.finished;
  slots_[slot].reset();  // destroys f
  free_slots_.push_back(slot);
  --live_;
  StackPool::this_thread().release(std::move(stack));  // a stack of another size is unmapped
}

void Scheduler::note_long_run(const Fiber& f, std::uint64_t ran) {
  ++stats_.long_runs;
  sys::log(sys::LogLevel::debug, "fiber {} '{}' ran {:.1f} ms without parking (threshold {:.1f} ms)", f.id_,
           f.name(), static_cast<double>(internal::cycles_to_ns(ran)) / 1e6,
           static_cast<double>(internal::cycles_to_ns(long_run_cycles_)) / 1e6);
}

void Scheduler::set_long_run_threshold(std::chrono::nanoseconds t) {
  long_run_cycles_ = internal::ns_to_cycles(t.count());
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
  enqueue(f, false);
  f.context_.suspend();
}

void Scheduler::unpark(Fiber& f) {
  if (f.scheduler_ != this) die("Scheduler::unpark() of another loop's fiber (post to its loop)");
  if (f.state_ != FiberState::parked) return;
  f.state_ = FiberState::runnable;
  enqueue(f, true);
}

void Scheduler::unpark(const FiberRef& ref) {
  if (ref.slot < slots_.size() && slots_[ref.slot].get() == ref.fiber && ref.fiber->id_ == ref.id) {
    unpark(*ref.fiber);
  }
}

void Scheduler::unpark_id(std::uint64_t id) {
  for (const auto& f : slots_) {
    if (f && f->id_ == id) {
      unpark(*f);
      return;
    }
  }
}

FiberInfo Scheduler::info_of(const Fiber& f, std::uint64_t now, int loop_index) {
  return FiberInfo{f.id_,
                   f.name(),
                   loop_index,
                   f.state_,
                   f.reason_,
                   f.since_ == 0 ? 0 : internal::cycles_to_ns(now - std::min(now, f.since_)),
                   internal::cycles_to_ns(f.cpu_),
                   f.switches_,
                   f.site_};
}

std::vector<FiberInfo> Scheduler::snapshot() const {
  std::vector<FiberInfo> out;
  out.reserve(live_);
  const std::uint64_t now = internal::cycles();
  for (const auto& f : slots_) {
    if (f) out.push_back(info_of(*f, now, loop_.index()));
  }
  std::sort(out.begin(), out.end(), [](const FiberInfo& a, const FiberInfo& b) { return a.id < b.id; });
  return out;
}

std::string Scheduler::dump() const { return format_dump({LoopDump{loop_.index(), true, snapshot()}}); }

Scheduler::Stats Scheduler::stats() const {
  Stats s = stats_;
  s.live = live_;
  return s;
}

}  // namespace ringo::fiber
