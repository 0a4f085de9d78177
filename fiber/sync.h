// Sync primitives for fibers and plain threads: Mutex (+ UniqueLock),
// ConditionVariable, WaitGroup, Semaphore, Event, Latch, Gate.
//
//   Mutex mu;  ConditionVariable cv;  std::deque<Job> jobs;
//   UniqueLock lock(mu);                            // parks a fiber, blocks a thread
//   if (!lock) return lock.status();                // ECANCELED / ETIMEDOUT
//   if (auto r = cv.wait(lock, [&] { return !jobs.empty(); }); !r) return r;
//
//   WaitGroup wg;  wg.add(n);  ... go([&] { work(); wg.done(); }) ...;  (void)wg.wait();
//   Gate gate;  if (auto h = gate.hold()) serve(); ... ;  (void)gate.close();  // shutdown
//
// Semantics shared by every primitive:
//  - Thread-safe: any mix of fibers (of one or several loops) and plain threads
//    may use one object. A fiber that waits parks (its loop runs other fibers);
//    a plain thread that waits sleeps. On a loop's thread outside a fiber, a
//    call that would have to wait aborts with a message (it would stall the
//    loop that must run the party it waits for); a call that need not wait
//    (an uncontended lock, a set Event) works there too.
//  - Every call that may wait returns sys::Result<void> ([[nodiscard]]) and
//    has an overload taking a `const CancelToken&`; without one it uses the
//    calling fiber's token (this_fiber::token(); a thread's: never cancelled).
//    Cancellation returns ECANCELED, a passed deadline ETIMEDOUT (cancel.h:
//    ECANCELED wins). The token is consulted only when the call would wait: a
//    call that can complete at once (a free mutex, a zero WaitGroup) succeeds
//    whatever the token says, as Go's select takes a ready case.
//  - A call that failed leaves nothing behind: its waiter is off the queue and
//    owns nothing (a cancelled lock() never owns the mutex later; a cancelled
//    acquire() took no units). A wake-up handed to a waiter that timed out at
//    the same moment goes to the next waiter (fiber/waiter.h's claim protocol:
//    exactly one of the waker and the token claims the waiter).
//  - Misuse (a negative WaitGroup counter, count_down past zero, leave() of an
//    empty gate, wait() without the mutex) throws std::logic_error (as
//    JoinHandle::join() does), with the object unchanged. Unlocking a mutex
//    that is not locked and destroying an object that still has waiters are
//    broken invariants: they abort (Go's "unlock of unlocked mutex" is fatal too).
//  - After a wait returns, the waker touches nothing of the primitive: e.g. a
//    WaitGroup may be destroyed as soon as wait() returns, while the last
//    done() is still returning (see the lock word below).
//
// Mutex: strict FIFO hand-off. unlock() with waiters queued gives the mutex to
// the first one (it stays locked, owned by that waiter, before the waiter even
// runs); a locker that finds waiters queues behind them, it never barges. So no
// waiter starves and the order is exactly the arrival order. Go's Mutex instead
// runs in "normal" mode (a woken waiter competes with new lockers, which usually
// win: more throughput under contention, unbounded unfairness) and switches to
// "starvation" mode (hand-off, like this) once a waiter has waited 1 ms. Strict
// hand-off costs throughput when many parties hammer a short critical section
// (each hand-off waits for the new owner to be scheduled: a lock convoy); it
// costs nothing in the two-mutex baton pass, where every lock hands off anyway.
// As in Go, any party may unlock (the locker is not recorded).
// Measured (dev VM, thread CPU time): uncontended lock+unlock ~5 ns (two
// CASes; std::mutex ~5.5 ns); the baton pass on one loop ~61 ns per hand-off
// against Go's ~165 ns (GOMAXPROCS=1), of which ~26 ns are the two switches
// a yield ping-pong costs too.
//
// The lock word (detail::LockWord): each primitive keeps all its state in one
// 64-bit atomic word whose bit 0 is a tiny spin lock guarding its WaiterQueue;
// the other bits are the primitive's state (mutex locked, waiters present,
// counters). Fast paths are one CAS on that word (uncontended lock + unlock:
// two CASes); slow paths take the bit, update queue and state, and release
// with one store that is their last access to the object; waking the claimed
// waiters comes after it and touches only them.
//
// Rejected alternatives:
//  - A std::mutex (futex) per primitive: a contended futex sleeps the whole
//    loop thread in the kernel; the critical sections here are a few queue
//    operations, where spinning (then sched_yield) is cheaper and keeps loops
//    running.
//  - A separate spin lock beside a state word: a fast-path party could see the
//    final state (e.g. the WaitGroup at zero), return and free the object while
//    the slow path still had to release its spin lock: a use after free.
//  - Adaptive spinning in Mutex::lock before parking (Go spins when other Ps
//    run): a fiber spinning on a mutex held by a fiber of its own loop spins in
//    vain, and we cannot tell cheaply where the owner runs.
//  - Go's normal/starvation modes: see above; fairness first, simple to reason
//    about, and the benchmark that matters (baton pass) hands off every time.
//  - Returning int errno: sys::Result names the call ("Mutex::lock: ETIMEDOUT")
//    like every other fallible call of the framework, at no cost on success.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <utility>

