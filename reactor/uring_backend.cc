// The io_uring backend's ring: setup, submission with a backlog for a full
// SQ, one io_uring_enter per loop turn, reaping, wake-ups and shutdown. What
// each Operation's SQEs are, and what its results mean, is uring_ops.cc's.
//
// Setup keeps the best the kernel offers (SINGLE_ISSUER + DEFER_TASKRUN, else
// COOP_TASKRUN + TASKRUN_FLAG, else plain; CQSIZE = 4 x entries, SUBMIT_ALL;
// fewer flags on EINVAL), then checks every opcode Ringo needs and the 5.19
// cancel flags, so that make_backend(auto) falls back to epoll with a reason.
// submit() and cancel() only fill SQEs; poll() submits and waits in one
// io_uring_enter, then reaps every ready CQE in batches. With a pool
// (BackendOptions::pool_buffers), recv_pooled receives into a provided buffer
// ring (uring_buf_ring.cc): idle connections hold no buffer.
//
// Invariants:
//  - user_data is the Operation's address, or a reserved value < 8 for SQEs
//    whose CQE is ignored (linked timeouts, cancels) or internal (the wake
//    read). An Operation has at most one request in the kernel, so its CQEs
//    are its own; a multishot accept's carry IORING_CQE_F_MORE until the last.
//  - Phases: kPending: SQEs prepared (in the SQ or the kernel). kQueued: on
//    the backlog waiting for SQ room, unseen by the kernel. kCancelling: in
//    the kernel, on the backlog waiting for room for its ASYNC_CANCEL. kLocal:
//    finished without the kernel (a refused close), result in when_ns. The
//    backlog is FIFO and, while it holds a kQueued op, new ops queue behind
//    it: two sends (or a send and a close) on one socket keep their order.
//  - A chain (op + LINK_TIMEOUT, CANCEL_FD + CLOSE) is prepared only when the
//    SQ has room for all of it: a link split over two enters issues half-built.
//  - A cancel SQE follows its op's SQE in ring order, and SQEs issue in ring
//    order: it cannot miss an op still unsubmitted, nor hit a later reuse of
//    the same Operation (whose SQE comes after it).
//  - in_flight_ counts ops from submit() to their final completion, backlog
//    included. Shutdown (the destructor) cancels everything in one SQE and
//    delivers every final completion before the ring goes.
//  - A CQE's provided buffer is lent in Completion::buffer and, if the
//    completion function leaves it there, goes back to the ring right after.
//    The ring is unregistered and unmapped after shutdown, before the ring
//    goes; if shutdown gave up with ops in flight, its memory is left mapped
//    (a kernel still writing into freed memory is worse than a leak).
//  - One thread creates, uses and destroys it: SINGLE_ISSUER binds the ring to
//    its creator (an enter from another thread is EEXIST, which aborts).
//  - The wake eventfd is opened blocking: a kernel without FMODE_NOWAIT on
//    eventfd parks its read in io-wq instead of failing it -EAGAIN.
//
// Rejected: io_uring_submit() in submit() (a syscall per op, not per turn);
// delivering inside io_uring_for_each_cqe (callbacks would run with CQE slots
// held; ours are copied out, the head advanced per batch); a list of
// in-flight ops for shutdown (IORING_ASYNC_CANCEL_ANY is one SQE); dropping
// an op when the SQ stays full (the backlog keeps it); registered ring fds
// (bound to the registering thread; later, maybe).
#include <liburing.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "reactor/backend.h"
#include "reactor/clock.h"
#include "reactor/internal/complete.h"
#include "reactor/internal/uring_backend.h"
#include "syscall/events.h"
#include "syscall/log.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;

constexpr std::uint8_t kLocal = 4;  // beyond complete.h's phases (head comment)

// One attempt per line, best first; EINVAL moves to the next (an older kernel).
constexpr unsigned kSetupBase = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
constexpr unsigned kSetupLadder[] = {
    kSetupBase | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,                     // 6.1
    kSetupBase | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,  // 6.0
    kSetupBase | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,                       // 5.19
    kSetupBase,                                                                               // 5.18
    IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
};

