// blocking(fn): runs a call that blocks its thread (file I/O, getaddrinfo, a C
// library) on a small process-wide thread pool while the calling fiber parks,
// like Go's hand-off of a goroutine in a syscall to another thread.
//
//   std::string text = ringo::blocking([&] { return read_whole_file(path); });
//   auto addrs = ringo::blocking([&] { return resolve(host); });  // rethrows fn's exception
//
// In a fiber: fn runs on a pool thread; the fiber parks ("blocking" in the
// dump) and its loop runs the other fibers meanwhile; blocking() returns fn's
// value (by value, or a reference if fn returns one) or rethrows fn's
// exception on the fiber's stack. Outside a fiber (a plain thread, or a loop's
// thread outside a fiber) it simply calls fn on the calling thread.
//
// Cancellation: none. blocking() takes no token and, once fn has started,
// nothing can interrupt it (a thread inside read(2) or getaddrinfo cannot be
// cancelled safely). The fiber always waits for fn to end: fn, its captures
// and its result live on the fiber's stack, and no pool thread may touch that
// stack after blocking() returned. A fn that can stop early should check a
// token itself (capture this_fiber::token(), test cancelled() between chunks).
//
// The pool:
//  - Threads start lazily: the first call starts one, and another whenever a
//    call finds more queued jobs than idle threads, up to the cap: 4 by
//    default, RINGO_BLOCKING_THREADS (1..1024) if set, set_blocking_threads()
//    above both. Started threads stay until exit. They are named
//    "ringo-blocking" and block every asynchronous signal (process signals go
//    to the loops and the main thread).
//  - The queue is unbounded, FIFO, and allocates nothing: each job is a small
//    record on the waiting fiber's stack, so the queue is as long as the number
//    of fibers parked in blocking(); the backpressure is that they wait.
//  - At process exit (atexit) the pool stops: idle threads end, busy ones end
//    after their current job (queued jobs are not run: no loop will resume
//    their fibers); it waits for them up to 2 s, joins them, and detaches (and
//    logs) any thread still stuck inside a job rather than hang the exit. A
//    blocking() after that runs fn inline. Not fork-safe (as any thread pool):
//    a child of fork() must exec or not use blocking().
//
// Invariants: a job is run once, by one pool thread; its fiber is woken by
// Waiter::wake (through its loop's inbox) after fn and the stores of its
// outcome are done, and that wake is the pool thread's last touch of the job,
// the fiber or its loop (Loop::post itself keeps the loop alive until the
// post is done: reactor/loop.h).
//
// Rejected alternatives:
//  - Returning ECANCELED at once and letting fn finish in the background: fn's
//    captures and result would have to be owned by the pool (heap, shared
//    state) and fn could not refer to anything on the fiber's stack, which is
//    the natural way to pass buffers; the dangling-reference risk is not worth
//    an early return the caller can get by cancelling fn's own work.
//  - A thread per call (std::async) or Go's unbounded thread creation: a burst
//    of slow calls would make thousands of threads.
//  - A pool per loop: idle threads times loops, for work that is not per core.
//  - A bounded queue that rejects: every caller would need a "busy" path, and
//    the queued fibers already are bounded backpressure.
//  - io_uring's own worker threads (IORING_OP_OPENAT, READ on files): only for
//    the calls io_uring has; fiber I/O may use them per operation later.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "fiber/fiber.h"
#include "fiber/waiter.h"

namespace ringo {

namespace fiber::detail {

// One call handed to the pool: lives on the waiting fiber's stack.
struct BlockingJob {
  void (*run)(BlockingJob& self) noexcept = nullptr;  // runs fn, stores its outcome
  BlockingJob* next = nullptr;                        // the pool's queue
  Waiter* waiter = nullptr;                           // woken after run()
};

// Queues `job` and parks the calling fiber until a pool thread has run it
// (inline when the pool has shut down). Throws std::system_error when no pool
// thread exists and none can be started.
void run_on_pool(BlockingJob& job);

template <class F, class R>
class BlockingCall final : public BlockingJob {
 public:
  explicit BlockingCall(F& fn) : fn_(fn) { run = &BlockingCall::execute; }

  // On the fiber, after run_on_pool(): fn's value, or its exception rethrown.
  R take() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (std::is_reference_v<R>) {
      return static_cast<R>(*stored_);
    } else if constexpr (!std::is_void_v<R>) {
      return std::move(*stored_);
    }
  }

 private:
  using Stored = std::conditional_t<std::is_void_v<R>, bool,
                                    std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*,
                                                       std::optional<R>>>;

  static void execute(BlockingJob& job) noexcept {
    auto& self = static_cast<BlockingCall&>(job);
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::forward<F>(self.fn_));
      } else if constexpr (std::is_reference_v<R>) {
        self.stored_ = std::addressof(std::invoke(std::forward<F>(self.fn_)));
      } else {
        self.stored_.emplace(std::invoke(std::forward<F>(self.fn_)));
      }
    } catch (...) {
      self.error_ = std::current_exception();
    }
  }

  F& fn_;
  Stored stored_{};
  std::exception_ptr error_;
};

}  // namespace fiber::detail

// See the head comment. fn is invoked once, as std::invoke(std::forward<F>(fn)).
template <class F, class R = std::invoke_result_t<F>>
R blocking(F&& fn) {
  if (!this_fiber::in_fiber()) return std::invoke(std::forward<F>(fn));
  fiber::detail::BlockingCall<F, R> call(fn);
  fiber::detail::run_on_pool(call);
  return call.take();
}

// The pool's thread cap (see the head comment); n == 0 restores the default.
// Takes effect for threads started from now on (running ones stay).
void set_blocking_threads(std::size_t n);
std::size_t blocking_threads();

struct BlockingStats {
  std::size_t threads = 0;      // started and not exited
  std::size_t idle = 0;         // of those, waiting for a job
  std::size_t queued = 0;       // jobs not yet taken
  std::size_t max_threads = 0;  // the cap now
  std::uint64_t completed = 0;  // jobs run since start
};
BlockingStats blocking_stats();

}  // namespace ringo
