// Channel<T> and select: Go's channels, between fibers of one loop, of
// different loops, and plain threads, in any mix.
//
//   ringo::Channel<Job> jobs(16);                  // buffered; Channel<Job>(0): unbuffered
//   ringo::go([&] {
//     for (Job j : jobs) handle(j);                // `for j := range jobs`: until closed and drained
//   });
//   if (auto r = jobs.send(Job{42}); !r) return r.error();   // ECANCELED / ETIMEDOUT
//   jobs.close();                                  // close(jobs); a send after it throws
//
//   auto v = jobs.recv();                          // v, ok := <-jobs
//   if (!v) return v.error();                      //   cancelled, or the deadline passed
//   if (!*v) return done();                        //   closed and drained (ok == false)
//   use(**v);
//
//   sys::Result<void> r = ringo::select(           // select {
//       this_fiber::token().with_timeout(1s),      //   (optional) deadline/cancel: the Result's error
//       ringo::on_recv(jobs, [&](std::optional<Job> j) { ... }),   // case j, ok := <-jobs:
//       ringo::on_send(out, Reply{7}, [&] { ... }),                // case out <- Reply{7}:
//       ringo::on_default([&] { ... }));                           // default:
//
//   std::optional<Job> j;                          // or by index, for a dynamic set of cases
//   ringo::SelectCase cases[] = {jobs.recv_case(j), out.send_case(reply)};
//   sys::Result<std::size_t> i = ringo::select(cases);   // try_select(cases): EAGAIN = default
//
// Semantics:
//  - Unbuffered (capacity 0): a send completes only when a receiver takes the
//    value; it moves straight from the sender's variable into the receiver's
//    slot (Go's sendDirect), with no copy through the channel. Buffered: a
//    ring of `capacity` values; a send waits only when it is full.
//  - A send moves from its argument only when it succeeds: after ECANCELED,
//    ETIMEDOUT, EAGAIN (try_send) or ChannelClosed the caller still has it.
//  - close(): later receivers get the buffered values, then nullopt ("closed
//    and drained"); a send on a closed channel, and a second close(), throw
//    ChannelClosed (a std::logic_error: a program bug, as Go panics). A send
//    blocked when the channel closes throws it too; its value is not delivered.
//  - Every blocking call takes a CancelToken, by default the running fiber's
//    (this_fiber::token(); a never-cancelled one in a plain thread). The token
//    is consulted only when the call has to wait: an operation that can
//    complete at once does, even with a cancelled token (Go's select picks
//    among ready cases the same way). Cancelled or timed out, the call returns
//    ECANCELED / ETIMEDOUT and has had no effect: nothing sent, nothing taken.
//  - Errors: sys::Result, like fiber I/O (an expected outcome: a request was
//    cancelled); exceptions only for the program bugs above.
//  - select: a random case among those ready (uniform, like Go's random poll
//    order); none ready: the default, else it waits for the first to become
//    ready, the token's cancellation or its deadline. A case on a default-made
//    SelectCase is never ready (Go's nil channel). A send case on a closed
//    channel throws ChannelClosed, as a send does; a recv case on one is ready
//    (with nullopt). The same channel may appear in several cases.
//  - A blocking call on a loop's thread outside a fiber aborts: it would block
//    the loop that has to run the peer. Plain threads block (waiter.h).
//  - T must be nothrow move-constructible: values move under the channel's
//    lock, where an exception would leave the channel half updated.
//  - A Channel is neither copied nor moved (parties point to it): share it by
//    reference or through a shared_ptr (Go's chan is a reference already).
//
// Invariants (one spin lock per channel guards everything below):
//  - At most one of (waiting senders, waiting receivers) holds live parties,
//    except while a select waits with both a send and a recv case on the
//    same unbuffered channel (as in Go: it cannot match itself; the next
//    party to come matches it). A queue may also hold nodes whose Waiter was
//    claimed elsewhere (another case of its select, its token); whoever meets
//    one drops it.
//  - Buffered: receivers wait only when the buffer is empty, senders only
//    when it is full; a receiver that finds a waiting sender takes the head of
//    the full buffer and moves the sender's value to its tail, so values leave
//    in the order their sends completed. Waiting parties are served FIFO.
//  - A party waits as a node (Go's sudog) in a queue: its Waiter, and where
//    its value is (the sender's variable, or the receiver's std::optional).
//    A select puts one node per case, all on ONE Waiter: whoever claims the
//    Waiter first (waiter.h's CAS) wins it; the others find it claimed and
//    drop its node. Whoever claims a Waiter moves the value under the lock,
//    records its node and result (value, or closed) in the Waiter, and wakes
//    it after unlocking.
//  - The lock is never held across a park, a switch or a wake-up. A claimed
//    party cannot leave before its wake (waiter.h), so waking late is safe.
//  - A waiting party removes its own nodes (under the locks) before it
//    returns, woken or cancelled: no node outlives its call. A channel
//    destroyed while a party waits on it aborts (a lifetime bug).
//  - Closed: both queues are empty (close() claims and wakes every party,
//    receivers with "closed", senders with ChannelClosed) and nobody queues
//    again. The buffer may still hold values; they are received normally.
//  - Cancellation: a waiting party's token claims its own Waiter, or a peer
//    claimed it first; never both. Claimed by itself: the call returns the
//    error and nothing was moved. Claimed by a peer: the call succeeds (as if
//    the token had fired just after), so no value is ever lost or doubled.
//  - Deadlock freedom: a select locks its channels in address order, each
//    once; every other operation holds one channel's lock at a time.
//
// Rejected alternatives:
//  - std::mutex for the channel lock: 11 ns per uncontended lock+unlock on
//    the test VM against 4.3 ns for the spin lock (an xchg and a plain
//    store). Fibers of one loop never contend (no preemption, no park under
//    the lock), so the uncontended cost is what a ping-pong pays; contention
//    (threads, loops) spins briefly, then yields the CPU.
//  - Lock-free buffered channels (an MPMC ring): close and select need one
//    consistent view of the buffer and both queues, across several channels
//    (Go's hchan keeps one lock for the same reason).
//  - waiter.h's WaiterQueue: its links live in the Waiter, which can then sit
//    in one queue only; a select's Waiter sits in one per case.
//  - Waking under the lock: a foreign wake posts to the loop's inbox (an
//    allocation, maybe an eventfd write) and would lengthen every peer's wait.
//  - send(T) by value (Go copies): a cancelled send would then lose the
//    caller's value; by reference, it moves only on success.
//  - Returning ChannelClosed as a Result error: a send on a closed channel is
//    a bug in the program's ownership of the channel, not an outcome to handle.
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "fiber/waiter.h"
#include "syscall/result.h"

