// See channel.h for the semantics, the invariants and the rejected designs.
//
// The shape follows Go's runtime/chan.go and select.go: every operation first
// tries to complete under the lock (a waiting peer, the buffer, closed); only
// then does it queue a node and wait. A select does that over all its
// channels at once, locked in address order: pass 1 polls the cases in a
// random order, pass 2 queues one node per case on a single Waiter, pass 3
// (after the wake) takes the nodes that lost back out of their queues.
#include "fiber/channel.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "fiber/internal/invariant.h"
#include "reactor/clock.h"
#include "reactor/loop.h"

namespace ringo {

namespace fiber::detail {
namespace {

using internal::cpu_relax;
using internal::die;

// A number in [0, n), uniform enough for a poll order (splitmix64, one state
// per thread; Lemire's multiply-shift instead of a modulo).
std::uint32_t random_below(std::uint32_t n) {
  thread_local std::uint64_t state =
      static_cast<std::uint64_t>(reactor::now_ns()) ^ reinterpret_cast<std::uintptr_t>(&state);
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<std::uint32_t>(((z >> 32) * n) >> 32);
}

const CancelToken g_own_token;  // only its address matters
const CancelToken g_no_token;   // a plain thread's: never cancelled

// A plain thread may block; a loop's thread outside a fiber must not (the
// peer it waits for may be a fiber of that very loop).
void check_may_block(const Waiter& w) {
  if (!w.is_fiber() && reactor::Loop::current() != nullptr) {
    die("a blocking channel operation or select on a loop's thread outside a fiber (it would block the loop)");
  }
}

// The token a call that has to wait uses (see kOwnToken); `w` is its waiter.
const CancelToken& token_of(const CancelToken* token, const Waiter& w) {
  if (token != ChannelBase::kOwnToken) return *token;
  // The running fiber: what this_fiber::token() returns, without its lookup.
  return w.is_fiber() ? w.fiber().fiber->token() : g_no_token;
}

}  // namespace

const CancelToken* const ChannelBase::kOwnToken = &g_own_token;

// ---- SpinLock

void SpinLock::lock_slow() noexcept {
  // Critical sections are a few dozen ns; a holder that is not running (a
  // preempted thread) is waited out by yielding instead of burning the CPU.
  constexpr int kSpins = 32;
  for (int spins = 0;; ++spins) {
    if (!locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire)) return;
    if (spins < kSpins) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

// ---- ChannelBase: one channel
//
// The helpers of the hot path are `inline` (this file is their only user):
// callgrind counts ~60 fewer instructions per unbuffered ping-pong message.

ChannelBase::~ChannelBase() {
  if (!sendq_.empty() || !recvq_.empty()) die("a Channel destroyed while a fiber or thread waits on it");
}

std::size_t ChannelBase::size() const {
  std::lock_guard guard(lock_);
  return count_;
}

bool ChannelBase::closed() const {
  std::lock_guard guard(lock_);
  return closed_;
}

inline void ChannelBase::push(void* value) {
  std::size_t tail = head_ + count_;
  if (tail >= capacity_) tail -= capacity_;
  construct(tail, value);
  ++count_;
}

inline void ChannelBase::pop(void* out) {
  take(head_, out);
  if (++head_ == capacity_) head_ = 0;
  --count_;
}

inline void ChannelBase::wake(ChanNode* node, int result) {
  if (node == nullptr) return;
  Waiter* w = node->waiter;
  w->slot = node;  // which of a select's cases won
  w->result = result;
  w->wake();  // the last touch: the party may return and go at once
}

inline int ChannelBase::try_send_locked(void* value, ChanNode** woken) {
  if (closed_) return kClosed;
  if (ChanNode* r = recvq_.claim_front()) {
    hand_over(r->elem, value);  // straight into the receiver's slot
    *woken = r;
    return 0;
  }
  if (count_ < capacity_) {
    push(value);
    return 0;
  }
  return EAGAIN;
}

inline int ChannelBase::try_recv_locked(void* out, ChanNode** woken) {
  if (ChanNode* s = sendq_.claim_front()) {
    if (capacity_ == 0) {
      hand_over(out, s->elem);
    } else {
      // A sender waits only on a full buffer: its head is ours, the sender's
      // value takes the freed place at the tail (FIFO kept).
      pop(out);
      push(s->elem);
    }
    *woken = s;
    return 0;
  }
  if (count_ > 0) {
    pop(out);
    return 0;
  }
  return closed_ ? kClosed : EAGAIN;
}

inline int ChannelBase::wait_locked(ChanQueue& queue, ChanNode& node, Waiter& waiter, const CancelToken* token) {
  check_may_block(waiter);
  node.waiter = &waiter;
  queue.push_back(node);
  lock_.unlock();
  if (const int err = waiter.wait(token_of(token, waiter)); err != 0) {
    // We claimed ourselves: nobody moved a value; leave the queue (a peer may
    // have dropped the node already).
    std::lock_guard guard(lock_);
    queue.erase(node);
    return err;
  }
  return waiter.result;  // the claimer popped the node
}

int ChannelBase::send(void* value, const CancelToken* token) {
  lock_.lock();
  ChanNode* woken = nullptr;
  int r = try_send_locked(value, &woken);
  if (r == EAGAIN && token != nullptr) {
    Waiter waiter("chan send");
    ChanNode node;
    node.elem = value;
    r = wait_locked(sendq_, node, waiter, token);
  } else {
    lock_.unlock();
    wake(woken, 0);
  }
  if (r == kClosed) throw ChannelClosed("send on closed channel");
  return r;
}

int ChannelBase::recv(void* out, const CancelToken* token) {
  lock_.lock();
  ChanNode* woken = nullptr;
  const int r = try_recv_locked(out, &woken);
  if (r == EAGAIN && token != nullptr) {
    Waiter waiter("chan recv");
    ChanNode node;
    node.elem = out;
    return wait_locked(recvq_, node, waiter, token);
  }
  lock_.unlock();
  wake(woken, 0);
  return r;
}

void ChannelBase::close() {
  ChanNode* woken = nullptr;  // claimed parties, linked through `next`
  {
    std::lock_guard guard(lock_);
    if (closed_) throw ChannelClosed("close of closed channel");
    closed_ = true;
    // At most one of the queues has parties (but a select may sit in both).
    for (ChanQueue* q : {&recvq_, &sendq_}) {
      while (ChanNode* n = q->claim_front()) {
        n->next = woken;
        woken = n;
      }
    }
  }
  while (woken != nullptr) {
    ChanNode* n = woken;
    woken = n->next;  // before the wake: the party may return at once
    wake(n, kClosed);
  }
}

// ---- select

void ChannelBase::lock_cases(std::span<SelectCase> cases, const std::uint32_t* order, std::size_t m) {
  for (std::size_t k = 0; k < m; ++k) {
    ChannelBase* c = cases[order[k]].chan_;
    if (k == 0 || c != cases[order[k - 1]].chan_) c->lock_.lock();  // the same channel twice: once
  }
}

void ChannelBase::unlock_cases(std::span<SelectCase> cases, const std::uint32_t* order, std::size_t m) {
  for (std::size_t k = m; k-- > 0;) {
    ChannelBase* c = cases[order[k]].chan_;
    if (k == 0 || c != cases[order[k - 1]].chan_) c->lock_.unlock();
  }
}

std::uint32_t ChannelBase::order_cases(std::span<SelectCase> cases, std::uint32_t* poll, std::uint32_t* locks) {
  std::uint32_t m = 0;
  for (std::uint32_t i = 0; i < cases.size(); ++i) {
    if (cases[i].chan_ == nullptr) continue;  // never ready
    const std::uint32_t j = random_below(m + 1);  // Fisher-Yates, inside out
    poll[m] = poll[j];
    poll[j] = i;
    locks[m++] = i;
  }
  std::sort(locks, locks + m, [&](std::uint32_t a, std::uint32_t b) {
    return std::less<ChannelBase*>()(cases[a].chan_, cases[b].chan_);
  });
  return m;
}

int ChannelBase::select(std::span<SelectCase> cases, const CancelToken* token, std::size_t* chosen) {
  // The poll order (random) and the lock order (by address) of the cases
  // that have a channel; on the stack for up to kInline cases.
  constexpr std::size_t kInline = 16;
  std::array<std::uint32_t, 2 * kInline> inline_orders;
  std::vector<std::uint32_t> heap_orders;
  std::uint32_t* poll = inline_orders.data();
  if (cases.size() > kInline) {
    heap_orders.resize(2 * cases.size());
    poll = heap_orders.data();
  }
  std::uint32_t* locks = poll + cases.size();
  const std::uint32_t m = order_cases(cases, poll, locks);

  // Pass 1: the first ready case in poll order.
  lock_cases(cases, locks, m);
  for (std::uint32_t k = 0; k < m; ++k) {
    SelectCase& c = cases[poll[k]];
    ChanNode* woken = nullptr;
    const int r = c.send_ ? c.chan_->try_send_locked(c.node_.elem, &woken)
                          : c.chan_->try_recv_locked(c.node_.elem, &woken);
    if (r == EAGAIN) continue;
    unlock_cases(cases, locks, m);
    wake(woken, 0);
    *chosen = poll[k];
    if (r == kClosed && c.send_) throw ChannelClosed("send on closed channel");
    return 0;  // a recv case on a closed channel: its value stays empty
  }
  if (token == nullptr) {
    unlock_cases(cases, locks, m);
    return EAGAIN;
  }
  return select_wait(cases, locks, m, token, chosen);
}

int ChannelBase::select_wait(std::span<SelectCase> cases, const std::uint32_t* locks, std::uint32_t m,
                             const CancelToken* token, std::size_t* chosen) {
  // Pass 2: one Waiter, a node in every case's queue.
  Waiter waiter("select");
  check_may_block(waiter);
  for (std::uint32_t k = 0; k < m; ++k) {
    SelectCase& c = cases[locks[k]];
    c.node_.waiter = &waiter;
    c.node_.index = locks[k];
    (c.send_ ? c.chan_->sendq_ : c.chan_->recvq_).push_back(c.node_);
  }
  unlock_cases(cases, locks, m);
  const int err = waiter.wait(token_of(token, waiter));

  // Pass 3: out of every queue (the winner's node was popped by its claimer;
  // losers may have been dropped by peers already).
  lock_cases(cases, locks, m);
  for (std::uint32_t k = 0; k < m; ++k) {
    SelectCase& c = cases[locks[k]];
    (c.send_ ? c.chan_->sendq_ : c.chan_->recvq_).erase(c.node_);
  }
  unlock_cases(cases, locks, m);
  if (err != 0) return err;
  *chosen = static_cast<ChanNode*>(waiter.slot)->index;
  if (waiter.result == kClosed && cases[*chosen].send_) throw ChannelClosed("send on closed channel");
  return 0;
}

}  // namespace fiber::detail

namespace {

sys::Result<std::size_t> select_result(std::span<SelectCase> cases, const CancelToken* token, const char* op) {
  std::size_t chosen = 0;
  if (const int r = fiber::detail::ChannelBase::select(cases, token, &chosen); r != 0) return sys::Error(op, r);
  return chosen;
}

}  // namespace

sys::Result<std::size_t> select(std::span<SelectCase> cases) {
  return select_result(cases, fiber::detail::ChannelBase::kOwnToken, "select");
}

sys::Result<std::size_t> select(std::span<SelectCase> cases, const CancelToken& token) {
  return select_result(cases, &token, "select");
}

sys::Result<std::size_t> try_select(std::span<SelectCase> cases) { return select_result(cases, nullptr, "try_select"); }

}  // namespace ringo