#include "fiber/cancel.h"
#include "fiber/waiter.h"
#include "syscall/result.h"

namespace ringo::fiber {

namespace detail {

// One atomic word: bit 0 is a spin lock, the other bits belong to the owner.
class LockWord {
 public:
  static constexpr std::uint64_t kLock = 1;

  explicit LockWord(std::uint64_t state = 0) : word_(state) {}

  std::uint64_t load(std::memory_order order = std::memory_order_acquire) const { return word_.load(order); }
  // Fast paths: `expected` -> `desired` when the word holds exactly
  // `expected` (which must not have the lock bit).
  bool cas(std::uint64_t expected, std::uint64_t desired, std::memory_order order) {
    return word_.compare_exchange_strong(expected, desired, order, std::memory_order_relaxed);
  }
  // Takes the lock bit; returns the state (lock bit clear).
  std::uint64_t lock() {
    std::uint64_t s = word_.load(std::memory_order_relaxed);
    if ((s & kLock) == 0 &&
        word_.compare_exchange_weak(s, s | kLock, std::memory_order_acquire, std::memory_order_relaxed)) {
      return s;
    }
    return lock_slow();
  }
  // Releases the lock bit and publishes `state`: the holder's last access.
  void unlock(std::uint64_t state) { word_.store(state & ~kLock, std::memory_order_release); }

 private:
  std::uint64_t lock_slow();
  std::atomic<std::uint64_t> word_;
};

// The error of a wait that failed with `err` (ECANCELED, ETIMEDOUT).
sys::Error wait_error(const char* op, int err);
// Built inline from a slow path's errno: a success costs the caller nothing.
inline sys::Result<void> wait_result(int err, const char* op) {
  if (err == 0) [[likely]] return {};
  return wait_error(op, err);
}

}  // namespace detail

class Mutex {
 public:
  Mutex() = default;
  ~Mutex();  // aborts with waiters queued; destroying it locked is allowed
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Takes the mutex if it is free (never waits).
  [[nodiscard]] bool try_lock() {
    // Test before the CAS: a CAS that fails still costs a locked instruction.
    return word_.load(std::memory_order_relaxed) == 0 && word_.cas(0, kLocked, std::memory_order_acquire);
  }
  // Waits (FIFO) until the mutex is handed over. ECANCELED / ETIMEDOUT: not locked.
  sys::Result<void> lock() {
    if (try_lock()) [[likely]] return {};
    return detail::wait_result(lock_slow(nullptr), "Mutex::lock");
  }
  sys::Result<void> lock(const CancelToken& token) {
    if (try_lock()) [[likely]] return {};
    return detail::wait_result(lock_slow(&token), "Mutex::lock");
  }
  // Any party may unlock (Go semantics); hands over to the first waiter.
  void unlock() {
    if (word_.load(std::memory_order_relaxed) != kLocked || !word_.cas(kLocked, 0, std::memory_order_release))
        [[unlikely]] {
      unlock_slow();
    }
  }
  // A snapshot, for tests and assertions.
  bool is_locked() const { return (word_.load(std::memory_order_relaxed) & kLocked) != 0; }

 private:
  friend class ConditionVariable;
  static constexpr std::uint64_t kLocked = 2, kWaiters = 4;  // kWaiters implies kLocked
  int lock_slow(const CancelToken* token);  // 0, ECANCELED or ETIMEDOUT
  void unlock_slow();