namespace ringo {

// A send on a closed channel, or a second close() (Go panics on both).
class ChannelClosed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class SelectCase;

namespace fiber::detail {

// Test-and-test-and-set; spins with a pause, then yields the CPU.
class SpinLock {
 public:
  void lock() noexcept {
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]] return;
    lock_slow();
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> locked_{false};
};

// One waiting party's place in a channel queue (Go's sudog).
struct ChanNode {
  Waiter* waiter = nullptr;
  void* elem = nullptr;  // a sender's T, or a receiver's std::optional<T>
  std::uint32_t index = 0;  // its select case
  ChanNode* next = nullptr;
  ChanNode* prev = nullptr;
  bool queued = false;
};

// A FIFO of ChanNodes; the channel's lock guards it.
class ChanQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  void push_back(ChanNode& n) {
    n.next = nullptr;
    n.prev = tail_;
    (tail_ != nullptr ? tail_->next : head_) = &n;
    tail_ = &n;
    n.queued = true;
  }
  // Removes `n` if it is still queued.
  void erase(ChanNode& n) {
    if (!n.queued) return;
    (n.prev != nullptr ? n.prev->next : head_) = n.next;
    (n.next != nullptr ? n.next->prev : tail_) = n.prev;
    n.next = n.prev = nullptr;
    n.queued = false;
  }
  // Pops nodes until one's Waiter can be claimed; returns that node (its
  // Waiter claimed), or null. Nodes of Waiters claimed elsewhere (another
  // case of their select won, or they gave up: they will find themselves
  // dequeued) are dropped.
  ChanNode* claim_front() {
    while (ChanNode* n = head_) {
      erase(*n);
      if (n->waiter->try_claim()) return n;
    }
    return nullptr;
  }

