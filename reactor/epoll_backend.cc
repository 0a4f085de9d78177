// The epoll backend: completions imitated on edge-triggered readiness (the
// contract is backend.h; the per-operation syscalls are epoll_ops.cc).
//
// How an operation travels:
//  submit   -> `submitted_` (nothing is tried: completions come only from poll)
//  poll     -> attempted once with its non-blocking syscall. Done: delivered.
//              EAGAIN: parked on its fd's read, write or poll list, with the fd
//              registered (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) once for its life.
//           -> an edge retries that direction's list in FIFO order until an op
//              gets EAGAIN again; EPOLLERR/EPOLLHUP wake both lists (the retried
//              syscalls report the error); each poll op is checked on every edge.
//           -> deadlines and timeout ops expire from a binary heap; epoll_wait
//              sleeps until min(caller's timeout, next expiry) (epoll_pwait2, ns).
//           -> cancels, close's cancellations and poll results wait in `ready_`
//              and are delivered last, in the order they were decided.
//
// Invariants:
//  - Every in-flight op is in exactly one place, named by EpollScratch::where
//    (submitted_, ready_, one fd list, or none: being attempted, or a timeout
//    op that lives in the heap only); it is also in the heap when it has a
//    deadline and is parked. Cancel and expiry unlink through `where`.
//  - An op is unlinked from everything before its final completion runs, so a
//    completion function may submit, cancel or free anything, itself included.
//    Retry loops therefore re-read the list head after each delivery.
//  - A new op on an fd whose list already holds waiters parks behind them
//    without trying: two sends never reorder their bytes.
//  - Per-fd state lives in a vector indexed by fd number and remembers the fd
//    registry's owner tag. A different nonzero tag means the number was closed
//    behind our back and reused: the old state (registration, waiters, which
//    get -ECANCELED) is dropped and the fd registered again. Tag 0 (not ours,
//    or the registry compiled out) cannot be checked, so such an fd is
//    re-registered (MOD, or ADD on ENOENT) whenever its first waiter parks.
//  - epoll_event::data carries fd and a per-registration generation, so events
//    of a previous registration (a dup of a closed fd) are ignored.
//  - Multishot accept stays parked and completes with more=true per
//    connection; cancel or deadline ends it with more=false. An accept error
//    other than EAGAIN (EMFILE...) ends it too, as on io_uring: callers
//    re-submit once they can accept again.
//  - A close op cannot be cancelled (the fd it owns would leak); it runs even
//    in the destructor, which completes everything else with -ECANCELED.
//  - accept/connect/read/write/writev have no per-call non-blocking flag, so
//    their fd is made O_NONBLOCK (shared with its dups) before the first try:
//    a blocking fd would stall the loop where io_uring would simply wait.
//  - recv_pooled parks like recv and holds a pool buffer only inside its recv
//    syscall (epoll_ops.cc); a buffer its completion function leaves in the
//    Completion goes back to the free list when the function returns.
//  - No thundering herd: each loop has its own epoll set and its own
//    SO_REUSEPORT listener, so one connection wakes one loop. A listener
//    shared by several epoll sets would need EPOLLEXCLUSIVE (Linux 4.5) on
//    each registration instead, which still wakes "one or more" waiters.
//
// Rejected: level-triggered epoll (an fd nobody reads wakes every epoll_wait;
// EPOLLONESHOT re-arms with a syscall per op); registering per op (two
// epoll_ctl per op: libuv and Go keep the registration for the fd's life); a
// hash map for fd state (fd numbers are dense: a vector is one indexed load);
// trying ops inside submit (submit must not deliver, so completions would
// queue anyway, and a loop submits just before it polls).
#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "reactor/backend.h"
#include "reactor/clock.h"
#include "reactor/internal/buffer_pool.h"
#include "reactor/internal/complete.h"
#include "reactor/internal/epoll_backend.h"
#include "syscall/epoll.h"
#include "syscall/events.h"
#include "syscall/log.h"

