// Fiber and Scheduler: stackful fibers run as ready work of their loop.
//
// A Fiber is a Context (fiber/internal/context.h) on a pooled Stack plus what
// the dump shows: id, name, owning loop, state, park reason, when it entered
// that state, switches, spawn site. It *is* a reactor::Runnable: making a
// fiber ready is Loop::schedule(fiber), and the loop's run_ready phase calls
// Scheduler::run, which resumes it until it parks, yields or finishes.
//
// One Scheduler per loop, kept in the loop's attachment slot (loop.h): created
// on first use on the loop's thread, destroyed with the loop. It owns every
// live fiber (by id, which also lets a wake-up that arrives late, through the
// inbox, find out that its fiber is gone).
//
// States: runnable (in the loop's ready list) -> running -> parked | runnable
// (yield) | done. Only the owning loop's thread reads or writes a fiber's
// mutable fields; another thread wakes a fiber by posting its id to the loop
// (ringo::unpark in fiber.h), never by touching it. id, name, loop and site
// never change, so any thread may read them while the fiber is alive.
//
// Invariants:
//  - A fiber is in the loop's ready list at most once: only the parked ->
//    runnable (unpark) and running -> runnable (yield) transitions schedule it.
//  - unpark() of a fiber that is not parked does nothing: there is no permit.
//    A fiber resumed from park() must re-check what it waits for (a stale
//    wake-up, e.g. one posted before an earlier wait ended, may resume it);
//    join and sleep do.
//  - Fibers are resumed from the loop's own stack (asymmetric resume/suspend):
//    a fiber never switches straight to another.
//  - A loop outlives its fibers: destroying a scheduler with a started,
//    unfinished fiber aborts with a dump (its frames could never unwind);
//    fibers that never ran are dropped, their joiners get an exception.
//  - A fiber that runs longer than long_run_threshold (10 ms) without parking
//    or yielding is counted (Stats::long_runs) and logged at debug level.
//
// Rejected alternatives:
//  - A run queue of the scheduler's own, drained by one Runnable: a second
//    queue to keep fair with the loop's, and a busy fiber set could starve
//    timers and I/O. As Runnables, fibers share run_ready's rule: what becomes
//    ready while the phase runs (a yield, an unpark) waits for the next turn,
//    after timers, the inbox and I/O had theirs.
//  - Symmetric switches (fiber to fiber via Context::switch_to): saves a switch
//    per hand-off, but the loop would lose its phase boundaries; a later
//    optimisation may chain the fibers of one run_ready batch.
//  - Waking a foreign fiber by taking a lock on it: the inbox is already the
//    one way into a loop, and a lock would be taken on every local wake-up too.
//  - A permit (Java's LockSupport.unpark): hides lost wake-ups instead of
//    making callers check their condition, and a stale permit wakes the next,
//    unrelated park.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "fiber/internal/context.h"
#include "fiber/stack.h"
#include "reactor/loop.h"
#include "syscall/site.h"

namespace ringo::fiber {

enum class FiberState : std::uint8_t { runnable, running, parked, done };
const char* to_string(FiberState state);

class Scheduler;

// A process-wide fiber id (never 0).
std::uint64_t next_fiber_id();

class Fiber : public reactor::Runnable {
 public:
  // What a fiber is made of, prepared by Scheduler::prepare.
  struct Init {
    std::uint64_t id = 0;
    std::string name;
    Stack stack;
    sys::Site site;
    Scheduler* scheduler = nullptr;
  };

  virtual ~Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Any thread, while the fiber lives.
  std::uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  reactor::Loop& loop() const { return *loop_; }
  const sys::Site& site() const { return site_; }

  // The owning loop's thread only.
  FiberState state() const { return state_; }
  const char* park_reason() const { return reason_; }  // null unless parked
  std::int64_t state_since_ns() const { return since_ns_; }  // reactor clock
  std::uint64_t switches() const { return switches_; }

 protected:
  explicit Fiber(Init init);
  // The fiber's work; must not throw (fiber.h catches and stores).
  virtual void body() noexcept = 0;

 private:
  friend class Scheduler;
  static void entry(void* self, void* first);

  const std::uint64_t id_;
  const std::string name_;
  const sys::Site site_;
  Scheduler* const scheduler_;
  reactor::Loop* const loop_;
  FiberState state_ = FiberState::runnable;
  const char* reason_ = nullptr;
  std::int64_t since_ns_ = 0;
  std::uint64_t switches_ = 0;
  internal::Context context_;
};

class Scheduler final : public reactor::LoopAttachment {
 public:
  struct Stats {
    std::uint64_t spawned = 0;
    std::uint64_t finished = 0;
    std::uint64_t switches = 0;   // resumes
    std::uint64_t long_runs = 0;  // resumes that ran past long_run_threshold
    std::size_t live = 0;
  };
  static constexpr std::chrono::nanoseconds kDefaultLongRun = std::chrono::milliseconds(10);

  // The loop's scheduler, created on first use. The loop's thread only.
  static Scheduler& of(reactor::Loop& loop);
  // The scheduler of the loop running on this thread, or null.
  static Scheduler* current();
  // As current(), but aborts naming `what` when this thread runs no loop.
  static Scheduler& current_or_die(const char* what);

  explicit Scheduler(reactor::Loop& loop);
  ~Scheduler() override;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // A stack (stack_size 0: the pool's default) and a name ("fiber-<id>" when
  // empty) for a new fiber. Throws std::system_error when no stack can be mapped.
  Fiber::Init prepare(std::uint64_t id, std::string name, std::size_t stack_size, sys::Site site);
  // Takes the fiber and makes it runnable.
  Fiber& start(std::unique_ptr<Fiber> fiber);

  // The fiber running on this loop now, or null (the loop's own stack).
  Fiber* running() const { return running_; }
  // The running fiber only: suspends it until unpark(); `reason` must be a
  // string that outlives the park (a literal).
  void park(const char* reason);
  // The running fiber only: runnable again at the next run_ready turn.
  void yield();
  // Makes a parked fiber of this loop runnable; otherwise nothing (see the
  // head comment). The loop's thread only.
  void unpark(Fiber& fiber);
  // As unpark, for a fiber known by id (nothing if it is gone).
  void unpark(std::uint64_t id);

  // Every live fiber, one line each (like a goroutine dump).
  std::string dump() const;
  Stats stats() const;
  std::size_t live() const { return live_.size(); }
  reactor::Loop& loop() const { return loop_; }
  void set_long_run_threshold(std::chrono::nanoseconds t) { long_run_ns_ = t.count(); }

 private:
  static void run(reactor::Runnable& r);
  void resume(Fiber& fiber);
  void retire(Fiber& fiber);
  void note_long_run(const Fiber& fiber, std::int64_t ran_ns);
  Fiber& running_or_die(const char* what) const;

  reactor::Loop& loop_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Fiber>> live_;
  Fiber* running_ = nullptr;
  std::int64_t long_run_ns_ = kDefaultLongRun.count();
  Stats stats_;
};

}  // namespace ringo::fiber