 private:
  ChanNode* head_ = nullptr;
  ChanNode* tail_ = nullptr;
};

// What every Channel<T> shares: the lock, the queues, the ring's bookkeeping,
// and the algorithms (channel.cc); Channel<T> supplies the element moves.
class ChannelBase {
 public:
  ChannelBase(const ChannelBase&) = delete;
  ChannelBase& operator=(const ChannelBase&) = delete;

  std::size_t capacity() const { return capacity_; }
  // Values buffered now (a snapshot, like len(ch)).
  std::size_t size() const;
  bool closed() const;
  // Any thread; wakes every waiting party (see the head comment). Throws
  // ChannelClosed if already closed.
  void close();

  // The token argument of the calls below: null (never wait), kOwnToken (the
  // running fiber's, looked up only when the call has to wait: most calls
  // never do), or the caller's.
  static const CancelToken* const kOwnToken;

  // The core of select()/try_select(). Returns 0 (the case done in *chosen),
  // EAGAIN, ECANCELED or ETIMEDOUT; throws ChannelClosed when the case chosen
  // is a send on a closed channel.
  static int select(std::span<SelectCase> cases, const CancelToken* token, std::size_t* chosen);

 protected:
  explicit ChannelBase(std::size_t capacity) : capacity_(capacity) {}
  // Aborts if a party still waits.
  ~ChannelBase();

  // The channel's half of send() and recv() (`token`: see kOwnToken).
  // send: 0, EAGAIN, ECANCELED or ETIMEDOUT; throws ChannelClosed. recv: the
  // same, or kClosed (closed and drained). `value` is a T*, `out` an empty
  // std::optional<T>*.
  int send(void* value, const CancelToken* token);
  int recv(void* out, const CancelToken* token);
  static constexpr int kClosed = -1;

  // Element moves, under the lock. construct(i, value): ring slot i <- *value
  // (moved); take(i, out): *out <- ring slot i (moved, the slot destroyed);
  // hand_over(out, value): *out <- *value (moved).
  virtual void construct(std::size_t i, void* value) noexcept = 0;
  virtual void take(std::size_t i, void* out) noexcept = 0;
  virtual void hand_over(void* out, void* value) noexcept = 0;

  const std::size_t capacity_;
  std::size_t head_ = 0;   // ring index of the oldest value
  std::size_t count_ = 0;  // values in the ring

 private:
  // Pass one of a select case, and send/recv before they wait: completes the
  // operation if it can. Returns 0/kClosed (done; *woken: a claimed node to
  // wake after unlocking, or null) or EAGAIN (it would wait).
  int try_send_locked(void* value, ChanNode** woken);
  int try_recv_locked(void* out, ChanNode** woken);
  // Queues `node` and waits for a peer or the token; `lock_` is held on
  // entry and released on return.
  int wait_locked(ChanQueue& queue, ChanNode& node, Waiter& waiter, const CancelToken* token);
  void push(void* value);
  void pop(void* out);
  static void wake(ChanNode* node, int result);
  // select's steps: fills the poll order (random) and the lock order (by
  // channel address) with the cases that have a channel, returns how many;
  // locks/unlocks those channels, each once; passes 2 and 3 (channel.cc).
  static std::uint32_t order_cases(std::span<SelectCase> cases, std::uint32_t* poll, std::uint32_t* locks);
  static void lock_cases(std::span<SelectCase> cases, const std::uint32_t* order, std::size_t m);
  static void unlock_cases(std::span<SelectCase> cases, const std::uint32_t* order, std::size_t m);
  static int select_wait(std::span<SelectCase> cases, const std::uint32_t* locks, std::uint32_t m,
                         const CancelToken* token, std::size_t* chosen);

  mutable SpinLock lock_;
  bool closed_ = false;
  ChanQueue sendq_;
  ChanQueue recvq_;
};

}  // namespace fiber::detail

// One case of select(), made by Channel<T>::recv_case/send_case; a
// default-made case is never ready. It refers to the channel and the value:
// both must outlive the select() call.
class SelectCase {
 public:
  SelectCase() = default;

 private:
  template <class T>
  friend class Channel;
  friend class fiber::detail::ChannelBase;
  SelectCase(fiber::detail::ChannelBase* chan, bool send, void* elem) : chan_(chan), send_(send) {
    node_.elem = elem;
  }