  detail::LockWord word_;
  WaiterQueue queue_;
};

// Owns a locked Mutex for a scope, like std::unique_lock; the locking
// constructors may fail (cancellation, deadline): check ok() / status().
class [[nodiscard]] UniqueLock {
 public:
  UniqueLock() = default;
  explicit UniqueLock(Mutex& m) : mutex_(&m), status_(m.lock()) { owns_ = status_.ok(); }
  UniqueLock(Mutex& m, const CancelToken& token) : mutex_(&m), status_(m.lock(token)) { owns_ = status_.ok(); }
  UniqueLock(Mutex& m, std::adopt_lock_t) noexcept : mutex_(&m), owns_(true) {}
  UniqueLock(Mutex& m, std::defer_lock_t) noexcept : mutex_(&m) {}
  UniqueLock(UniqueLock&& o) noexcept
      : mutex_(std::exchange(o.mutex_, nullptr)), owns_(std::exchange(o.owns_, false)), status_(o.status_) {}
  UniqueLock& operator=(UniqueLock&& o) noexcept {
    if (this != &o) {
      if (owns_) mutex_->unlock();
      mutex_ = std::exchange(o.mutex_, nullptr);
      owns_ = std::exchange(o.owns_, false);
      status_ = o.status_;
    }
    return *this;
  }
  ~UniqueLock() {
    if (owns_) mutex_->unlock();
  }
  UniqueLock(const UniqueLock&) = delete;
  UniqueLock& operator=(const UniqueLock&) = delete;

  bool owns_lock() const { return owns_; }
  bool ok() const { return owns_; }
  explicit operator bool() const { return owns_; }
  // The outcome of the last locking call (the constructor's or lock()'s).
  const sys::Result<void>& status() const { return status_; }
  Mutex* mutex() const { return mutex_; }

  sys::Result<void> lock();
  sys::Result<void> lock(const CancelToken& token);
  void unlock();
  // Gives up ownership without unlocking; returns the mutex.
  Mutex* release() {
    owns_ = false;
    return std::exchange(mutex_, nullptr);
  }

 private:
  Mutex* mutex_ = nullptr;
  bool owns_ = false;
  sys::Result<void> status_;
};

// Waits always return with the mutex re-acquired, including on ECANCELED /
// ETIMEDOUT (the re-acquisition itself cannot be cancelled). No spurious
// wake-ups (a wait returns 0 only when notified), but another party may have
// changed the state by the time the mutex is back: wait for a predicate.
class ConditionVariable {
 public:
  ConditionVariable() = default;
  ~ConditionVariable();  // aborts with waiters queued
  ConditionVariable(const ConditionVariable&) = delete;
  ConditionVariable& operator=(const ConditionVariable&) = delete;

  // `lock` must own its mutex (else std::logic_error).
  sys::Result<void> wait(UniqueLock& lock) { return wait_impl(lock, nullptr); }
  sys::Result<void> wait(UniqueLock& lock, const CancelToken& token) { return wait_impl(lock, &token); }
  // Waits until pred() holds (checked under the mutex); an error leaves it false.
  template <std::predicate Pred>
  sys::Result<void> wait(UniqueLock& lock, Pred pred) {
    while (!pred()) {
      if (auto r = wait_impl(lock, nullptr); !r) return r;
    }
    return {};
  }
  template <std::predicate Pred>
  sys::Result<void> wait(UniqueLock& lock, Pred pred, const CancelToken& token) {
    while (!pred()) {
      if (auto r = wait_impl(lock, &token); !r) return r;
    }
    return {};
  }
  // With or without the mutex held. Wakes the longest waiting party / all.
  void notify_one();
  void notify_all();

 private:
  sys::Result<void> wait_impl(UniqueLock& lock, const CancelToken* token);

  detail::LockWord word_;
  WaiterQueue queue_;
};

// Go's sync.WaitGroup: add(n) before starting work, done() when each piece
// ends, wait() until the counter is zero. May be destroyed as soon as wait()
// returned (and every done() call was made).
class WaitGroup {
 public:
  WaitGroup() = default;
  ~WaitGroup();  // aborts with waiters queued
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Throws std::logic_error (counter unchanged) if it would go negative.
  // Reaching zero releases every waiter.
  void add(std::int64_t delta) { change(delta, "WaitGroup: negative counter"); }
  void done() { add(-1); }
  sys::Result<void> wait() { return wait_impl(nullptr); }
  sys::Result<void> wait(const CancelToken& token) { return wait_impl(&token); }
  std::int64_t count() const { return static_cast<std::int64_t>(word_.load() >> kShift); }

 private:
  friend class Latch;
  static constexpr int kShift = 1;
  void change(std::int64_t delta, const char* misuse);
  sys::Result<void> wait_impl(const CancelToken* token);