namespace ringo::reactor {
namespace {

using internal::BusyPoll;
using internal::epoll_scratch;
using internal::OpList;
using internal::TimerHeap;
using internal::Try;
using internal::Where;
using std::chrono::nanoseconds;

constexpr std::uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr std::uint64_t kWakeData = ~std::uint64_t{0};  // no fd has this (fds are < 2^31)
constexpr std::size_t kEventBatch = 128;
// Completions one edge may deliver for one fd direction before the rest wait
// for the next poll (a flood of connections must not starve other fds).
constexpr int kRetryBudget = 64;
// ~EpollBackend: completion functions that submit again on -ECANCELED get
// this many rounds before the leftovers are reported.
constexpr int kDrainRounds = 8;

// now + d without overflow: callers may pass nanoseconds::max() for "forever".
std::int64_t after(std::int64_t now, std::int64_t d) {
  std::int64_t sum;
  return __builtin_add_overflow(now, d, &sum) ? INT64_MAX : sum;
}

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "ringo: broken invariant: epoll backend: %s\n", what.c_str());
  std::abort();
}

class EpollBackend final : public Backend {
 public:
  EpollBackend(sys::Fd epoll, sys::Fd wake, BusyPoll busy, std::chrono::microseconds busy_usecs,
               std::unique_ptr<internal::BufferPool> pool)
      : epoll_(std::move(epoll)), wake_(std::move(wake)), busy_(busy), busy_usecs_(busy_usecs),
        pool_(std::move(pool)) {}
  ~EpollBackend() override;

  BackendKind kind() const override { return BackendKind::epoll; }
  std::string describe() const override { return internal::describe_epoll(busy_, busy_usecs_, pool_.get()); }
  void submit(Operation& op) override;
  void cancel(Operation& op) override;
  std::size_t poll(nanoseconds timeout) override;
  void wake() override { (void)sys::eventfd_write(wake_.get(), 1); }  // EAGAIN: a wake is pending anyway
  void release_buffer(const PooledBuffer& buffer) override { internal::release(pool_.get(), buffer, "epoll"); }
  std::size_t in_flight() const override { return in_flight_; }

 private:
  struct FdState {
    sys::OwnerTag tag = 0;     // registry tag when this state was set up (0: unknown)
    std::uint32_t gen = 0;     // bumped per registration; the high half of event data
    bool registered = false;
    bool nonblocking = false;  // O_NONBLOCK checked (see needs_nonblocking_fd)
    OpList readers, writers, pollers;
    bool parked() const { return !readers.empty() || !writers.empty() || !pollers.empty(); }
  };

  FdState& state(int fd);
  OpList& fd_list(int fd, Where where);
  FdState& check_stale(int fd);
  sys::Result<void> register_fd(int fd);
  void cancel_parked(int fd);
  void forget_fd(int fd);

  std::size_t attempt_submitted();
  std::size_t attempt(Operation& op);
  std::size_t park(Operation& op, Where where);
  void link(Operation& op, Where where);
  void do_close(Operation& op);
  std::size_t wait_and_dispatch(nanoseconds wait, bool& stop);
  std::size_t dispatch(const epoll_event& ev, bool& stop);
  std::size_t retry(int fd, Where where);
  void check_pollers(int fd);
  std::size_t retry_backlog();
  std::size_t expire_timers();
  std::size_t deliver_ready();
  nanoseconds wait_for(std::int64_t until_ns) const;

  void unlink(Operation& op);
  void queue_ready(Operation& op, std::int32_t result);
  void finish(Operation& op, Completion& c);
  void finish(Operation& op, std::int32_t result) {
    Completion c;
    c.result = result;
    finish(op, c);
  }
  void cancel_everything();

  sys::Fd epoll_;
  sys::Fd wake_;  // eventfd in the epoll set; wake() writes it, poll drains it
  BusyPoll busy_;
  std::chrono::microseconds busy_usecs_;
  std::unique_ptr<internal::BufferPool> pool_;  // recv_pooled's; null: none
  std::vector<FdState> fds_;
  OpList submitted_;
  OpList ready_;
  TimerHeap timers_;
  std::vector<int> backlog_;  // fds whose retry ran out of budget
  std::vector<int> backlog_now_;
  std::uint64_t seq_ = 0;
  std::size_t in_flight_ = 0;
  std::array<epoll_event, kEventBatch> events_{};
};

// ---- submit, cancel, poll: the contract --------------------------------------

