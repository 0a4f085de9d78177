// The fiber API, Go-like: `go` a function, `join` its handle, block freely.
//
//   auto h = ringo::go([] { ringo::this_fiber::sleep_for(10ms); return 42; },
//                      {.name = "answer"});
//   int v = h.join();           // 42, or rethrows what the fiber threw
//   ringo::go_on(group.loop(1), fn);   // spawned on another loop, via its inbox
//
// go() spawns on the current loop (the caller must run on a loop's thread,
// normally inside a fiber); go_on() posts the spawn through the target loop's
// inbox, from any thread. The fiber becomes runnable and first runs at the
// loop's next run_ready turn. JoinHandle::join() parks the joining fiber
// ("join") until the fiber ends; from a plain thread (no loop) it blocks on a
// condition variable.
//
// Invariants:
//  - Exceptions never cross a context switch: the fiber's entry catches
//    whatever its function throws, stores it in the join state, and join()
//    rethrows it on the joiner's stack. An exception that nobody joins (the
//    handle dropped, or never joined) is logged at error level with the
//    fiber's name when the last reference to the join state goes.
//  - The join state is the only thing the fiber and its joiner share across
//    threads: one atomic word (running / a fiber joiner waits / done) and the
//    outcome, published by the word's release store. A joining fiber parks
//    and is woken through its FiberRef (its loop's inbox when foreign); a
//    joining thread waits on the word (std::atomic::wait).
//  - The function's captures are destroyed on the fiber's stack before the
//    joiner is woken: after join() returns, nothing of the fiber runs.
//  - Calling join() on a loop's thread outside a fiber aborts (it would block
//    the loop that has to run the fiber); a thread that owns a loop but is
//    not inside run()/run_once() counts as a plain thread: drive the loop
//    until done() first.
//  - A spawn that never ran (its loop was destroyed first, or no stack could
//    be mapped for go_on) completes its handle with an exception.
//
// Rejected alternatives:
//  - std::future/std::promise for join: a fiber must park, not block its
//    loop's thread, and the promise's shared state allocates all the same.
//  - Detaching by default and no handle (Go's way): the handle costs one
//    allocation and is how a value or exception comes back; dropping it is
//    detaching.
//  - Letting an unjoined exception terminate the process (std::thread's way):
//    a server should log a failed connection fiber, not die of it.
#pragma once

#include <chrono>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "fiber/cancel.h"
#include "fiber/scheduler.h"
#include "reactor/loop.h"
#include "syscall/result.h"
#include "syscall/site.h"

namespace ringo {

struct GoOptions {
  std::string name = {};       // empty: "fiber-<id>"
  std::size_t stack_size = 0;  // usable bytes; 0: the stack pool's default (fiber/stack.h)
  // What this_fiber::token() returns in the new fiber; by default the
  // spawning fiber's token (none from outside a fiber).
  std::optional<CancelToken> token = std::nullopt;
};

namespace fiber::detail {

// What a fiber and its joiner share.
class JoinStateBase {
 public:
  explicit JoinStateBase(std::uint64_t id) : id_(id) {}
  // Logs an exception nobody joined.
  virtual ~JoinStateBase();
  JoinStateBase(const JoinStateBase&) = delete;
  JoinStateBase& operator=(const JoinStateBase&) = delete;

  std::uint64_t id() const { return id_; }
  bool done() const { return state_.load(std::memory_order_acquire) == kDone; }
  // The fiber's side, once: publishes the outcome and wakes the joiner.
  void finish(std::exception_ptr error);
  // finish() with an exception saying why the fiber `name` never ran.
  void abandon(const std::string& name, const char* why);
  // The joiner's side: waits until done (parks a fiber, blocks a thread) and
  // returns the fiber's exception, if any.
  std::exception_ptr wait();

 private:
  static constexpr std::uint32_t kRunning = 0, kFiberWaits = 1, kDone = 2;
  const std::uint64_t id_;
  std::atomic<std::uint32_t> state_{kRunning};
  bool joined_ = false;
  FiberRef waiter_;           // written before kRunning -> kFiberWaits
  std::exception_ptr error_;  // written before kDone
  std::string error_where_;   // with an error: the fiber's name, for the log line
};

template <class T>
class JoinState final : public JoinStateBase {
 public:
  using JoinStateBase::JoinStateBase;
  // Before finish(), on the fiber's thread; read only after done.
  template <class U>
  void set_value(U&& v) {
    value_.emplace(std::forward<U>(v));
  }
  T take() { return std::move(*value_); }

