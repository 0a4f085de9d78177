// Fiber and Scheduler: stackful fibers, run in batches by their loop.
//
// A Fiber is a Context (fiber/internal/context.h) on a pooled Stack plus what
// the dump shows: id, name, owning loop, state, park reason, when it entered
// that state, CPU time, switches, spawn site. Its function object (the
// "body") is placed at the top of its own stack, so a spawn allocates only
// the fiber's control block.
//
// One Scheduler per loop, kept in the loop's attachment slot (loop.h): created
// on first use on the loop's thread, destroyed with the loop. It owns every
// live fiber, each in a slot of a table (a FiberRef names a fiber by loop,
// slot and id, so a wake-up that arrives late, through the inbox, finds out
// that its fiber is gone without a lookup structure on the hot path).
//
// Scheduling: the scheduler keeps its own FIFO of runnable fibers and runs it
// as one reactor::Runnable in the loop's run_ready phase: a *batch* resumes
// fibers one after another, including those that become runnable during the
// batch (a yield, an unpark), until the queue is empty or the batch has run
// for kBatchBudget (100 µs) or kBatchMaxResumes; the rest waits for the next
// loop turn, after timers, the inbox and I/O had theirs. One cycle-counter
// read (fiber/internal/cycles.h) per resume measures each fiber's CPU time
// and closes the previous one's. Fibers that were parked and are woken (a
// timer, a reply, a channel hand-off) wait in a FIFO of their own; new and
// yielding fibers in another; a batch alternates between the two while both
// hold fibers. So a burst of spawns (100,000 fibers, a first page fault each)
// does not hold up the fibers woken meanwhile behind all of it, and a stream
// of wake-ups cannot starve new fibers either (Go's runnext gives a woken
// goroutine a similar head start). Within each FIFO the order is strict.
//
// States: runnable (queued) -> running -> parked | runnable (yield) | done.
// Only the owning loop's thread reads or writes a fiber's mutable fields;
// another thread wakes a fiber by posting its FiberRef to the loop
// (ringo::unpark in fiber.h), never by touching it. id, name, loop and site
// never change, so any thread may read them while the fiber is alive.
//
// Invariants:
//  - A fiber is queued at most once: only the parked -> runnable (unpark) and
//    running -> runnable (yield) transitions queue it.
//  - unpark() of a fiber that is not parked does nothing: there is no permit.
//    A fiber resumed from park() must re-check what it waits for (a stale
//    wake-up, e.g. one posted before an earlier wait ended, may resume it);
//    every primitive of fiber/ does (fiber/waiter.h).
//  - Fibers are resumed from the loop's own stack (asymmetric resume/suspend):
//    a fiber never switches straight to another.
//  - A loop outlives its fibers: destroying a scheduler with a started,
//    unfinished fiber aborts with a dump (its frames could never unwind);
//    fibers that never ran are dropped, their joiners get an exception.
//  - A resume that runs longer than the long-run threshold (10 ms) without
//    parking or yielding is counted (Stats::long_runs) and logged at debug
//    level: a fiber that computes for long starves its loop.
//
// Rejected alternatives:
//  - Each fiber a Runnable of the loop's ready list (the first version): a
//    yield then cost a whole loop turn with a backend poll (~200-260 ns);
//    batching keeps the turn's guarantees (timers and I/O every 100 µs at
//    the latest) at a fraction of the cost.
//  - A clock read (clock_gettime) on both sides of every resume: ~25 ns each,
//    the price of a whole switch; the cycle counter read once per resume
//    gives CPU time and the long-run check for ~10 ns.
//  - An id -> fiber hash map for wake-ups by id: an insert and an erase per
//    spawn; the slot table costs a vector index.
//  - Symmetric switches (a parking fiber switches straight to the next one,
//    Context::switch_to, closing its own CPU accounting first): tried; a
//    yield went from 26-27 to 22-23 ns of CPU and a channel message from 63
//    to 58 ns, but with 100,000 fibers sleeping 10 ms after a spawn burst the
//    p50 lateness doubled (87 -> 170 ms) for a reason not yet understood
//    (the order of resumes should be the same). Left for later, with that
//    benchmark as its test.
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
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/cancel.h"
#include "fiber/internal/context.h"
#include "fiber/stack.h"
#include "reactor/loop.h"
#include "syscall/site.h"