  detail::LockWord word_;
  WaiterQueue queue_;
};

// A counting semaphore with FIFO grants: a request that cannot be met blocks
// the requests queued after it, even smaller ones (as Go's x/sync/semaphore),
// so a large request is never starved by a stream of small ones.
class Semaphore {
 public:
  explicit Semaphore(std::int64_t initial = 0);
  ~Semaphore();  // aborts with waiters queued
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Takes n units (n >= 0, else std::logic_error) when available and nobody
  // is queued; waits otherwise. An error takes nothing.
  sys::Result<void> acquire(std::int64_t n = 1) { return acquire_impl(n, nullptr); }
  sys::Result<void> acquire(std::int64_t n, const CancelToken& token) { return acquire_impl(n, &token); }
  sys::Result<void> acquire(const CancelToken& token) { return acquire_impl(1, &token); }
  // Never waits; fails when the units are missing or others are queued.
  [[nodiscard]] bool try_acquire(std::int64_t n = 1);
  // Returns n units (n >= 0, else std::logic_error); grants queued requests in order.
  void release(std::int64_t n = 1);
  std::int64_t available() const { return static_cast<std::int64_t>(word_.load() >> kShift); }

 private:
  static constexpr std::uint64_t kWaiters = 2;
  static constexpr int kShift = 2;
  sys::Result<void> acquire_impl(std::int64_t n, const CancelToken* token);

  detail::LockWord word_;
  WaiterQueue queue_;
};

// A one-shot event: set() once (later calls do nothing) releases every
// waiter, present and future. May be destroyed as soon as a wait() returned.
class Event {
 public:
  Event() = default;
  ~Event();  // aborts with waiters queued
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set();
  bool is_set() const { return (word_.load() & kSet) != 0; }
  sys::Result<void> wait() { return wait_impl(nullptr); }
  sys::Result<void> wait(const CancelToken& token) { return wait_impl(&token); }

 private:
  static constexpr std::uint64_t kSet = 2;
  sys::Result<void> wait_impl(const CancelToken* token);

  detail::LockWord word_;
  WaiterQueue queue_;
};

// std::latch for fibers: count_down() to zero releases the waiters; single use.
class Latch {
 public:
  explicit Latch(std::int64_t count);  // count >= 0, else std::logic_error
  // Throws std::logic_error (count unchanged) below zero.
  void count_down(std::int64_t n = 1);
  // True once the count is zero and the last count_down() has returned.
  bool try_wait() const { return wg_.word_.load() == 0; }
  sys::Result<void> wait() { return wg_.wait(); }
  sys::Result<void> wait(const CancelToken& token) { return wg_.wait(token); }

 private:
  WaitGroup wg_;
};

// Shutdown coordination, like Seastar's gate: work enters (or holds) the gate
// while it runs; close() makes every later enter() fail with ESHUTDOWN ("the
// gate is closed") and waits until the holders have left. A close() that
// fails (ECANCELED / ETIMEDOUT) leaves the gate closed; close() again to wait
// again. Several parties may close() at once: all return when it is empty.
class Gate {
 public:
  // RAII: leaves the gate when destroyed (or by leave()).
  class [[nodiscard]] Holder {
   public:
    Holder() = default;
    Holder(Holder&& o) noexcept : gate_(std::exchange(o.gate_, nullptr)) {}
    Holder& operator=(Holder&& o) noexcept {
      if (this != &o) {
        leave();
        gate_ = std::exchange(o.gate_, nullptr);
      }
      return *this;
    }
    ~Holder() { leave(); }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    explicit operator bool() const { return gate_ != nullptr; }
    void leave() {
      if (gate_ != nullptr) std::exchange(gate_, nullptr)->leave();
    }

   private:
    friend class Gate;
    explicit Holder(Gate* g) : gate_(g) {}
    Gate* gate_ = nullptr;
  };

  Gate() = default;
  ~Gate();  // aborts with holders inside or closers waiting
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // Never waits. ESHUTDOWN once closed.
  sys::Result<void> enter();
  // Throws std::logic_error when nobody is inside.
  void leave();
  // enter() as an RAII holder.
  sys::Result<Holder> hold() {
    if (auto r = enter(); !r) return r.error();
    return Holder(this);
  }
  sys::Result<void> close() { return close_impl(nullptr); }
  sys::Result<void> close(const CancelToken& token) { return close_impl(&token); }
  bool is_closed() const { return (word_.load() & kClosed) != 0; }
  std::int64_t holders() const { return static_cast<std::int64_t>(word_.load() >> kShift); }

 private:
  static constexpr std::uint64_t kClosed = 2;
  static constexpr int kShift = 2;
  sys::Result<void> close_impl(const CancelToken* token);

  detail::LockWord word_;
  WaiterQueue queue_;
};

}  // namespace ringo::fiber

namespace ringo {
using fiber::ConditionVariable;
using fiber::Event;
using fiber::Gate;
using fiber::Latch;
using fiber::Mutex;
using fiber::Semaphore;
using fiber::UniqueLock;
using fiber::WaitGroup;
}  // namespace ringo