struct Named { unsigned value; const char* name; };  // an opcode or a setup flag
#define RINGO_OP(name) {name, #name}
constexpr Named kNeededOps[] = {
    RINGO_OP(IORING_OP_ACCEPT),   RINGO_OP(IORING_OP_CONNECT),      RINGO_OP(IORING_OP_RECV),
    RINGO_OP(IORING_OP_SEND),     RINGO_OP(IORING_OP_SENDMSG),      RINGO_OP(IORING_OP_WRITEV),
    RINGO_OP(IORING_OP_READ),     RINGO_OP(IORING_OP_WRITE),        RINGO_OP(IORING_OP_POLL_ADD),
    RINGO_OP(IORING_OP_CLOSE),    RINGO_OP(IORING_OP_TIMEOUT),      RINGO_OP(IORING_OP_LINK_TIMEOUT),
    RINGO_OP(IORING_OP_ASYNC_CANCEL), RINGO_OP(IORING_OP_NOP),
};
#undef RINGO_OP

const char* setup_hint(int err) {
  if (err == ENOMEM) {
    return "ring memory is locked memory: raise RLIMIT_MEMLOCK (ulimit -l) on kernels before 5.12, "
           "or lower ring_entries";
  }
  if (err == EPERM) return "io_uring is disabled (kernel.io_uring_disabled sysctl or a seccomp filter)";
  if (err == ENOSYS) return "kernel without io_uring";
  if (err == EINVAL) return "the kernel refused every flag set tried (ring_entries must be at least 1)";
  return nullptr;
}

class UringBackend final : public Backend {
 public:
  ~UringBackend() override;

  sys::Result<void> init(const BackendOptions& options);

  BackendKind kind() const override { return BackendKind::io_uring; }
  std::string describe() const override;
  void submit(Operation& op) override;
  void cancel(Operation& op) override;
  std::size_t poll(std::chrono::nanoseconds timeout) override;
  void wake() override { (void)sys::eventfd_write(wake_fd_.get(), 1); }
  void release_buffer(const PooledBuffer& buffer) override;
  std::size_t in_flight() const override { return in_flight_; }

 private:
  sys::Result<void> setup_ring(const BackendOptions& options);
  sys::Result<void> probe_opcodes();
  sys::Result<void> probe_cancel_fd();

  bool reserve(unsigned n);
  bool issue(Operation& op);
  bool issue_cancel(Operation& op);
  void arm_wake();
  void finish_local(Operation& op, std::int32_t result);

  void insert(Operation& op, std::uint8_t phase, Operation* next);
  void push_back(Operation& op, std::uint8_t phase) { insert(op, phase, nullptr); }
  void push_front(Operation& op, std::uint8_t phase) { insert(op, phase, backlog_head_); }
  void unlink(Operation& op);
  std::size_t drain_backlog();

  int enter(std::chrono::nanoseconds timeout);
  void check_enter(int rc);
  std::size_t reap();
  std::size_t dispatch(std::uint64_t user_data, std::int32_t res, std::uint32_t flags);
  bool shutdown();

  io_uring ring_{};
  bool ring_live_ = false;
  unsigned setup_flags_ = 0;
  sys::Fd ring_fd_;  // registered only: io_uring_queue_exit closes it
  sys::Fd wake_fd_;
  std::uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  bool shutting_down_ = false;
  std::size_t in_flight_ = 0;
  Operation* backlog_head_ = nullptr;
  Operation* backlog_tail_ = nullptr;
  std::size_t backlog_size_ = 0;
  std::size_t backlog_queued_ = 0;  // kQueued entries: new ops queue behind them
  std::unique_ptr<uring::BufRing> buf_ring_;  // recv_pooled's pool; null: none
};

// ---- setup ----------------------------------------------------------------

