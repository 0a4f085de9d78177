// See sync.h for the semantics, the lock word and the rejected designs.
//
// Every slow path has the same shape (waiter.h's protocol):
//   state = word.lock();  re-check;  queue.push_back(w);  word.unlock(state');
//   err = w.wait(token);                       // 0: a waker claimed us and handed over
//   if (err) { state = word.lock(); queue.erase(w); (recompute); word.unlock(state''); }
// and every waking path:
//   state = word.lock();  w = queue.claim_front() ...;  word.unlock(state');  wake(w)
// so a waker releases the word before it wakes anyone, and wakes touch only
// the (still waiting, hence alive) Waiters.
#include "fiber/sync.h"

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "fiber/fiber.h"
#include "fiber/internal/invariant.h"

namespace ringo::fiber {
namespace {

using internal::cpu_relax;
using internal::die;

// Largest counter a word holds above `shift` state bits.
constexpr std::int64_t max_count(int shift) { return std::numeric_limits<std::int64_t>::max() >> shift; }

[[noreturn, gnu::cold, gnu::noinline]] void die_blocking_loop(const char* what) {
  std::fprintf(stderr,
               "ringo: broken invariant: %s would block a loop's thread outside a fiber (it would stall the "
               "loop)\n",
               what);
  std::abort();
}

// The token a waiter `w` about to wait uses: `token`, or the running fiber's
// (a thread's: never cancelled). Aborts on a loop's thread outside a fiber
// (that loop would stall, and with it whoever must wake us).
inline const CancelToken& resolve_token(const Waiter& w, const CancelToken* token, const char* what) {
  static const CancelToken none;
  if (w.is_fiber()) [[likely]] {
    return token != nullptr ? *token : w.fiber().fiber->token();  // our own fiber: readable
  }
  if (reactor::Loop::current() != nullptr) die_blocking_loop(what);
  return token != nullptr ? *token : none;
}

// token.error(), without the call for a token that can never fire.
inline int token_error(const CancelToken& token) {
  return token.cancellable() || token.has_deadline() ? token.error() : 0;
}

sys::Result<void> fail(const char* op, int err) { return sys::Error(op, err); }

}  // namespace

sys::Error detail::wait_error(const char* op, int err) { return sys::Error(op, err); }

namespace {

// Claimed waiters, woken after the word is released (FIFO). Their `next`
// link is free once they are off the queue.
class WakeList {
 public:
  void push(Waiter* w) {
    w->next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = w;
    tail_ = w;
  }
  void claim_all(WaiterQueue& queue) {
    while (Waiter* w = queue.claim_front()) push(w);
  }
  void wake() {
    for (Waiter* w = head_; w != nullptr;) {
      Waiter* next = w->next;  // before wake(): the waiter may be gone after it
      w->wake();
      w = next;
    }
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Queues `w` (the caller holds `word`, and passes the state to publish),
// waits, and on an error takes `w` off the queue; `leave(state)` then returns
// the state to publish (e.g. without the waiters bit). Returns wait()'s result.
template <class Leave>
int queue_and_wait(detail::LockWord& word, WaiterQueue& queue, Waiter& w, std::uint64_t publish,
                   const CancelToken& token, Leave leave) {
  queue.push_back(w);
  word.unlock(publish);
  const int err = w.wait(token);
  if (err != 0) {
    const std::uint64_t s = word.lock();
    queue.erase(w);
    word.unlock(leave(s));
  }
  return err;
}

constexpr auto keep_state = [](std::uint64_t s) { return s; };

}  // namespace

// ---- LockWord

std::uint64_t detail::LockWord::lock_slow() {
  for (int spins = 0;; ++spins) {
    std::uint64_t s = word_.load(std::memory_order_relaxed);
    if ((s & kLock) == 0 &&
        word_.compare_exchange_weak(s, s | kLock, std::memory_order_acquire, std::memory_order_relaxed)) {
      return s;
    }
    // The holder runs a few queue operations; if it was preempted, let it run.
    if (spins < 64) {
      cpu_relax();
    } else {
      ::sched_yield();
    }
  }
}

// ---- Mutex

Mutex::~Mutex() {
  if (!queue_.empty()) die("a Mutex destroyed while parties wait to lock it");
}

int Mutex::lock_slow(const CancelToken* token_or_null) {
  Waiter w("mutex lock");
  const CancelToken& token = resolve_token(w, token_or_null, "Mutex::lock");
  if (const int err = token_error(token); err != 0) {
    return try_lock() ? 0 : err;  // freed meanwhile: a call that needs no wait succeeds
  }
  const std::uint64_t s = word_.lock();
  if ((s & kLocked) == 0) {  // freed meanwhile (no waiters then: kWaiters implies kLocked)
    word_.unlock(s | kLocked);
    return 0;
  }
  // 0: unlock_slow() handed the mutex over (kLocked stayed set for us).
  return queue_and_wait(word_, queue_, w, s | kWaiters, token, [this](std::uint64_t st) {
    return queue_.empty() ? st & ~kWaiters : st;
  });
}

void Mutex::unlock_slow() {
  const std::uint64_t s = word_.lock();
  if ((s & kLocked) == 0) {
    word_.unlock(s);
    die("Mutex::unlock of an unlocked mutex");
  }
  // Waiters that timed out or were cancelled are dropped by claim_front().
  Waiter* next = queue_.claim_front();
  if (next == nullptr) {
    word_.unlock(0);
    return;
  }
  word_.unlock(queue_.empty() ? kLocked : kLocked | kWaiters);  // still locked: it is next's now
  next->wake();
}

sys::Result<void> UniqueLock::lock() {
  if (mutex_ == nullptr || owns_) throw std::logic_error("UniqueLock::lock: no mutex, or already owned");
  status_ = mutex_->lock();
  owns_ = status_.ok();
  return status_;
}

sys::Result<void> UniqueLock::lock(const CancelToken& token) {
  if (mutex_ == nullptr || owns_) throw std::logic_error("UniqueLock::lock: no mutex, or already owned");
  status_ = mutex_->lock(token);
  owns_ = status_.ok();
  return status_;
}

void UniqueLock::unlock() {
  if (!owns_) throw std::logic_error("UniqueLock::unlock: the mutex is not owned");
  owns_ = false;
  mutex_->unlock();
}

// ---- ConditionVariable

ConditionVariable::~ConditionVariable() {
  if (!queue_.empty()) die("a ConditionVariable destroyed while parties wait on it");
}

sys::Result<void> ConditionVariable::wait_impl(UniqueLock& lock, const CancelToken* token_or_null) {
  if (!lock.owns_lock()) throw std::logic_error("ConditionVariable::wait: the lock does not own its mutex");
  Waiter w("cond wait");
  const CancelToken& token = resolve_token(w, token_or_null, "ConditionVariable::wait");
  if (const int err = token_error(token); err != 0) return fail("ConditionVariable::wait", err);
  Mutex& mutex = *lock.mutex();
  // Queued before the mutex is released: a notify after that finds us.
  const std::uint64_t s = word_.lock();
  queue_.push_back(w);
  word_.unlock(s);
  mutex.unlock();
  const int err = w.wait(token);
  if (err != 0) {
    const std::uint64_t s2 = word_.lock();
    queue_.erase(w);
    word_.unlock(s2);
  }
  (void)mutex.lock(CancelToken{});  // a token that is never cancelled: cannot fail
  return err == 0 ? sys::Result<void>() : fail("ConditionVariable::wait", err);
}

void ConditionVariable::notify_one() {
  const std::uint64_t s = word_.lock();
  Waiter* w = queue_.claim_front();
  word_.unlock(s);
  if (w != nullptr) w->wake();
}

void ConditionVariable::notify_all() {
  WakeList list;
  const std::uint64_t s = word_.lock();
  list.claim_all(queue_);
  word_.unlock(s);
  list.wake();
}

// ---- WaitGroup and Latch

WaitGroup::~WaitGroup() {
  if (!queue_.empty()) die("a WaitGroup destroyed while parties wait on it");
}

void WaitGroup::change(std::int64_t delta, const char* misuse) {
  WakeList list;
  const std::uint64_t s = word_.lock();
  const auto count = static_cast<std::int64_t>(s >> kShift);
  std::int64_t next = 0;
  if (__builtin_add_overflow(count, delta, &next) || next < 0 || next > max_count(kShift)) {
    word_.unlock(s);
    throw std::logic_error(next < 0 ? misuse : "WaitGroup: counter overflow");
  }
  if (next == 0) list.claim_all(queue_);
  word_.unlock(static_cast<std::uint64_t>(next) << kShift);
  list.wake();
}

sys::Result<void> WaitGroup::wait_impl(const CancelToken* token_or_null) {
  if (word_.load() == 0) return {};  // zero and unlocked: nobody will touch it on our behalf
  Waiter w("waitgroup");
  const CancelToken& token = resolve_token(w, token_or_null, "WaitGroup::wait");
  const std::uint64_t s = word_.lock();
  if ((s >> kShift) == 0) {
    word_.unlock(s);
    return {};
  }
  if (const int err = token_error(token); err != 0) {
    word_.unlock(s);
    return fail("WaitGroup::wait", err);
  }
  const int err = queue_and_wait(word_, queue_, w, s, token, keep_state);
  return err == 0 ? sys::Result<void>() : fail("WaitGroup::wait", err);
}

Latch::Latch(std::int64_t count) {
  if (count < 0) throw std::logic_error("Latch: negative count");
  wg_.add(count);
}

void Latch::count_down(std::int64_t n) {
  if (n < 0) throw std::logic_error("Latch::count_down: negative n");
  wg_.change(-n, "Latch::count_down below zero");
}

// ---- Semaphore

Semaphore::Semaphore(std::int64_t initial) {
  if (initial < 0 || initial > max_count(kShift)) throw std::logic_error("Semaphore: initial count out of range");
  word_.unlock(static_cast<std::uint64_t>(initial) << kShift);
}

Semaphore::~Semaphore() {
  if (!queue_.empty()) die("a Semaphore destroyed while parties wait on it");
}

namespace {

// Grants queued requests in order while units last; the first request that
// cannot be met stops the grants (FIFO), unless its waiter has already given
// up (it is leaving: skip it). Returns the state to publish.
std::uint64_t grant(std::uint64_t s, WaiterQueue& queue, WakeList& list, int shift, std::uint64_t waiters_bit) {
  auto units = static_cast<std::int64_t>(s >> shift);
  while (Waiter* w = queue.front()) {
    const std::int64_t need = *static_cast<const std::int64_t*>(w->slot);
    if (need > units && !w->claimed()) break;
    queue.pop_front();
    if (!w->try_claim()) continue;  // timed out or cancelled meanwhile
    units -= need;
    list.push(w);
  }
  return (static_cast<std::uint64_t>(units) << shift) | (queue.empty() ? 0 : waiters_bit);
}

}  // namespace

bool Semaphore::try_acquire(std::int64_t n) {
  if (n < 0) throw std::logic_error("Semaphore::try_acquire: negative n");
  const std::uint64_t s = word_.lock();
  if ((s & kWaiters) != 0 || static_cast<std::int64_t>(s >> kShift) < n) {
    word_.unlock(s);
    return false;
  }
  word_.unlock(s - (static_cast<std::uint64_t>(n) << kShift));
  return true;
}

sys::Result<void> Semaphore::acquire_impl(std::int64_t n, const CancelToken* token_or_null) {
  if (try_acquire(n)) return {};
  Waiter w("semaphore");
  const CancelToken& token = resolve_token(w, token_or_null, "Semaphore::acquire");
  if (const int err = token_error(token); err != 0) return fail("Semaphore::acquire", err);
  w.slot = &n;  // grant() reads the request; the units are taken by the granter
  const std::uint64_t s = word_.lock();
  if ((s & kWaiters) == 0 && static_cast<std::int64_t>(s >> kShift) >= n) {
    word_.unlock(s - (static_cast<std::uint64_t>(n) << kShift));
    return {};
  }
  WakeList list;  // leaving the head may let the requests behind us through
  const int err = queue_and_wait(word_, queue_, w, s | kWaiters, token, [&](std::uint64_t st) {
    return grant(st, queue_, list, kShift, kWaiters);
  });
  list.wake();
  return err == 0 ? sys::Result<void>() : fail("Semaphore::acquire", err);
}

void Semaphore::release(std::int64_t n) {
  if (n < 0) throw std::logic_error("Semaphore::release: negative n");
  WakeList list;
  const std::uint64_t s = word_.lock();
  const auto units = static_cast<std::int64_t>(s >> kShift);
  if (n > max_count(kShift) - units) {
    word_.unlock(s);
    throw std::logic_error("Semaphore::release: count overflow");
  }
  word_.unlock(grant(s + (static_cast<std::uint64_t>(n) << kShift), queue_, list, kShift, kWaiters));
  list.wake();
}

// ---- Event

Event::~Event() {
  if (!queue_.empty()) die("an Event destroyed while parties wait on it");
}

void Event::set() {
  if (word_.load() == kSet) return;
  WakeList list;
  const std::uint64_t s = word_.lock();
  if ((s & kSet) == 0) list.claim_all(queue_);
  word_.unlock(kSet);
  list.wake();
}

sys::Result<void> Event::wait_impl(const CancelToken* token_or_null) {
  if (word_.load() == kSet) return {};  // set and unlocked: the setter is done with it
  Waiter w("event");
  const CancelToken& token = resolve_token(w, token_or_null, "Event::wait");
  const std::uint64_t s = word_.lock();
  if ((s & kSet) != 0) {
    word_.unlock(s);
    return {};
  }
  if (const int err = token_error(token); err != 0) {
    word_.unlock(s);
    return fail("Event::wait", err);
  }
  const int err = queue_and_wait(word_, queue_, w, s, token, keep_state);
  return err == 0 ? sys::Result<void>() : fail("Event::wait", err);
}

// ---- Gate

Gate::~Gate() {
  const std::uint64_t s = word_.load();
  if ((s >> kShift) != 0) die("a Gate destroyed with holders inside");
  if (!queue_.empty()) die("a Gate destroyed while parties wait in close()");
}

sys::Result<void> Gate::enter() {
  const std::uint64_t s = word_.lock();
  if ((s & kClosed) != 0) {
    word_.unlock(s);
    return sys::Error("Gate::enter", ESHUTDOWN, nullptr, "the gate is closed");
  }
  word_.unlock(s + (std::uint64_t{1} << kShift));
  return {};
}

void Gate::leave() {
  WakeList list;
  std::uint64_t s = word_.lock();
  if ((s >> kShift) == 0) {
    word_.unlock(s);
    throw std::logic_error("Gate::leave: nobody is inside");
  }
  s -= std::uint64_t{1} << kShift;
  if ((s >> kShift) == 0) list.claim_all(queue_);  // only closers wait
  word_.unlock(s);
  list.wake();
}

sys::Result<void> Gate::close_impl(const CancelToken* token_or_null) {
  std::uint64_t s = word_.lock() | kClosed;
  if ((s >> kShift) == 0) {
    word_.unlock(s);
    return {};
  }
  word_.unlock(s);
  Waiter w("gate close");
  const CancelToken& token = resolve_token(w, token_or_null, "Gate::close");
  if (const int err = token_error(token); err != 0) return fail("Gate::close", err);
  s = word_.lock();
  if ((s >> kShift) == 0) {
    word_.unlock(s);
    return {};
  }
  const int err = queue_and_wait(word_, queue_, w, s, token, keep_state);
  return err == 0 ? sys::Result<void>() : fail("Gate::close", err);
}

}  // namespace ringo::fiber
