// See waiter.h for the protocol and its invariants.
#include "fiber/waiter.h"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "fiber/fiber.h"
#include "reactor/clock.h"

namespace ringo::fiber {

// A plain thread's sleep: a flag under a mutex (threads are the slow path;
// fibers never take this lock).
class ThreadParker {
 public:
  // Sleeps until unpark() or the deadline (reactor clock; kNoDeadline: none).
  void park(std::int64_t deadline_ns) {
    std::unique_lock lock(mu_);
    if (deadline_ns == CancelToken::kNoDeadline) {
      cv_.wait(lock, [this] { return notified_; });
    } else {
      const auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns));
      cv_.wait_until(lock, deadline, [this] { return notified_; });
    }
    notified_ = false;
  }
  void unpark() {
    {
      std::lock_guard lock(mu_);
      notified_ = true;
    }
    cv_.notify_one();
  }

  static const std::shared_ptr<ThreadParker>& this_thread() {
    thread_local const std::shared_ptr<ThreadParker> parker = std::make_shared<ThreadParker>();
    return parker;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

namespace {

// Wakes the waiting party without claiming it (a cancellation or deadline
// poke): it re-checks its token.
struct Poke {
  FiberRef fiber;
  std::shared_ptr<ThreadParker> parker;
  void operator()() const {
    if (fiber) {
      ringo::unpark(fiber);
    } else {
      parker->unpark();
    }
  }
};

}  // namespace

Waiter::Waiter(const char* reason) : reason_(reason) {
  Scheduler* s = Scheduler::current();
  if (s != nullptr && s->running() != nullptr) {
    fiber_ = s->running()->ref();
  } else {
    parker_ = ThreadParker::this_thread();
  }
}

Waiter::~Waiter() {
  if (queued) {
    std::fprintf(stderr, "ringo: broken invariant: a Waiter ('%s') destroyed while still queued\n", reason_);
    std::abort();
  }
}

void Waiter::wake() {
  // Copy what waking needs, then publish: from the store on, the waiting side
  // may return and destroy *this.
  const FiberRef fiber = fiber_;
  if (fiber) {
    state_.store(kWoken, std::memory_order_release);
    ringo::unpark(fiber);
  } else {
    std::shared_ptr<ThreadParker> parker = parker_;
    state_.store(kWoken, std::memory_order_release);
    parker->unpark();
  }
}

int Waiter::wait(const CancelToken& token) { return is_fiber() ? wait_fiber(token) : wait_thread(token); }

int Waiter::give_up(int error) {
  if (try_claim()) return error;
  return 0;  // a waker claimed first: its wake() follows, the caller waits for it
}

int Waiter::wait_fiber(const CancelToken& token) {
  Scheduler& s = Scheduler::of(*fiber_.loop);
  if (!token.cancellable() && !token.has_deadline()) {  // the common case: nothing to arm
    while (state_.load(std::memory_order_acquire) != kWoken) s.park(reason_);
    return 0;
  }
  if (state_.load(std::memory_order_acquire) == kWoken) return 0;
  // Cancellation pokes us (from whichever thread cancels); the deadline is a
  // timer of our loop that does the same.
  Poke poke{fiber_, nullptr};
  CancelCallback on_cancel(token, [](void* p) { (*static_cast<Poke*>(p))(); }, &poke);
  reactor::Timer timer;
  if (token.has_deadline()) {
    timer.user = fiber_.fiber;
    timer.deadline_ns = token.deadline_ns();
    timer.on_fire = [](reactor::Timer& t) { Scheduler::of(static_cast<Fiber*>(t.user)->loop()).unpark(*static_cast<Fiber*>(t.user)); };
    s.loop().add_timer(timer);
  }
  bool gave_up = false;
  int result = 0;
  while (state_.load(std::memory_order_acquire) != kWoken) {
    if (!gave_up) {
      if (const int err = token.error(); err != 0) {
        gave_up = true;
        result = give_up(err);
        if (result != 0) break;  // claimed ourselves
        continue;                // a waker claimed first: wait for its wake()
      }
    }
    s.park(reason_);
  }
  if (timer.armed()) s.loop().cancel_timer(timer);
  return result;
}

int Waiter::wait_thread(const CancelToken& token) {
  Poke poke{FiberRef{}, parker_};
  CancelCallback on_cancel(token, [](void* p) { (*static_cast<Poke*>(p))(); }, &poke);
  bool gave_up = false;
  while (state_.load(std::memory_order_acquire) != kWoken) {
    if (!gave_up) {
      if (const int err = token.error(); err != 0) {
        gave_up = true;
        if (const int r = give_up(err); r != 0) return r;
        continue;
      }
    }
    parker_->park(gave_up ? CancelToken::kNoDeadline : token.deadline_ns());
  }
  return 0;
}

// ---- WaiterQueue

void WaiterQueue::push_back(Waiter& w) {
  w.next = nullptr;
  w.prev = tail_;
  if (tail_ != nullptr) {
    tail_->next = &w;
  } else {
    head_ = &w;
  }
  tail_ = &w;
  w.queued = true;
  ++size_;
}

void WaiterQueue::erase(Waiter& w) {
  if (!w.queued) return;
  (w.prev != nullptr ? w.prev->next : head_) = w.next;
  (w.next != nullptr ? w.next->prev : tail_) = w.prev;
  w.next = w.prev = nullptr;
  w.queued = false;
  --size_;
}

Waiter* WaiterQueue::pop_front() {
  Waiter* w = head_;
  if (w != nullptr) erase(*w);
  return w;
}

Waiter* WaiterQueue::claim_front() {
  while (Waiter* w = pop_front()) {
    if (w->try_claim()) return w;
  }
  return nullptr;
}

std::size_t WaiterQueue::wake_all(int result) {
  std::size_t n = 0;
  while (Waiter* w = claim_front()) {
    w->result = result;
    w->wake();
    ++n;
  }
  return n;
}

}  // namespace ringo::fiber