void EpollBackend::submit(Operation& op) {
  if (op.in_flight()) broken(fmt::format("submit of a {} operation already in flight", to_string(op.kind)));
  if (op.on_complete == nullptr) broken(fmt::format("submit of a {} operation without on_complete", to_string(op.kind)));
  auto& b = op.backend_state;
  b.phase = internal::kPending;
  b.cancel_requested = false;
  b.heap_index = 0;
  internal::reset_epoll_scratch(op);
  epoll_scratch(op).seq = ++seq_;
  // Deadlines count from submit, as io_uring's linked timeout does from
  // submission; the heap only takes ops once they are parked.
  if (op.kind == OpKind::timeout) {
    b.when_ns = after(now_ns(), std::max<std::int64_t>(op.timeout.count(), 0));
  } else if (op.deadline.count() >= 0 && op.kind != OpKind::nop && op.kind != OpKind::close) {
    b.when_ns = after(now_ns(), op.deadline.count());
  }
  ++in_flight_;
  if (op.kind == OpKind::recv_pooled && !pool_) return queue_ready(op, -EOPNOTSUPP);  // as io_uring's submit
  submitted_.push_back(op);
  epoll_scratch(op).where = Where::submitted;
}

void EpollBackend::cancel(Operation& op) {
  if (!op.in_flight()) return;
  op.backend_state.cancel_requested = true;
  const Where where = epoll_scratch(op).where;
  if (where == Where::ready) return;  // its result is decided and on its way
  // A close always runs: cancelling it would leak the descriptor it owns.
  if (op.kind == OpKind::close) return;
  // Neither listed nor timed: being attempted right now, it completes by itself.
  if (where == Where::none && op.backend_state.heap_index == 0) return;
  unlink(op);
  queue_ready(op, -ECANCELED);
}

std::size_t EpollBackend::poll(nanoseconds timeout) {
  const std::int64_t until = timeout.count() < 0 ? -1 : after(now_ns(), timeout.count());
  std::size_t delivered = attempt_submitted();
  delivered += retry_backlog();
  for (;;) {
    const bool busy = delivered > 0 || !ready_.empty() || !submitted_.empty() || !backlog_.empty();
    bool stop = false;  // woken, or interrupted by a signal
    delivered += wait_and_dispatch(busy ? nanoseconds{0} : wait_for(until), stop);
    delivered += expire_timers();
    delivered += deliver_ready();
    // An edge that completes nothing (EPOLLOUT on a socket that only has a
    // reader) is no reason to return: the contract waits for a completion.
    if (delivered > 0 || stop || timeout.count() == 0) return delivered;
    if (until >= 0 && now_ns() >= until) return delivered;
  }
}

nanoseconds EpollBackend::wait_for(std::int64_t until_ns) const {
  const std::int64_t now = now_ns();
  std::int64_t wait = until_ns < 0 ? -1 : std::max<std::int64_t>(until_ns - now, 0);
  if (!timers_.empty()) {
    const std::int64_t next = std::max<std::int64_t>(timers_.top()->backend_state.when_ns - now, 0);
    wait = wait < 0 ? next : std::min(wait, next);
  }
  return nanoseconds{wait};
}

EpollBackend::~EpollBackend() {
  for (int round = 0; in_flight_ > 0 && round < kDrainRounds; ++round) {
    cancel_everything();
    deliver_ready();
  }
  if (in_flight_ > 0) {
    sys::log(sys::LogLevel::error,
             "epoll backend destroyed with {} operations in flight: their completion functions kept "
             "submitting after -ECANCELED",
             in_flight_);
  }
}

void EpollBackend::cancel_everything() {
  while (Operation* op = submitted_.pop_front()) {
    epoll_scratch(*op).where = Where::none;
    op->backend_state.cancel_requested = true;
    if (op->kind == OpKind::close) {
      do_close(*op);  // its descriptor must not leak
    } else {
      queue_ready(*op, -ECANCELED);
    }
  }
  for (std::size_t fd = 0; fd < fds_.size(); ++fd) cancel_parked(static_cast<int>(fd));
  while (!timers_.empty()) {
    Operation& op = *timers_.top();
    op.backend_state.cancel_requested = true;
    unlink(op);
    queue_ready(op, -ECANCELED);
  }
}

// ---- transitions ---------------------------------------------------------------

