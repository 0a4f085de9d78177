// Loop: one event loop, owned by one thread, driving one backend.
//
// One iteration (run_once) runs named phases in a fixed order, like libuv's
// uv_run:
//   1. run_ready      run the Runnables scheduled so far (fibers, later); work
//                     scheduled while this phase runs waits for the next turn,
//                     so I/O and timers are never starved by a busy fiber set
//   2. expire_timers  fire every timer whose deadline has passed, in deadline
//                     order (insertion order among equals)
//   3. drain_inbox    run the tasks other threads posted
//   4. submit + wait  hand queued operations to the kernel and wait for
//                     completions (one io_uring_enter on io_uring), for no
//                     longer than the next timer; not at all if ready work or
//                     posts are pending. With idle_spin > 0, poll without
//                     blocking for that long first (busy polling trades CPU for
//                     latency; off by default).
// Completions are delivered inside phase 4 by calling each operation's
// function; the loop itself knows nothing about fibers.
//
// Invariants:
//  - Everything but post() and stop() is called on the loop's thread, the
//    thread that created it (io_uring's SINGLE_ISSUER needs that too).
//  - Wake-ups are coalesced: a post wakes the backend only when the loop is
//    asleep or about to be (Dekker-style: the loop publishes `sleeping` then
//    re-checks the inbox; a poster publishes its task then reads `sleeping`,
//    both seq_cst, so at least one of them sees the other).
//  - A loop is stopped only from its own thread's turn: stop() posts.
//  - A post() that has begun is finished before the loop is destroyed: the
//    task it pushed may be what ends the loop's life (it wakes a fiber that
//    returns, and its owner destroys the loop), so ~Loop waits for posts in
//    progress. Starting a post() on a destroyed loop is still the caller's bug.
//
// The layer above keeps its per-loop state (the fiber scheduler) in the loop's
// one attachment slot: owned by the loop, destroyed on the loop's thread after
// the backend (whose destructor may still complete operations into it).
//
// Rejected: a loop that knows fibers (layering: fibers are one user of it);
// a thread_local scheduler keyed by Loop* (a loop destroyed and another made
// at the same address would inherit its state; several loops may share a
// thread in tests);
// a condition variable for sleeping (it cannot also wait for I/O); waking on
// every post (an eventfd write per token would cost a syscall per token).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "reactor/backend.h"
#include "reactor/inbox.h"
#include "reactor/timer_heap.h"
#include "syscall/result.h"

namespace ringo::reactor {

// Intrusive unit of ready work: run on the loop's thread in phase 1.
struct Runnable {
  void (*run)(Runnable& self) = nullptr;
  Runnable* next = nullptr;  // private to Loop
};

// Per-loop state of a layer above (the fiber scheduler), owned by the loop.
struct LoopAttachment {
  virtual ~LoopAttachment() = default;
};

struct LoopStats {
  std::uint64_t iterations = 0;
  std::uint64_t completions = 0;
  std::uint64_t sleeps = 0;     // waits that could block
  std::uint64_t wakeups = 0;    // backend wake() calls by posters
  std::uint64_t spin_hits = 0;  // idle spins that found work before blocking
  std::uint64_t timers_fired = 0;
  std::uint64_t tasks_run = 0;  // inbox tasks
};

class Loop {
 public:
  struct Options {
    BackendKind backend = BackendKind::automatic;
    BackendOptions backend_options;
    std::chrono::microseconds idle_spin{0};
    int index = 0;  // shown in log lines as L<index>
  };

  // Creates a loop owned by the calling thread.
  static sys::Result<std::unique_ptr<Loop>> create(const Options& options);
  // The options with `backend` taken from RINGO_BACKEND (an invalid value is an error).
  static sys::Result<Options> options_from_env();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs iterations until stop(). Loop::current() is this loop meanwhile.
  void run();
  // One iteration, waiting at most `max_wait` (negative: as long as nothing
  // happens). Returns false once stop() has been seen.
  bool run_once(std::chrono::nanoseconds max_wait = std::chrono::nanoseconds(-1));

  // Any thread. The loop finishes its current iteration and run() returns.
  // Like post(), the Loop must outlive the call: whoever destroys the loop
  // after run() returns must wait until stop() has returned (LoopGroup does).
  void stop();
  // Any thread. Runs `fn` on the loop's thread in phase 3.
  template <class F>
  void post(F&& fn) {
    post_task(new InboxFn<std::decay_t<F>>(std::forward<F>(fn)));
  }
  void post_task(InboxTask* task);

  // Loop thread only.
  void submit(Operation& op) { backend_->submit(op); }
  void cancel(Operation& op) { backend_->cancel(op); }
  // Returns a buffer taken from a recv_pooled completion (Completion::buffer).
  void release_buffer(const PooledBuffer& b) { backend_->release_buffer(b); }
  void add_timer(Timer& timer) { timers_.push(timer); }
  bool cancel_timer(Timer& timer) { return timers_.remove(timer); }
  void schedule(Runnable& r);
  // Loop thread only. The one attachment slot (see the head comment).
  LoopAttachment* attachment() const { return attachment_.get(); }
  void set_attachment(std::unique_ptr<LoopAttachment> a) { attachment_ = std::move(a); }

  // The loop running on this thread, or null.
  static Loop* current();

  int index() const { return index_; }
  Backend& backend() { return *backend_; }
  BackendKind backend_kind() const { return backend_->kind(); }
  std::size_t timer_count() const { return timers_.size(); }
  // Readable from any thread (relaxed counters).
  LoopStats stats() const;

 private:
  Loop(std::unique_ptr<Backend> backend, const Options& options);
  void run_ready();
  void expire_timers();
  void drain_inbox();
  void wait_for_events(std::chrono::nanoseconds max_wait);
  bool spin_for_work();
  bool has_immediate_work() const { return ready_head_ != nullptr || !inbox_.empty(); }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LoopAttachment> attachment_;
  TimerHeap timers_;
  Inbox inbox_;
  Runnable* ready_head_ = nullptr;
  Runnable* ready_tail_ = nullptr;
  std::chrono::microseconds idle_spin_;
  int index_;
  bool stopping_ = false;
  std::atomic<bool> sleeping_{false};
  std::atomic<int> posting_{0};  // post() calls in progress (see post_task)

  struct Counters {
    std::atomic<std::uint64_t> iterations{0}, completions{0}, sleeps{0}, wakeups{0}, spin_hits{0},
        timers_fired{0}, tasks_run{0};
  } counters_;
};

}  // namespace ringo::reactor
