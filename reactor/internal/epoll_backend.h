// The epoll backend's private pieces, shared by reactor/epoll_backend.cc
// (queues, registration, timers, poll) and reactor/epoll_ops.cc (one
// non-blocking syscall per attempt): the layout of the op's scratch space, the
// intrusive op list and timer heap, and the per-operation entry points.
//
// Invariants: try_operation never blocks (MSG_DONTWAIT, or an fd the backend
// made O_NONBLOCK), never delivers a completion and never touches the
// backend's lists; it only fills a Completion or says "try again after the
// next edge". Its only state is EpollScratch::connecting, kept in the op,
// and for recv_pooled a buffer taken from the pool for the one syscall and
// put back unless the completion carries it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "reactor/operation.h"

namespace ringo::reactor::internal {

// Which of the backend's lists holds an operation (cancel and deadline expiry
// must unlink it from the right one).
enum class Where : std::uint8_t {
  none,       // being attempted, or a timeout op that lives in the timer heap only
  submitted,  // queued by submit, not yet attempted
  ready,      // its completion is decided (result below); delivered at the end of poll
  readers,    // parked on its fd's read list (accept, recv, read)
  writers,    // parked on its fd's write list (send, sendmsg, writev, write, connect)
  pollers,    // parked on its fd's poll list (poll: each checked on every edge)
};

// The epoll backend's view of Operation::BackendState::scratch.
struct EpollScratch {
  std::uint64_t seq = 0;       // timer heap tie-break: equal expiries fire in submit order
  std::int32_t result = 0;     // Where::ready: the result to deliver
  Where where = Where::none;
  bool connecting = false;     // connect: EINPROGRESS seen, waiting for EPOLLOUT
};
static_assert(sizeof(EpollScratch) <= sizeof(Operation::BackendState::scratch));
static_assert(alignof(EpollScratch) <= 8 && std::is_trivially_destructible_v<EpollScratch>);

inline EpollScratch& epoll_scratch(Operation& op) {
  return *std::launder(reinterpret_cast<EpollScratch*>(op.backend_state.scratch));
}
inline void reset_epoll_scratch(Operation& op) { ::new (op.backend_state.scratch) EpollScratch{}; }

// An intrusive FIFO through BackendState::next/prev. Ops point at each other,
// never at the list, so lists may move (inside a growing vector).
class OpList {
 public:
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  Operation* front() const { return head_; }

  void push_back(Operation& op) {
    op.backend_state.next = nullptr;
    op.backend_state.prev = tail_;
    (tail_ ? tail_->backend_state.next : head_) = &op;
    tail_ = &op;
    ++size_;
  }
  void remove(Operation& op) {
    auto& b = op.backend_state;
    (b.prev ? b.prev->backend_state.next : head_) = b.next;
    (b.next ? b.next->backend_state.prev : tail_) = b.prev;
    b.next = b.prev = nullptr;
    --size_;
  }
  Operation* pop_front() {
    Operation* op = head_;
    if (op) remove(*op);
    return op;
  }

 private:
  Operation* head_ = nullptr;
  Operation* tail_ = nullptr;
  std::size_t size_ = 0;
};

// Deadlines and timeout ops: a binary min-heap on (when_ns, submit order).
// heap_index is position + 1, so 0 means "not in the heap".
class TimerHeap {
 public:
  bool empty() const { return heap_.empty(); }
  Operation* top() const { return heap_.front(); }

  void push(Operation& op) {
    heap_.push_back(&op);
    place(heap_.size() - 1, &op);
    sift_up(heap_.size() - 1);
  }
  void remove(Operation& op) {
    const std::size_t i = op.backend_state.heap_index - 1;
    Operation* last = heap_.back();
    heap_.pop_back();
    op.backend_state.heap_index = 0;
    if (i == heap_.size()) return;
    place(i, last);
    sift_up(i);
    sift_down(last->backend_state.heap_index - 1);
  }

 private:
  static bool before(Operation* a, Operation* b) {
    if (a->backend_state.when_ns != b->backend_state.when_ns) {
      return a->backend_state.when_ns < b->backend_state.when_ns;
    }
    return epoll_scratch(*a).seq < epoll_scratch(*b).seq;
  }
  void place(std::size_t i, Operation* op) {
    heap_[i] = op;
    op->backend_state.heap_index = static_cast<std::uint32_t>(i + 1);
  }
  void sift_up(std::size_t i) {
    Operation* op = heap_[i];
    for (; i > 0 && before(op, heap_[(i - 1) / 2]); i = (i - 1) / 2) place(i, heap_[(i - 1) / 2]);
    place(i, op);
  }
  void sift_down(std::size_t i) {
    Operation* op = heap_[i];
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= heap_.size()) break;
      if (child + 1 < heap_.size() && before(heap_[child + 1], heap_[child])) ++child;
      if (!before(heap_[child], op)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, op);
  }

  std::vector<Operation*> heap_;
};

enum class Try : std::uint8_t { done, again };

class BufferPool;

// One non-blocking attempt of an fd operation (accept, accept_multishot,
// connect, recv, recv_pooled, send, sendmsg, writev, read, write, poll).
// `done`: `out` holds the completion (multishot accept: more == true on
// success). `again`: park the op until the fd's next edge. `pool`: the
// backend's buffer pool, null when it has none.
Try try_operation(Operation& op, Completion& out, BufferPool* pool);

// Where an operation of `kind` parks on EAGAIN.
Where park_list(OpKind kind);

// Kinds whose syscall has no per-call non-blocking flag (accept4, connect,
// read, write, writev), so the backend makes their fd O_NONBLOCK first.
bool needs_nonblocking_fd(OpKind kind);

// Sets O_NONBLOCK on `fd` if it lacks it. Errors are ignored: the operation
// itself reports a bad fd.
void make_nonblocking(int fd);

// How EpollBackendOptions::epoll_busy_poll ended up applied.
enum class BusyPoll : std::uint8_t {
  off,         // not requested
  epoll,       // EPIOCSPARAMS on the epoll set (Linux 6.9+)
  per_socket,  // old kernel: SO_BUSY_POLL on each socket the backend registers
  refused,     // EPERM: needs CAP_NET_ADMIN
};

// Applies busy polling to the epoll set `epfd`, logging once per process
// when it has to fall back or is refused.
BusyPoll apply_busy_poll(int epfd, std::chrono::microseconds usecs);

// Backend::describe(): "epoll (edge-triggered, busy poll 50us via EPIOCSPARAMS)",
// with ", pool 256 x 4 KiB" before the parenthesis when there is a pool.
std::string describe_epoll(BusyPoll busy, std::chrono::microseconds usecs, const BufferPool* pool);

// SO_BUSY_POLL on one registered fd (BusyPoll::per_socket); errors on
// non-sockets are ignored, EPERM is logged once.
void apply_socket_busy_poll(int fd, std::chrono::microseconds usecs);

}  // namespace ringo::reactor::internal