 private:
  std::optional<T> value_;
};

template <>
class JoinState<void> final : public JoinStateBase {
 public:
  using JoinStateBase::JoinStateBase;
};

template <class F>
using ResultOf = std::invoke_result_t<std::decay_t<F>&>;

// The fiber's function object and its join state, at the top of its stack
// (Scheduler::spawn's Body contract).
template <class F, class T>
class Body {
 public:
  template <class G>
  Body(G&& fn, std::shared_ptr<JoinState<T>> state) : fn_(std::forward<G>(fn)), state_(std::move(state)) {}
  ~Body() = default;
  Body(const Body&) = delete;
  Body& operator=(const Body&) = delete;

  // Runs the function, then destroys this body: captures die before the
  // joiner wakes, so after join() returns nothing of the fiber runs.
  void run() noexcept {
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<T>) {
        fn_();
      } else {
        state_->set_value(fn_());
      }
    } catch (...) {
      error = std::current_exception();
    }
    std::shared_ptr<JoinState<T>> state = std::move(state_);
    this->~Body();
    state->finish(std::move(error));  // outside the catch block: no switch from a handler
  }
  // Never ran (its loop went first): the joiner hears why.
  void drop(const Fiber& fiber) noexcept {
    std::shared_ptr<JoinState<T>> state = std::move(state_);
    this->~Body();
    state->abandon(fiber.name(), "its loop was destroyed before it ran");
  }

 private:
  F fn_;
  std::shared_ptr<JoinState<T>> state_;
};

FiberSpec make_spec(std::uint64_t id, GoOptions&& options, sys::Site site);
// Loop `index` of the calling thread's LoopGroup (see go_on(index, fn)).
reactor::Loop& group_loop(std::size_t index);

template <class T, class F>
void spawn_into(Scheduler& s, FiberSpec spec, F&& fn, std::shared_ptr<JoinState<T>> state) {
  s.spawn<Body<std::decay_t<F>, T>>(std::move(spec), std::forward<F>(fn), std::move(state));
}

// Completes a go_on() whose posted spawn never ran (the loop went first).
template <class T>
struct PendingSpawn {
  PendingSpawn(std::shared_ptr<JoinState<T>> s, FiberSpec sp) : state(std::move(s)), spec(std::move(sp)) {}
  PendingSpawn(PendingSpawn&&) noexcept = default;
  PendingSpawn& operator=(PendingSpawn&&) noexcept = default;
  ~PendingSpawn() {
    if (state) {
      state->abandon(spec.name.empty() ? "fiber-" + std::to_string(spec.id) : spec.name,
                     "its loop was destroyed before the spawn arrived");
    }
  }
  std::shared_ptr<JoinState<T>> state;
  FiberSpec spec;
};

}  // namespace fiber::detail

template <class T>
class JoinHandle {
 public:
  JoinHandle() = default;
  explicit JoinHandle(std::shared_ptr<fiber::detail::JoinState<T>> state) : state_(std::move(state)) {}
  JoinHandle(JoinHandle&&) noexcept = default;
  JoinHandle& operator=(JoinHandle&&) noexcept = default;
  ~JoinHandle() = default;  // dropping a handle detaches the fiber

  bool valid() const { return state_ != nullptr; }
  // Whether the fiber has ended (then join() does not wait).
  bool done() const { return state_ != nullptr && state_->done(); }
  std::uint64_t fiber_id() const { return state_ ? state_->id() : 0; }

  // Waits for the fiber; returns its value or rethrows its exception. Once.
  T join() {
    if (!state_) throw std::logic_error("JoinHandle::join() on an empty or joined handle");
    std::shared_ptr<fiber::detail::JoinState<T>> state = std::move(state_);
    if (std::exception_ptr error = state->wait()) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) return state->take();
  }

 private:
  std::shared_ptr<fiber::detail::JoinState<T>> state_;
};

// Spawns a fiber on the current loop (the caller runs on a loop's thread).
template <class F, class T = fiber::detail::ResultOf<F>>
JoinHandle<T> go(F&& fn, GoOptions options = {}, sys::Site site = {}) {
  static_assert(std::is_void_v<T> || !std::is_reference_v<T>, "a fiber returns a value, not a reference");
  fiber::Scheduler& s = fiber::Scheduler::current_or_die("ringo::go()");
  const std::uint64_t id = fiber::next_fiber_id();
  auto state = std::make_shared<fiber::detail::JoinState<T>>(id);
  fiber::detail::spawn_into<T>(s, fiber::detail::make_spec(id, std::move(options), site), std::forward<F>(fn),
                               state);
  return JoinHandle<T>(std::move(state));
}

