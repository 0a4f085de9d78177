// See loop.h for the phases and invariants.
#include "reactor/loop.h"

#include <algorithm>
#include <csignal>
#include <thread>

#include "reactor/clock.h"
#include "syscall/log.h"

namespace ringo::reactor {
namespace {

thread_local Loop* t_current = nullptr;

// Single-writer counters: a relaxed load and store, no locked instruction.
void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// Caps how many inbox tasks one iteration runs, so a flood of posts cannot
// starve timers and I/O; the rest run next turn, without sleeping.
constexpr int kInboxBatch = 4096;

}  // namespace

sys::Result<std::unique_ptr<Loop>> Loop::create(const Options& options) {
  // A write to a socket the peer closed must fail with EPIPE, not kill the
  // server (see backend.h); sends add MSG_NOSIGNAL, write/writev cannot.
  static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  auto backend = make_backend(options.backend, options.backend_options);
  if (!backend) return backend.error();
  return std::unique_ptr<Loop>(new Loop(std::move(*backend), options));
}

sys::Result<Loop::Options> Loop::options_from_env() {
  auto kind = backend_kind_from_env();
  if (!kind) return kind.error();
  Options o;
  o.backend = *kind;
  return o;
}

Loop::Loop(std::unique_ptr<Backend> backend, const Options& options)
    : backend_(std::move(backend)), idle_spin_(options.idle_spin), index_(options.index) {}

Loop::~Loop() {
  // The backend goes first, while timers and the inbox still exist: its
  // destructor completes what is in flight (-ECANCELED), and those completion
  // functions may still use this loop. Tasks posted but never run are then
  // deleted by ~Inbox. The attachment (fiber scheduler) goes after the
  // backend, whose completions may still reach it.
  // A post() from another thread may still be between its push and its
  // wake-up; it is short and never blocks.
  while (posting_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  Loop* const saved = t_current;
  t_current = this;
  backend_.reset();
  attachment_.reset();
  t_current = saved == this ? nullptr : saved;
}

Loop* Loop::current() { return t_current; }

void Loop::run() {
  Loop* const saved = t_current;
  t_current = this;
  const int saved_index = sys::log_loop_index();
  sys::set_log_loop_index(index_);
  while (run_once()) {
  }
  sys::set_log_loop_index(saved_index);
  t_current = saved;
}

bool Loop::run_once(std::chrono::nanoseconds max_wait) {
  Loop* const saved = t_current;
  t_current = this;
  bump(counters_.iterations);
  run_ready();
  expire_timers();
  drain_inbox();
  if (!stopping_) wait_for_events(max_wait);
  t_current = saved;
  return !stopping_;
}

void Loop::stop() {
  post([this] { stopping_ = true; });
}

void Loop::post_task(InboxTask* task) {
  // Counted while this call still touches the loop: once the task is pushed,
  // the loop may run it, and whatever it wakes may end and destroy the loop
  // before the wake-up below is done (~Loop waits for the count to drop).
  posting_.fetch_add(1, std::memory_order_seq_cst);
  inbox_.push(task);
  // Dekker pairing with wait_for_events: inbox push (seq_cst exchange) then
  // this load; the loop stores sleeping_ then re-checks the inbox.
  if (sleeping_.load(std::memory_order_seq_cst) && sleeping_.exchange(false, std::memory_order_seq_cst)) {
    bump(counters_.wakeups);  // racy across posters: a statistic, not an invariant
    backend_->wake();
  }
  posting_.fetch_sub(1, std::memory_order_release);
}

void Loop::schedule(Runnable& r) {
  r.next = nullptr;
  if (ready_tail_) {
    ready_tail_->next = &r;
  } else {
    ready_head_ = &r;
  }
  ready_tail_ = &r;
}

void Loop::run_ready() {
  // Only what was ready when the phase began: a Runnable that schedules
  // itself again runs next turn, after timers and I/O had theirs.
  Runnable* r = ready_head_;
  ready_head_ = ready_tail_ = nullptr;
  while (r) {
    Runnable* next = r->next;
    r->next = nullptr;
    r->run(*r);
    r = next;
  }
}

void Loop::expire_timers() {
  if (timers_.empty()) return;
  const std::int64_t now = now_ns();
  std::uint64_t fired = 0;
  while (Timer* t = timers_.pop_expired(now)) {
    ++fired;
    t->on_fire(*t);
  }
  if (fired) bump(counters_.timers_fired, fired);
}

void Loop::drain_inbox() {
  std::uint64_t ran = 0;
  for (int i = 0; i < kInboxBatch; ++i) {
    InboxTask* task = inbox_.pop();
    if (!task) break;
    task->run();
    delete task;
    ++ran;
  }
  if (ran) bump(counters_.tasks_run, ran);
}

namespace {
constexpr std::int64_t kSpinPollGapNs = 2'000;
}  // namespace

bool Loop::spin_for_work() {
  const std::int64_t until = now_ns() + std::chrono::nanoseconds(idle_spin_).count();
  do {
    const std::size_t n = backend_->poll(std::chrono::nanoseconds(0));
    if (n > 0) bump(counters_.completions, n);
    if (n > 0 || has_immediate_work() || (timers_.top() && timers_.top()->deadline_ns <= now_ns())) {
      bump(counters_.spin_hits);
      return true;
    }
    // Between two backend polls (each a system call on io_uring) watch the
    // inbox, a load: a post from another thread (a fiber woken from another
    // loop) is then seen in tens of ns, not after the next syscall. I/O is
    // noticed at most kSpinPollGapNs late meanwhile.
    const std::int64_t next_poll = std::min(until, now_ns() + kSpinPollGapNs);
    while (now_ns() < next_poll) {
      if (!inbox_.empty()) {
        bump(counters_.spin_hits);
        return true;
      }
    }
  } while (now_ns() < until);
  return false;
}

void Loop::wait_for_events(std::chrono::nanoseconds max_wait) {
  std::chrono::nanoseconds timeout = max_wait;
  if (has_immediate_work()) {
    timeout = std::chrono::nanoseconds(0);
  } else if (const Timer* next = timers_.top()) {
    const std::chrono::nanoseconds until_timer(std::max<std::int64_t>(0, next->deadline_ns - now_ns()));
    if (timeout.count() < 0 || until_timer < timeout) timeout = until_timer;
  }
  if (timeout.count() != 0) {
    if (idle_spin_.count() > 0 && spin_for_work()) return;
    sleeping_.store(true, std::memory_order_seq_cst);
    if (!inbox_.empty()) timeout = std::chrono::nanoseconds(0);  // a post raced with us
    if (timeout.count() != 0) bump(counters_.sleeps);
  }
  const std::size_t n = backend_->poll(timeout);
  sleeping_.store(false, std::memory_order_relaxed);
  if (n) bump(counters_.completions, n);
}

LoopStats Loop::stats() const {
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {get(counters_.iterations), get(counters_.completions), get(counters_.sleeps), get(counters_.wakeups),
          get(counters_.spin_hits), get(counters_.timers_fired), get(counters_.tasks_run)};
}

}  // namespace ringo::reactor