namespace ringo::fiber {

enum class FiberState : std::uint8_t { runnable, running, parked, done };
const char* to_string(FiberState state);

class Scheduler;
class Fiber;

// A process-wide fiber id (never 0).
std::uint64_t next_fiber_id();

// Names a fiber from any thread; safe to keep after the fiber ended (a wake-up
// through it then finds nothing). Empty (fiber == null) for "no fiber".
struct FiberRef {
  reactor::Loop* loop = nullptr;
  Fiber* fiber = nullptr;  // compared, dereferenced only on `loop`'s thread while live
  std::uint64_t id = 0;
  std::uint32_t slot = 0;

  explicit operator bool() const { return fiber != nullptr; }
};

// What a new fiber is given (fiber.h fills it from GoOptions).
struct FiberSpec {
  std::uint64_t id = 0;
  std::string name;            // empty: shown as "fiber-<id>"
  std::size_t stack_size = 0;  // 0: the stack pool's default
  sys::Site site;
  CancelToken token;           // what this_fiber::token() returns in the fiber
};

// One fiber as the dump shows it (a copy: safe to keep and print anywhere).
struct FiberInfo {
  std::uint64_t id = 0;
  std::string name;
  int loop = 0;
  FiberState state = FiberState::runnable;
  const char* reason = nullptr;  // why it is parked (a literal), or null
  std::int64_t in_state_ns = 0;  // how long in this state (runnable: since it last ran; 0: never ran)
  std::int64_t cpu_ns = 0;       // time spent running
  std::uint64_t switches = 0;    // resumes
  sys::Site site;
};

class Fiber {
 public:
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  std::uint64_t id() const { return id_; }
  // The given name, or "fiber-<id>".
  std::string name() const;
  reactor::Loop& loop() const { return *loop_; }
  const sys::Site& site() const { return site_; }
  FiberState state() const { return state_; }
  const char* park_reason() const { return reason_; }  // null unless parked
  std::uint64_t switches() const { return switches_; }
  std::int64_t cpu_ns() const;
  FiberRef ref() const { return FiberRef{loop_, const_cast<Fiber*>(this), id_, slot_}; }
  // The fiber's cancellation (inherited by the fibers it spawns).
  const CancelToken& token() const { return token_; }
  void set_token(CancelToken token) { token_ = std::move(token); }

 private:
  friend class Scheduler;
  using BodyFn = void (*)(void* body) noexcept;
  using DropFn = void (*)(void* body, const Fiber& fiber) noexcept;
  Fiber(FiberSpec spec, Stack stack, std::size_t top_reserved, Scheduler& scheduler, std::uint32_t slot);
  static void entry(void* self, void* first);

  const std::uint64_t id_;
  const std::string name_;
  const sys::Site site_;
  Scheduler* const scheduler_;
  reactor::Loop* const loop_;
  const std::uint32_t slot_;
  FiberState state_ = FiberState::runnable;
  const char* reason_ = nullptr;
  std::uint64_t since_ = 0;  // cycles() when it entered its state (0: never ran)
  std::uint64_t cpu_ = 0;    // cycles spent running
  std::uint64_t switches_ = 0;
  Fiber* next_ready_ = nullptr;
  CancelToken token_;
  void* body_;                  // at the top of the stack
  BodyFn run_body_ = nullptr;   // runs the body and destroys it
  DropFn drop_body_ = nullptr;  // destroys a body that never ran
  internal::Context context_;
};

class Scheduler final : public reactor::LoopAttachment {
 public:
  struct Stats {
    std::uint64_t spawned = 0;
    std::uint64_t finished = 0;
    std::uint64_t switches = 0;   // resumes
    std::uint64_t batches = 0;    // run_ready turns that resumed fibers
    std::uint64_t long_runs = 0;  // resumes that ran past the long-run threshold
    std::size_t live = 0;
  };
  static constexpr std::chrono::nanoseconds kDefaultLongRun = std::chrono::milliseconds(10);
  static constexpr std::chrono::nanoseconds kBatchBudget = std::chrono::microseconds(100);
  static constexpr int kBatchMaxResumes = 4096;
  // How often a batch's end lets the thread's stack pool trim (stack.h).
  static constexpr std::chrono::nanoseconds kTrimInterval = std::chrono::milliseconds(100);
  // A body larger than this is kept on the heap instead of the stack's top.
  static constexpr std::size_t kMaxBodyOnStack = 2048;

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