// Spawns a fiber on `loop`, from any thread, through the loop's inbox.
template <class F, class T = fiber::detail::ResultOf<F>>
JoinHandle<T> go_on(reactor::Loop& loop, F&& fn, GoOptions options = {}, sys::Site site = {}) {
  static_assert(std::is_void_v<T> || !std::is_reference_v<T>, "a fiber returns a value, not a reference");
  const std::uint64_t id = fiber::next_fiber_id();
  auto state = std::make_shared<fiber::detail::JoinState<T>>(id);
  loop.post([&loop, fn = std::decay_t<F>(std::forward<F>(fn)),
             pending = fiber::detail::PendingSpawn<T>(state, fiber::detail::make_spec(id, std::move(options),
                                                                                     site))]() mutable {
    std::shared_ptr<fiber::detail::JoinState<T>> st = std::move(pending.state);
    std::exception_ptr error;
    try {
      fiber::detail::spawn_into<T>(fiber::Scheduler::of(loop), std::move(pending.spec), std::move(fn), st);
    } catch (...) {
      error = std::current_exception();
    }
    if (error) st->finish(std::move(error));
  });
  return JoinHandle<T>(std::move(state));
}

// Spawns a fiber on loop `loop_index` of the LoopGroup whose loop runs the
// calling thread (a fiber spreading work over its group's cores). Throws
// std::logic_error on a thread of no LoopGroup, std::out_of_range for an index
// past the group's size.
template <class F, class T = fiber::detail::ResultOf<F>>
JoinHandle<T> go_on(std::size_t loop_index, F&& fn, GoOptions options = {}, sys::Site site = {}) {
  return go_on(fiber::detail::group_loop(loop_index), std::forward<F>(fn), std::move(options), site);
}

// Makes a parked fiber runnable. From its own loop's thread directly; from any
// other thread through its loop's inbox (the fiber is found by id there, so a
// fiber that has ended meanwhile is simply not found). The caller must know
// the fiber is alive when calling (id and loop are read here).
void unpark(fiber::Fiber& fiber);
// The same for a fiber named by a FiberRef (safe even if it has ended).
void unpark(const fiber::FiberRef& ref);
// The same for a fiber known by loop and id: O(live fibers) on the loop; for
// tests and tools (prefer FiberRef).
void unpark(reactor::Loop& loop, std::uint64_t fiber_id);

// Every live fiber of the current loop, one line each (like a goroutine dump):
//   fiber 7 "sleeper" [parked: sleep, 12.043 ms] L0, cpu 0.002 ms, 1 switches, spawned at f.cc:42 (TestBody)
// Empty when this thread runs no loop.
std::string fiber_dump();

namespace this_fiber {

bool in_fiber();
// The running fiber; aborts outside a fiber.
fiber::Fiber& current();
// The running fiber's cancellation (see GoOptions::token); outside a fiber,
// a token that is never cancelled.
const CancelToken& token();
// Replaces the running fiber's token (e.g. with a deadline for the calls
// that follow); the fibers it spawns from then on inherit the new one.
void set_token(CancelToken token);
// Lets the loop's other runnable fibers run first (timers, posts and I/O get
// their turn between batches, at least every 100 µs: scheduler.h). Outside a
// fiber: std::this_thread::yield().
void yield();
// Parks the running fiber until unpark(); `reason` (a literal: "io read",
// "chan recv", ...) is what the dump shows. May return spuriously (see
// scheduler.h): re-check the condition waited for. Aborts outside a fiber.
void park(const char* reason);
// Parks ("sleep") until the reactor clock passes the deadline (a timer of the
// loop); never wakes earlier. Outside a fiber the thread sleeps.
void sleep_until_ns(std::int64_t deadline_ns);
inline void sleep_until(std::chrono::steady_clock::time_point t) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the reactor clock.
  sleep_until_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}
void sleep_for(std::chrono::nanoseconds d);
// Sleeps as above unless `token` fires first: its cancellation ends the sleep
// at once with ECANCELED, its deadline (if before the wake-up time) with
// ETIMEDOUT; otherwise success after the full time. Go's
// `select { case <-ctx.Done(): case <-time.After(d): }`. In a fiber or a
// plain thread.
sys::Result<void> sleep_until_ns(std::int64_t deadline_ns, const CancelToken& token);
sys::Result<void> sleep_for(std::chrono::nanoseconds d, const CancelToken& token);

}  // namespace this_fiber

}  // namespace ringo