void EpollBackend::unlink(Operation& op) {
  auto& s = epoll_scratch(op);
  switch (s.where) {
    case Where::none: break;
    case Where::submitted: submitted_.remove(op); break;
    case Where::ready: ready_.remove(op); break;
    case Where::readers:
    case Where::writers:
    case Where::pollers: fd_list(op.fd, s.where).remove(op); break;
  }
  s.where = Where::none;
  if (op.backend_state.heap_index != 0) timers_.remove(op);
}

void EpollBackend::queue_ready(Operation& op, std::int32_t result) {
  auto& s = epoll_scratch(op);
  s.result = result;
  s.where = Where::ready;
  ready_.push_back(op);
}

void EpollBackend::finish(Operation& op, Completion& c) {
  if (!c.more) --in_flight_;
  internal::deliver(op, c);
  if (!c.buffer.empty()) pool_->release(c.buffer);  // not taken: back to the pool
}

std::size_t EpollBackend::deliver_ready() {
  std::size_t delivered = 0;
  // Only what was ready on entry: cancels issued by these completion
  // functions wait for the next poll, so this loop always ends.
  for (std::size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
    Operation& op = *ready_.pop_front();
    epoll_scratch(op).where = Where::none;
    finish(op, epoll_scratch(op).result);
    ++delivered;
  }
  return delivered;
}

std::size_t EpollBackend::expire_timers() {
  if (timers_.empty()) return 0;
  const std::int64_t now = now_ns();
  std::size_t delivered = 0;
  // Completion functions cannot add to the heap (their submits wait in
  // submitted_), so this ends.
  while (!timers_.empty() && timers_.top()->backend_state.when_ns <= now) {
    Operation& op = *timers_.top();
    unlink(op);
    finish(op, op.kind == OpKind::timeout ? 0 : -ETIMEDOUT);
    ++delivered;
  }
  return delivered;
}

// ---- attempts ------------------------------------------------------------------

std::size_t EpollBackend::attempt_submitted() {
  std::size_t delivered = 0;
  // Only what was queued on entry: ops that completion functions submit now
  // wait for the next poll, as io_uring's next submit.
  for (std::size_t n = submitted_.size(); n > 0 && !submitted_.empty(); --n) {
    Operation& op = *submitted_.pop_front();
    epoll_scratch(op).where = Where::none;
    delivered += attempt(op);
  }
  return delivered;
}

std::size_t EpollBackend::attempt(Operation& op) {
  switch (op.kind) {
    case OpKind::nop: finish(op, 0); return 1;
    case OpKind::timeout: timers_.push(op); return 0;
    case OpKind::close: do_close(op); return 0;
    default: break;
  }
  if (op.fd < 0) {
    finish(op, -EBADF);
    return 1;
  }
  FdState& st = check_stale(op.fd);
  // Before any attempt, this one or a retry after the waiters ahead of it.
  if (internal::needs_nonblocking_fd(op.kind) && !st.nonblocking) {
    internal::make_nonblocking(op.fd);
    st.nonblocking = true;
  }
  const Where where = internal::park_list(op.kind);
  // Waiters ahead: queue behind them rather than overtake (byte order of sends).
  if (where != Where::pollers && !fd_list(op.fd, where).empty()) return park(op, where);
  Completion c;
  if (internal::try_operation(op, c, pool_.get()) == Try::again) return park(op, where);
  if (!c.more) {
    finish(op, c);
    return 1;
  }
  // Multishot accept got a connection: it keeps accepting, parked first so
  // that a cancel from the completion function finds it.
  if (!register_fd(op.fd)) {
    c.more = false;  // cannot wait for the next one: end it here, with this connection
    finish(op, c);
    return 1;
  }
  link(op, where);
  finish(op, c);
  return 1 + retry(op.fd, where);
}

std::size_t EpollBackend::park(Operation& op, Where where) {
  if (sys::Result<void> r = register_fd(op.fd); !r) {
    finish(op, -r.error().errnum());  // ENOSPC (max_user_watches), ENOMEM, EPERM (a regular file)
    return 1;
  }
  link(op, where);
  return 0;
}

void EpollBackend::link(Operation& op, Where where) {
  epoll_scratch(op).where = where;
  fd_list(op.fd, where).push_back(op);
  if (op.deadline.count() >= 0) timers_.push(op);
}