  // Creates a fiber running `Body(args...).run()` and makes it runnable.
  // Body is constructed at the top of the fiber's stack (or on the heap when
  // larger than kMaxBodyOnStack); its run() must end by destroying it
  // (`this->~Body()`); if it never runs, its drop(fiber) is called instead,
  // which must destroy it too.
  // Throws std::system_error when no stack can be mapped, or what Body's
  // constructor throws (nothing is left behind either way).
  template <class Body, class... Args>
  Fiber& spawn(FiberSpec spec, Args&&... args);

  // The fiber running on this loop now, or null (the loop's own stack).
  Fiber* running() const { return running_; }
  // The running fiber only: suspends it until unpark(); `reason` must be a
  // string that outlives the park (a literal).
  void park(const char* reason);
  // The running fiber only: runnable again after the fibers queued before it.
  void yield();
  // Makes a parked fiber of this loop runnable; otherwise nothing (see the
  // head comment). The loop's thread only.
  void unpark(Fiber& fiber);
  // As unpark, for a fiber of this loop that may have ended.
  void unpark(const FiberRef& ref);
  // As unpark, by id: O(live fibers); for tests and tools (prefer FiberRef).
  void unpark_id(std::uint64_t id);

  // Every live fiber, by id.
  std::vector<FiberInfo> snapshot() const;
  // The snapshot as text, one line per fiber (like a goroutine dump).
  std::string dump() const;
  Stats stats() const;
  std::size_t live() const { return live_; }
  reactor::Loop& loop() const { return loop_; }
  void set_long_run_threshold(std::chrono::nanoseconds t);

 private:
  template <class Body>
  struct HeapBody;
  Fiber& create(FiberSpec&& spec, std::size_t body_size, std::size_t body_align);
  void discard(Fiber& fiber);
  void start(Fiber& fiber);
  void enqueue(Fiber& fiber, bool woken);
  static void run_batch(reactor::Runnable& r);
  void run_batch();
  void retire(Fiber& fiber);
  void note_long_run(const Fiber& fiber, std::uint64_t ran);
  Fiber& running_or_die(const char* what) const;
  static FiberInfo info_of(const Fiber& fiber, std::uint64_t now, int loop_index);

  reactor::Loop& loop_;
  std::vector<std::unique_ptr<Fiber>> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t live_ = 0;
  // Two FIFOs: woken fibers, and new or yielding ones; a batch alternates
  // between them while both hold fibers (see the head comment).
  struct Queue {
    Fiber* head = nullptr;
    Fiber* tail = nullptr;
    void push(Fiber& f);
    Fiber* pop();
  };
  Fiber* next_to_run();
  Queue woken_;
  Queue ready_;
  bool woken_turn_ = true;
  struct BatchRunnable : reactor::Runnable {
    Scheduler* scheduler = nullptr;
  };
  BatchRunnable batch_;  // run_batch, queued on the loop while fibers are ready
  bool batch_queued_ = false;
  bool in_batch_ = false;
  Fiber* running_ = nullptr;
  std::uint64_t long_run_cycles_;
  std::uint64_t batch_cycles_;
  std::uint64_t trim_cycles_;
  std::uint64_t last_trim_;
  Stats stats_;
};

// A body too large for the stack's top: a pointer to it there instead.
template <class Body>
struct Scheduler::HeapBody {
  template <class... Args>
  explicit HeapBody(Args&&... args) : body(new Body(std::forward<Args>(args)...)) {}
  ~HeapBody() { delete body; }
  void drop(const Fiber& fiber) noexcept {
    Body* b = std::exchange(body, nullptr);
    this->~HeapBody();
    b->drop(fiber);
    ::operator delete(b);
  }
  void run() noexcept {
    Body* b = std::exchange(body, nullptr);
    this->~HeapBody();
    b->run();  // destroys *b's contents as it ends...
    ::operator delete(b);  // ...and its storage goes here
  }
  Body* body;
};

template <class Body, class... Args>
Fiber& Scheduler::spawn(FiberSpec spec, Args&&... args) {
  if constexpr (sizeof(Body) > kMaxBodyOnStack) {
    return spawn<HeapBody<Body>>(std::move(spec), std::forward<Args>(args)...);
  } else {
    Fiber& f = create(std::move(spec), sizeof(Body), alignof(Body));
    try {
      f.body_ = ::new (f.body_) Body(std::forward<Args>(args)...);
    } catch (...) {
      discard(f);
      throw;
    }
    f.run_body_ = [](void* b) noexcept { static_cast<Body*>(b)->run(); };
    f.drop_body_ = [](void* b, const Fiber& fiber) noexcept { static_cast<Body*>(b)->drop(fiber); };
    start(f);
    return f;
  }
}

}  // namespace ringo::fiber