sys::Result<void> UringBackend::init(const BackendOptions& options) {
  auto pool = internal::BufferPool::create(options, /*free_list=*/false);  // checks the options first
  if (!pool) return pool.error();
  if (auto r = setup_ring(options); !r) return r;
  if (auto r = probe_opcodes(); !r) return r;
  // Blocking on purpose (see the head comment); EFD_CLOEXEC is always added.
  auto wake = sys::eventfd(0, 0);
  if (!wake) return wake.error();
  wake_fd_ = std::move(*wake);
  wake_fd_.set_owner("io_uring wake");
  if (auto r = probe_cancel_fd(); !r) return r;
  if (*pool) {
    auto buf_ring = uring::BufRing::create(ring_, std::move(*pool));
    if (!buf_ring) return buf_ring.error();
    buf_ring_ = std::move(*buf_ring);
  }
  arm_wake();
  return sys::ok();
}

sys::Result<void> UringBackend::setup_ring(const BackendOptions& options) {
  const std::uint64_t cq = std::uint64_t{options.ring_entries} * 4;
  int rc = -EINVAL;
  for (unsigned flags : kSetupLadder) {
    io_uring_params params{};
    params.flags = flags;
    params.cq_entries = cq > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(cq);
    rc = io_uring_queue_init_params(options.ring_entries, &ring_, &params);
    if (rc == 0) {
      setup_flags_ = flags;
      break;
    }
    if (rc != -EINVAL) break;
  }
  if (rc != 0) return sys::Error("io_uring_setup", -rc, nullptr, setup_hint(-rc));
  ring_live_ = true;
  ring_fd_ = sys::Fd::adopt(ring_.ring_fd, sys::FdKind::io_uring, RINGO_HERE, "io_uring");
  return sys::ok();
}

sys::Result<void> UringBackend::probe_opcodes() {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (!probe) {
    return sys::Error("io_uring_register", EOPNOTSUPP, "IORING_REGISTER_PROBE", "kernel before 5.6");
  }
  const char* missing = nullptr;
  for (const Named& op : kNeededOps) {
    if (!io_uring_opcode_supported(probe, static_cast<int>(op.value))) {
      missing = op.name;
      break;
    }
  }
  io_uring_free_probe(probe);
  if (missing) return sys::Error("io_uring", EOPNOTSUPP, missing, "the kernel lacks an operation Ringo needs");
  return sys::ok();
}

// CANCEL_FD and CANCEL_ALL/ANY (5.19, like multishot accept) cannot be probed
// by opcode: try one on the idle wake eventfd. Old kernels say -EINVAL.
sys::Result<void> UringBackend::probe_cancel_fd() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_cancel_fd(sqe, wake_fd_.get(), IORING_ASYNC_CANCEL_ALL);
  sqe->user_data = uring::kProbeData;
  int rc = io_uring_submit_and_wait(&ring_, 1);
  io_uring_cqe* cqe = nullptr;
  if (rc >= 0) rc = io_uring_peek_cqe(&ring_, &cqe);
  if (rc < 0) return sys::Error("io_uring_enter", -rc, "IORING_ASYNC_CANCEL_FD probe");
  const int res = cqe->res;
  io_uring_cqe_seen(&ring_, cqe);
  if (res == -EINVAL) {
    return sys::Error("io_uring", EINVAL, "IORING_ASYNC_CANCEL_FD",
                      "kernel before 5.19: cannot cancel the operations of a closing descriptor");
  }
  return sys::ok();  // the count of cancelled requests (0), or -ENOENT
}