// Cancels what waits on the fd, then closes it; the cancellations are
// delivered before the close's own completion. A tag the
// registry refuses means the caller does not own the fd: its owner's waiters
// and registration are left alone and only the refusal (-EBADF) comes back.
void EpollBackend::do_close(Operation& op) {
  const int fd = op.fd;
  if (fd < 0) {
    queue_ready(op, -EBADF);
    return;
  }
  if (!sys::fd_registry::kEnabled || (op.close_tag != 0 && sys::fd_registry::tag_of(fd) == op.close_tag)) {
    forget_fd(fd);
  }
  const sys::Result<void> r = sys::close_owned(fd, op.close_tag);
  queue_ready(op, r ? 0 : -r.error().errnum());
}

// ---- per-fd state and registration ----------------------------------------------

EpollBackend::FdState& EpollBackend::state(int fd) {
  const auto i = static_cast<std::size_t>(fd);
  if (i >= fds_.size()) fds_.resize(std::max(i + 1, fds_.size() * 2));
  return fds_[i];
}

OpList& EpollBackend::fd_list(int fd, Where where) {
  FdState& st = fds_[static_cast<std::size_t>(fd)];
  return where == Where::readers ? st.readers : where == Where::writers ? st.writers : st.pollers;
}

// A different nonzero owner tag: the number was closed behind our back and
// now names another file. Its waiters belonged to the old file, which is gone
// from the epoll set with it (unless dup'ed, and then gen filters its events).
EpollBackend::FdState& EpollBackend::check_stale(int fd) {
  FdState& st = state(fd);
  const sys::OwnerTag tag = sys::fd_registry::tag_of(fd);
  if (tag == st.tag) return st;
  if (tag != 0) {
    if (st.parked()) {
      static std::atomic<bool> logged{false};
      if (!logged.exchange(true, std::memory_order_relaxed)) {
        sys::log(sys::LogLevel::warn,
                 "epoll: fd {} was closed with operations in flight and its number reused; they complete "
                 "with ECANCELED (close such fds with a close operation)",
                 fd);
      }
      cancel_parked(fd);
    }
    st.registered = false;
  }
  // Tag 0 now: ownership left the framework (release) or the fd was closed;
  // registration is re-checked when a waiter parks (register_fd).
  st.nonblocking = false;
  st.tag = tag;
  return st;
}

sys::Result<void> EpollBackend::register_fd(int fd) {
  FdState& st = check_stale(fd);
  if (st.registered && (st.tag != 0 || st.parked())) return sys::ok();
  // Unregistered, or tag 0 with nothing parked, where we cannot tell whether
  // the number still names the file we registered: (re)register. MOD first
  // when we think it is there (one syscall in the usual case).
  const std::uint32_t gen = st.gen + 1;
  const std::uint64_t data = (std::uint64_t{gen} << 32) | static_cast<std::uint32_t>(fd);
  const int first = st.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  sys::Result<void> r = sys::epoll_ctl(epoll_.get(), first, fd, kEvents, data);
  if (!r && r.error().is(st.registered ? ENOENT : EEXIST)) {
    r = sys::epoll_ctl(epoll_.get(), st.registered ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, kEvents, data);
  }
  if (!r) return r;
  st.gen = gen;
  st.registered = true;
  if (busy_ == BusyPoll::per_socket) internal::apply_socket_busy_poll(fd, busy_usecs_);
  return sys::ok();
}

// Waiters of `fd` get -ECANCELED (queued, in list order).
void EpollBackend::cancel_parked(int fd) {
  for (Where where : {Where::readers, Where::writers, Where::pollers}) {
    while (Operation* op = fd_list(fd, where).front()) {
      op->backend_state.cancel_requested = true;
      unlink(*op);
      queue_ready(*op, -ECANCELED);
    }
  }
}

void EpollBackend::forget_fd(int fd) {
  if (static_cast<std::size_t>(fd) >= fds_.size()) return;
  cancel_parked(fd);
  FdState& st = fds_[static_cast<std::size_t>(fd)];
  if (st.registered) (void)sys::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, 0, 0);  // close would drop it anyway
  const std::uint32_t gen = st.gen;
  st = FdState{};
  st.gen = gen;  // generations never repeat for a number
}