  fiber::detail::ChannelBase* chan_ = nullptr;
  bool send_ = false;
  fiber::detail::ChanNode node_;  // its place in the channel's queue while select waits
};

template <class T>
class Channel final : public fiber::detail::ChannelBase {
  static_assert(!std::is_reference_v<T> && std::is_nothrow_move_constructible_v<T> &&
                    std::is_nothrow_destructible_v<T>,
                "Channel<T>: T must be a nothrow move-constructible value type (see channel.h)");

 public:
  using value_type = T;

  // capacity 0: unbuffered.
  explicit Channel(std::size_t capacity = 0)
      : ChannelBase(capacity), ring_(capacity > 0 ? new Slot[capacity] : nullptr) {}
  ~Channel() {
    for (std::size_t k = 0; k < count_; ++k) std::destroy_at(&ring_[(head_ + k) % capacity_].value);
  }

  // ch <- value: waits for room (buffered) or a receiver (unbuffered). Moves
  // from `value` only on success. ECANCELED/ETIMEDOUT; throws ChannelClosed.
  // Without a token: the running fiber's (this_fiber::token()).
  sys::Result<void> send(T&& value) { return send_result(ChannelBase::send(&value, kOwnToken), "chan send"); }
  sys::Result<void> send(T&& value, const CancelToken& token) {
    return send_result(ChannelBase::send(&value, &token), "chan send");
  }
  sys::Result<void> send(const T& value) {
    T copy(value);
    return send(std::move(copy));
  }
  sys::Result<void> send(const T& value, const CancelToken& token) {
    T copy(value);
    return send(std::move(copy), token);
  }
  // As send(), but never waits: EAGAIN when it would.
  sys::Result<void> try_send(T&& value) { return send_result(ChannelBase::send(&value, nullptr), "chan try_send"); }
  sys::Result<void> try_send(const T& value) {
    T copy(value);
    return try_send(std::move(copy));
  }

  // v, ok := <-ch: a value; nullopt once closed and drained; ECANCELED/ETIMEDOUT.
  sys::Result<std::optional<T>> recv() { return recv_result(kOwnToken, "chan recv"); }
  sys::Result<std::optional<T>> recv(const CancelToken& token) { return recv_result(&token, "chan recv"); }
  // As recv(), but never waits: EAGAIN when it would.
  sys::Result<std::optional<T>> try_recv() { return recv_result(nullptr, "chan try_recv"); }

  // select cases. `out` is reset now; if the case is chosen it holds the
  // value, or stays empty when the channel is closed and drained. `value` is
  // moved from only if the case is chosen.
  SelectCase recv_case(std::optional<T>& out) {
    out.reset();
    return SelectCase(this, false, &out);
  }
  SelectCase send_case(T& value) { return SelectCase(this, true, &value); }

  // for (T v : ch): receives until closed and drained, or until the running
  // fiber's token fires (check this_fiber::token().error() if it matters).
  class Iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    explicit Iterator(Channel* ch) : ch_(ch) { ++*this; }
    T& operator*() const { return *value_; }
    Iterator& operator++() {
      auto r = ch_->recv();
      value_ = r.ok() ? std::move(*r) : std::nullopt;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !value_.has_value(); }

   private:
    Channel* ch_ = nullptr;
    mutable std::optional<T> value_;
  };
  Iterator begin() { return Iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  union Slot {
    Slot() {}
    ~Slot() {}
    T value;
  };

  void construct(std::size_t i, void* value) noexcept override {
    std::construct_at(&ring_[i].value, std::move(*static_cast<T*>(value)));
  }
  void take(std::size_t i, void* out) noexcept override {
    static_cast<std::optional<T>*>(out)->emplace(std::move(ring_[i].value));
    std::destroy_at(&ring_[i].value);
  }
  void hand_over(void* out, void* value) noexcept override {
    static_cast<std::optional<T>*>(out)->emplace(std::move(*static_cast<T*>(value)));
  }

  static sys::Result<void> send_result(int r, const char* op) {
    if (r == 0) return {};
    return sys::Error(op, r);
  }
  sys::Result<std::optional<T>> recv_result(const CancelToken* token, const char* op) {
    std::optional<T> out;
    const int r = ChannelBase::recv(&out, token);
    if (r != 0 && r != kClosed) return sys::Error(op, r);
    return out;  // moved (C++20 implicit move into Result's converting constructor)
  }

  std::unique_ptr<Slot[]> ring_;
};

