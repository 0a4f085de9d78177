// Waiter: one party blocked on a primitive (a channel, a mutex, a join, ...):
// the running fiber, or a plain thread (a GPU worker, a test's main thread).
// Every blocking primitive of fiber/ is a queue of Waiters under its own lock;
// this file is the one place that knows how each kind of party sleeps and is
// woken, with a token's cancellation and deadline.
//
//   // waiting side (fiber or thread), Waiter on its stack:
//   Waiter w("chan recv");
//   { lock; queue.push(w); }
//   if (int err = w.wait(token)) {            // ECANCELED / ETIMEDOUT: it claimed itself
//     lock; if (queue.contains(w)) queue.erase(w); return err;
//   }
//   use(w's slot);                            // the waker's hand-off
//
//   // waking side, any thread, under the primitive's lock:
//   Waiter* w = queue.pop();
//   if (w->try_claim()) { fill w's slot; w->wake(); }   // else: skip it, try the next
//
// States: waiting -> claimed -> woken, or waiting -> claimed by the waiter
// itself (timed out / cancelled). Exactly one party claims a waiter (a CAS):
// a select's cases, a timeout and a cancellation race for it, and the losers
// move on, as the `selectDone` CAS of Go's runtime/select.go.
//
// Invariants:
//  - The claimer owns the hand-off: between try_claim() and wake() it may
//    write into the waiting party's slot (which lives on the waiter's stack);
//    the waiting side reads it only after wait() returned 0, which happens
//    only after wake(). wake() publishes with release order, wait() reads with
//    acquire.
//  - wake() touches the Waiter only up to its publishing store: what it needs
//    afterwards (the loop and fiber, or the thread's parker) is copied before.
//    So the waiting side may return and destroy the Waiter the moment it sees
//    the store.
//  - A fiber is woken through its own loop: directly when wake() runs on that
//    loop's thread, else through the loop's inbox (unpark(FiberRef)). A thread
//    sleeps on a parker of its own (shared, so a late wake-up never touches a
//    thread that has exited).
//  - wait() on a token that fires first claims the waiter itself and returns
//    the error; if a waker claimed first, wait() ignores the token and waits
//    for that waker's wake() (the hand-off is on its way: nothing is lost).
//  - Spurious wake-ups (a stale unpark, a cancellation poke) are absorbed:
//    wait() returns only when claimed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "fiber/cancel.h"
#include "fiber/scheduler.h"

namespace ringo::fiber {

// Sleeps and wakes a plain thread (no loop): one per thread, shared with the
// wakers that hold it.
class ThreadParker;

class Waiter {
 public:
  // Binds to the running fiber, or to the calling thread outside fibers.
  // `reason` (a literal) is what the fiber dump shows while it waits.
  explicit Waiter(const char* reason);
  ~Waiter();
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Any thread, normally under the primitive's lock: takes the waiter
  // (waiting -> claimed). False if someone else (another select case, its own
  // timeout or cancellation) took it first.
  bool try_claim() {
    std::uint32_t expected = kWaiting;
    return state_.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // The claimer, once, after its hand-off: wakes the waiting side (see the
  // head comment: the Waiter may be gone when this returns).
  void wake();
  // try_claim() then wake(); false if it was taken already.
  bool try_wake() {
    if (!try_claim()) return false;
    wake();
    return true;
  }
  // Whether someone claimed it (including the waiter itself).
  bool claimed() const { return state_.load(std::memory_order_acquire) != kWaiting; }

  // The waiting side: blocks (parks the fiber or sleeps the thread) until
  // woken, and returns 0; or, when `token` is cancelled or its deadline passes
  // first, claims itself and returns ECANCELED or ETIMEDOUT (the caller then
  // removes it from its queue, under the lock). Once per Waiter.
  int wait(const CancelToken& token = {});

  bool is_fiber() const { return fiber_.fiber != nullptr; }
  // The fiber waiting (null for a thread).
  const FiberRef& fiber() const { return fiber_; }
  const char* reason() const { return reason_; }

  // Intrusive links for the primitive's queue (its lock guards them).
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  bool queued = false;
  // The primitive's hand-off slot (e.g. a channel element's address), and
  // what the claimer says happened (e.g. "the channel was closed").
  void* slot = nullptr;
  int result = 0;

 private:
  static constexpr std::uint32_t kWaiting = 0, kClaimed = 1, kWoken = 2;
  int wait_fiber(const CancelToken& token);
  int wait_thread(const CancelToken& token);
  // The token fired: claim ourselves, or wait for the claimer's wake().
  int give_up(int error);

  std::atomic<std::uint32_t> state_{kWaiting};
  const char* reason_;
  FiberRef fiber_;                         // a fiber's address, or empty
  std::shared_ptr<ThreadParker> parker_;   // a thread's parker, or null
};

// A doubly linked FIFO of Waiters; the primitive's lock guards it.
class WaiterQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  Waiter* front() const { return head_; }
  void push_back(Waiter& w);
  // Removes `w` if it is queued (no-op otherwise).
  void erase(Waiter& w);
  Waiter* pop_front();
  // Pops waiters until one can be claimed; returns it claimed (the caller does
  // the hand-off and wake()), or null. Waiters claimed by others are dropped.
  Waiter* claim_front();
  // Claims and wakes every waiter with `result` (e.g. on close); returns how many.
  std::size_t wake_all(int result);

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ringo::fiber