// ---- events ----------------------------------------------------------------------

std::size_t EpollBackend::wait_and_dispatch(nanoseconds wait, bool& stop) {
  sys::Result<std::size_t> n = sys::epoll_wait(epoll_.get(), events_, wait);
  if (!n) {
    if (n.error().is(EINTR)) {
      stop = true;  // a signal: let the caller look at whatever it set
      return 0;
    }
    broken(n.error().message());
  }
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < *n; ++i) delivered += dispatch(events_[i], stop);
  return delivered;
}

std::size_t EpollBackend::dispatch(const epoll_event& ev, bool& stop) {
  if (ev.data.u64 == kWakeData) {
    (void)sys::eventfd_read(wake_.get());  // resets the counter; EAGAIN: drained already
    stop = true;
    return 0;
  }
  const auto fd = static_cast<int>(ev.data.u64 & 0xffffffffu);
  const auto gen = static_cast<std::uint32_t>(ev.data.u64 >> 32);
  if (static_cast<std::size_t>(fd) >= fds_.size()) return 0;
  if (const FdState& st = fds_[static_cast<std::size_t>(fd)]; !st.registered || st.gen != gen) return 0;
  std::size_t delivered = 0;
  if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) delivered += retry(fd, Where::readers);
  if (ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) delivered += retry(fd, Where::writers);
  check_pollers(fd);
  return delivered;
}

// FIFO: the first waiter takes what the edge brought; the next is tried only
// if the first completed. The head is re-read after every delivery, since a
// completion function may cancel the waiters behind it.
std::size_t EpollBackend::retry(int fd, Where where) {
  std::size_t delivered = 0;
  for (int budget = kRetryBudget; budget > 0; --budget) {
    Operation* op = fd_list(fd, where).front();
    if (op == nullptr) return delivered;
    Completion c;
    if (internal::try_operation(*op, c, pool_.get()) == Try::again) return delivered;
    if (!c.more) unlink(*op);
    finish(*op, c);
    ++delivered;
  }
  backlog_.push_back(fd);  // more may be ready, but no new edge will say so
  return delivered;
}

// Poll ops wait for different masks, so each is checked; their results wait
// in ready_ (no completion function runs while the list is walked).
void EpollBackend::check_pollers(int fd) {
  Operation* op = fd_list(fd, Where::pollers).front();
  while (op != nullptr) {
    Operation* next = op->backend_state.next;
    Completion c;
    if (internal::try_operation(*op, c, pool_.get()) == Try::done) {
      unlink(*op);
      queue_ready(*op, c.result);
    }
    op = next;
  }
}

std::size_t EpollBackend::retry_backlog() {
  if (backlog_.empty()) return 0;
  backlog_now_.clear();
  backlog_now_.swap(backlog_);
  std::size_t delivered = 0;
  for (int fd : backlog_now_) {
    if (!fds_[static_cast<std::size_t>(fd)].registered) continue;  // closed meanwhile
    delivered += retry(fd, Where::readers);
    delivered += retry(fd, Where::writers);
  }
  return delivered;
}

}  // namespace

sys::Result<std::unique_ptr<Backend>> make_epoll_backend(const BackendOptions& options) {
  auto pool = internal::BufferPool::create(options, /*free_list=*/true);
  if (!pool) return pool.error();
  sys::Result<sys::Fd> epoll = sys::epoll_create();
  if (!epoll) return epoll.error();
  epoll->set_owner("epoll backend");
  sys::Result<sys::Fd> wake = sys::eventfd(0, EFD_NONBLOCK);
  if (!wake) return wake.error();
  wake->set_owner("epoll wake");
  if (sys::Result<void> r = sys::epoll_ctl(epoll->get(), EPOLL_CTL_ADD, wake->get(), EPOLLIN | EPOLLET, kWakeData);
      !r) {
    return r.error();
  }
  const BusyPoll busy = internal::apply_busy_poll(epoll->get(), options.epoll_busy_poll);
  std::unique_ptr<Backend> backend = std::make_unique<EpollBackend>(std::move(*epoll), std::move(*wake), busy,
                                                                    options.epoll_busy_poll, std::move(*pool));
  return sys::Result<std::unique_ptr<Backend>>(std::move(backend));
}

}  // namespace ringo::reactor