// select over `cases`: the index of the case done, ECANCELED or ETIMEDOUT.
// Throws ChannelClosed for a chosen send case on a closed channel.
// Without a token: the running fiber's (this_fiber::token()).
sys::Result<std::size_t> select(std::span<SelectCase> cases);
sys::Result<std::size_t> select(std::span<SelectCase> cases, const CancelToken& token);
// As select(), but never waits: EAGAIN when no case is ready (Go's default).
sys::Result<std::size_t> try_select(std::span<SelectCase> cases);

// ---- select with one callback per case (see the head comment)

namespace fiber::detail {

template <class T, class F>
struct OnRecv {
  Channel<T>& chan;
  F fn;
  std::optional<T> value = std::nullopt;
  SelectCase make() { return chan.recv_case(value); }
  void fire() { fn(std::move(value)); }
};

template <class T, class F>
struct OnSend {
  Channel<T>& chan;
  T value;
  F fn;
  SelectCase make() { return chan.send_case(value); }
  void fire() { fn(); }
};

template <class F>
struct OnDefault {
  F fn;
};

template <class C>
inline constexpr bool kIsDefault = false;
template <class F>
inline constexpr bool kIsDefault<OnDefault<F>> = true;
template <class C>
inline constexpr bool kIsCase = kIsDefault<C>;
template <class T, class F>
inline constexpr bool kIsCase<OnRecv<T, F>> = true;
template <class T, class F>
inline constexpr bool kIsCase<OnSend<T, F>> = true;

template <class C>
concept SelectArm = kIsCase<std::remove_cvref_t<C>>;

template <class... Arms>
sys::Result<void> select_arms(const CancelToken* token, Arms&... arms) {
  constexpr std::size_t kDefaults = (std::size_t{kIsDefault<Arms>} + ... + 0);
  static_assert(kDefaults <= 1, "select: at most one on_default");
  constexpr std::size_t kCases = sizeof...(Arms) - kDefaults;
  std::array<SelectCase, kCases> cases;
  std::size_t k = 0;
  ([&] { if constexpr (!kIsDefault<Arms>) cases[k++] = arms.make(); }(), ...);
  std::size_t chosen = 0;
  const int r = ChannelBase::select(cases, kDefaults > 0 ? nullptr : token, &chosen);
  if (r == EAGAIN) {
    ([&] { if constexpr (kIsDefault<Arms>) arms.fn(); }(), ...);
    return {};
  }
  if (r != 0) return sys::Error("select", r);
  k = 0;
  ([&] { if constexpr (!kIsDefault<Arms>) if (k++ == chosen) arms.fire(); }(), ...);
  return {};
}

}  // namespace fiber::detail

// case v, ok := <-chan: fn(std::optional<T>), nullopt when closed and drained.
template <class T, class F>
fiber::detail::OnRecv<T, std::decay_t<F>> on_recv(Channel<T>& chan, F&& fn) {
  return {chan, std::forward<F>(fn)};
}
// case chan <- value: fn().
template <class T, class U, class F>
fiber::detail::OnSend<T, std::decay_t<F>> on_send(Channel<T>& chan, U&& value, F&& fn) {
  return {chan, T(std::forward<U>(value)), std::forward<F>(fn)};
}
// default: fn() when no case is ready (select then never waits).
template <class F>
fiber::detail::OnDefault<std::decay_t<F>> on_default(F&& fn) {
  return {std::forward<F>(fn)};
}

// Runs the callback of the case chosen (see select(span) for which); returns
// ECANCELED/ETIMEDOUT (never with an on_default).
template <fiber::detail::SelectArm... Arms>
sys::Result<void> select(const CancelToken& token, Arms&&... arms) {
  return fiber::detail::select_arms(&token, arms...);
}
template <fiber::detail::SelectArm... Arms>
sys::Result<void> select(Arms&&... arms) {
  return fiber::detail::select_arms(fiber::detail::ChannelBase::kOwnToken, arms...);
}

}  // namespace ringo