std::string UringBackend::describe() const {
  static constexpr Named kFlags[] = {
      {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"}, {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},   {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
      {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"}};
  std::string out = "io_uring (";
  for (const Named& f : kFlags) {
    if (setup_flags_ & f.value) out.append(f.name).append(", ");
  }
  out += std::to_string(ring_.sq.ring_entries) + " entries, cq " + std::to_string(ring_.cq.ring_entries);
  if (buf_ring_) out += ", " + buf_ring_->describe();
  return out + ")";
}

// ---- submission -----------------------------------------------------------

// Makes room for `n` consecutive SQEs, pushing what is queued to the kernel
// (without waiting) when the SQ is full.
bool UringBackend::reserve(unsigned n) {
  if (io_uring_sq_space_left(&ring_) >= n) return true;
  check_enter(io_uring_submit(&ring_));
  return io_uring_sq_space_left(&ring_) >= n;
}

void UringBackend::submit(Operation& op) {
  auto& st = op.backend_state;
  if (st.phase != internal::kIdle) {
    sys::log(sys::LogLevel::error, "io_uring backend: {} operation submitted again before its final completion",
             to_string(op.kind));
    std::abort();
  }
  st.cancel_requested = false;
  ++in_flight_;
  if (shutting_down_ && op.kind != OpKind::close) return finish_local(op, -ECANCELED);
  if (op.kind == OpKind::recv_pooled && !buf_ring_) return finish_local(op, -EOPNOTSUPP);
  if (uring::has_deadline(op)) st.when_ns = now_ns() + op.deadline.count();
  if (backlog_queued_ > 0 || !issue(op)) push_back(op, internal::kQueued);
}

// Prepares op's SQE chain. False when the SQ has no room even after a flush.
bool UringBackend::issue(Operation& op) {
  const bool deadline = uring::has_deadline(op);
  const bool is_close = op.kind == OpKind::close;
  if (!reserve(1 + (deadline || is_close ? 1 : 0))) return false;
  if (is_close) {
    // The registry checks the owner tag before the kernel sees the close: a
    // refused close must leave the descriptor (someone else's now) alone.
    if (!sys::fd_registry::on_close(op.fd, op.close_tag, RINGO_HERE)) {
      finish_local(op, -EBADF);
      return true;
    }
    // Ops in flight on the fd complete -ECANCELED (5.19). Not linked: SQEs
    // issue in ring order, and a hard link would defer the close to task work.
    uring::prep_cancel_fd(io_uring_get_sqe(&ring_), op.fd);
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // Not a kind: a corrupted Operation; the slot becomes an ignored NOP.
  if (!uring::prep_op(sqe, op, buf_ring_ ? buf_ring_->buffer_size() : 0)) {
    io_uring_prep_nop(sqe);
    sqe->user_data = uring::kIgnoredData;
    finish_local(op, -EINVAL);
    return true;
  }
  sqe->user_data = reinterpret_cast<std::uintptr_t>(&op);
  if (deadline) uring::prep_deadline(sqe, io_uring_get_sqe(&ring_), op, op.backend_state.when_ns - now_ns());
  op.backend_state.phase = internal::kPending;
  return true;
}

bool UringBackend::issue_cancel(Operation& op) {
  if (!reserve(1)) return false;
  uring::prep_cancel_op(io_uring_get_sqe(&ring_), op);
  return true;
}

void UringBackend::cancel(Operation& op) {
  auto& st = op.backend_state;
  // A close is not cancellable: it finishes promptly with its real result,
  // and a cancelled close would leak the descriptor it unregistered.
  if (op.kind == OpKind::close || st.cancel_requested) return;
  if (st.phase == internal::kQueued) {
    st.cancel_requested = true;  // never reached the kernel: drain_backlog delivers -ECANCELED
  } else if (st.phase == internal::kPending) {
    st.cancel_requested = true;
    if (!issue_cancel(op)) push_back(op, internal::kCancelling);
  }
}

void UringBackend::arm_wake() {
  if (wake_armed_ || shutting_down_ || !reserve(1)) return;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_buf_, sizeof(wake_buf_), Operation::kCurrentPosition);
  sqe->user_data = uring::kWakeData;
  wake_armed_ = true;
}

void UringBackend::finish_local(Operation& op, std::int32_t result) {
  op.backend_state.when_ns = result;
  push_back(op, kLocal);
}

// ---- the backlog (intrusive FIFO through next/prev) -------------------------

// Links `op` in before `next` (at the tail when null).
void UringBackend::insert(Operation& op, std::uint8_t phase, Operation* next) {
  auto& st = op.backend_state;
  st.phase = phase;
  st.next = next;
  st.prev = next ? next->backend_state.prev : backlog_tail_;
  (st.prev ? st.prev->backend_state.next : backlog_head_) = &op;
  (next ? next->backend_state.prev : backlog_tail_) = &op;
  ++backlog_size_;
  if (phase == internal::kQueued) ++backlog_queued_;
}

void UringBackend::unlink(Operation& op) {
  auto& st = op.backend_state;
  (st.prev ? st.prev->backend_state.next : backlog_head_) = st.next;
  (st.next ? st.next->backend_state.prev : backlog_tail_) = st.prev;
  st.next = st.prev = nullptr;
  --backlog_size_;
  if (st.phase == internal::kQueued) --backlog_queued_;
}

// Works through what the backlog held when called (ops a callback adds wait
// for the next poll, so a callback that keeps resubmitting cannot spin here).
// Stops at the first op the SQ has no room for, keeping the FIFO order.
std::size_t UringBackend::drain_backlog() {
  std::size_t delivered = 0;
  for (std::size_t budget = backlog_size_; budget > 0 && backlog_head_; --budget) {
    Operation& op = *backlog_head_;
    const std::uint8_t phase = op.backend_state.phase;
    unlink(op);
    if (phase == internal::kCancelling) {
      if (!issue_cancel(op)) {
        push_front(op, phase);
        break;
      }
      op.backend_state.phase = internal::kPending;
      continue;
    }
    std::int32_t result = static_cast<std::int32_t>(op.backend_state.when_ns);
    if (phase == internal::kQueued) {
      const bool cancelled = op.backend_state.cancel_requested || (shutting_down_ && op.kind != OpKind::close);
      if (!cancelled) {
        if (issue(op)) continue;
        push_front(op, phase);
        break;
      }
      result = -ECANCELED;
    }
    --in_flight_;
    internal::deliver(op, result);
    ++delivered;
  }
  return delivered;
}

// ---- waiting and reaping --------------------------------------------------

std::size_t UringBackend::poll(std::chrono::nanoseconds timeout) {
  std::size_t delivered = drain_backlog();
  arm_wake();
  if (delivered > 0 || backlog_head_) timeout = 0ns;
  int rc = enter(timeout);
  if (rc == -EBUSY) {
    // Older kernels refuse to submit while CQEs wait in the overflow list:
    // make room and flush once more. Nothing is lost (IORING_FEAT_NODROP).
    delivered += reap();
    rc = io_uring_submit_and_get_events(&ring_);
  }
  check_enter(rc);
  return delivered + reap();
}

// Submit and wait in one io_uring_enter. A zero timeout still enters with
// GETEVENTS: under DEFER_TASKRUN that is what runs finished work.
int UringBackend::enter(std::chrono::nanoseconds timeout) {
  io_uring_cqe* cqe = nullptr;
  if (timeout == 0ns) return io_uring_submit_and_get_events(&ring_);
  if (timeout < 0ns) return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
  __kernel_timespec ts = uring::to_kernel_timespec(timeout.count());
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

void UringBackend::check_enter(int rc) {
  switch (-rc) {
    case ETIME:   // the wait timed out: nothing ready
    case EINTR:   // a signal: the loop comes back
    case EAGAIN:  // no memory for the submission right now; it stays queued
    case EBUSY:   // overflow backlog still full; reaped on the next turn
      return;
    case EEXIST:
      sys::log(sys::LogLevel::error, "io_uring backend used from a thread that did not create it "
                                     "(IORING_SETUP_SINGLE_ISSUER): the backend is one loop's");
      std::abort();
    default:
      if (rc < 0) sys::log(sys::LogLevel::error, "{}", sys::Error("io_uring_enter", -rc).message());
  }
}

// Copies ready CQEs out in batches, advances the head once per batch, then
// delivers; when the CQ is empty but the kernel kept CQEs in its overflow
// list, enters once more to flush them. Bounded, so a flood cannot keep one
// poll from returning; the rest waits for the next turn.
std::size_t UringBackend::reap() {
  struct Cqe { std::uint64_t user_data; std::int32_t res; std::uint32_t flags; };
  constexpr unsigned kBatch = 64;
  constexpr int kMaxBatches = 64;
  std::size_t delivered = 0;
  for (int round = 0; round < kMaxBatches; ++round) {
    Cqe batch[kBatch];
    unsigned n = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      batch[n++] = {cqe->user_data, cqe->res, cqe->flags};
      if (n == kBatch) break;
    }
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) delivered += dispatch(batch[i].user_data, batch[i].res, batch[i].flags);
    if (n == kBatch) continue;
    if (!(IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) break;
    check_enter(io_uring_get_events(&ring_));
  }
  return delivered;
}

std::size_t UringBackend::dispatch(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) {
  if (user_data == uring::kWakeData) {
    wake_armed_ = false;
    arm_wake();
    return 0;
  }
  if (user_data < uring::kFirstOpData || user_data == LIBURING_UDATA_TIMEOUT) return 0;
  Operation& op = *reinterpret_cast<Operation*>(user_data);
  Completion c;
  c.more = op.kind == OpKind::accept_multishot && (flags & IORING_CQE_F_MORE) != 0;
  c.result = uring::map_result(op, res, shutting_down_);
  if ((op.kind == OpKind::accept || op.kind == OpKind::accept_multishot) && res >= 0) {
    // Registered before anyone sees it; closed by ~Completion if not taken.
    c.fd = sys::Fd::adopt(res, sys::FdKind::socket, RINGO_HERE, "io_uring accept");
  }
  if ((flags & IORING_CQE_F_BUFFER) && buf_ring_) c.buffer = buf_ring_->take(c.result, flags);
  if (!c.more) {
    // Its ASYNC_CANCEL may still wait for SQ room: not needed any more.
    if (op.backend_state.phase == internal::kCancelling) unlink(op);
    --in_flight_;
  }
  internal::deliver(op, c);
  if (!c.buffer.empty()) buf_ring_->release(c.buffer);  // not taken: back to the ring
  return 1;
}

void UringBackend::release_buffer(const PooledBuffer& buffer) {
  if (buffer.empty()) return;
  if (!buf_ring_) internal::release_without_pool("io_uring");
  buf_ring_->release(buffer);
}

// ---- shutdown ---------------------------------------------------------------

// Cancels everything and delivers every final completion (callers rely on
// exactly-once at shutdown too). Ops submitted meanwhile finish -ECANCELED
// locally, except closes, which still close. False: gave up after 5 s.
bool UringBackend::shutdown() {
  shutting_down_ = true;
  bool cancelled = false;
  const std::int64_t give_up = now_ns() + std::chrono::nanoseconds(5s).count();
  while (in_flight_ > 0 || wake_armed_) {
    if (!cancelled && reserve(1)) {
      uring::prep_cancel_any(io_uring_get_sqe(&ring_));  // the wake read included
      cancelled = true;
    }
    poll(10ms);
    if (now_ns() > give_up) {
      sys::log(sys::LogLevel::error, "io_uring backend: {} operations still in flight after 5s of shutdown; "
                                     "their completions are lost", in_flight_);
      return false;
    }
  }
  return true;
}

UringBackend::~UringBackend() {
  if (!ring_live_) return;
  if (!shutdown()) (void)buf_ring_.release();  // the kernel may still write into it: leak (head comment)
  buf_ring_.reset();
  (void)ring_fd_.release();  // io_uring_queue_exit closes it
  io_uring_queue_exit(&ring_);
}

}  // namespace

sys::Result<std::unique_ptr<Backend>> make_uring_backend(const BackendOptions& options) {
  auto backend = std::make_unique<UringBackend>();
  if (auto r = backend->init(options); !r) return r.error();
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace ringo::reactor
