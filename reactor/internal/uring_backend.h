// Shared by the io_uring backend's three files and nothing else:
// uring_backend.cc (the ring, the backlog, waiting, reaping, shutdown),
// uring_ops.cc (the SQEs each Operation becomes, and what the kernel's result
// means for it) and uring_buf_ring.cc (recv_pooled's provided buffer ring).
// The public entry point is make_uring_backend (backend.h).
//
// It names liburing's types without including liburing, so that including it
// never carries liburing past the *uring* files (DESIGN.md, "Layers").
#pragma once

#include <linux/time_types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "reactor/internal/buffer_pool.h"
#include "reactor/operation.h"
#include "syscall/result.h"

struct io_uring;
struct io_uring_sqe;
struct io_uring_buf_ring;

namespace ringo::reactor::uring {

// Reserved user_data values: an Operation is never at an address below 8.
inline constexpr std::uint64_t kIgnoredData = 1;  // linked timeouts, cancels that missed
inline constexpr std::uint64_t kWakeData = 2;     // the eventfd read that wake() completes
inline constexpr std::uint64_t kProbeData = 3;    // the setup-time CANCEL_FD probe
inline constexpr std::uint64_t kFirstOpData = 8;

// recv_pooled's buffer group: the backend has one pool, so one group.
inline constexpr std::uint16_t kBufGroup = 0;

__kernel_timespec to_kernel_timespec(std::int64_t ns);

// Whether `op` gets a linked timeout (a deadline set on a kind that takes one).
bool has_deadline(const Operation& op);

// Fills `sqe` for `op`: everything but user_data and link flags. False for a
// value that is no OpKind (a corrupted Operation). `pool_buffer_size`: the
// length a recv_pooled asks for (its buffer's; the backend has a pool).
bool prep_op(io_uring_sqe* sqe, Operation& op, std::uint32_t pool_buffer_size);

// Links `timeout` to `op_sqe`, expiring `remaining_ns` from submission.
void prep_deadline(io_uring_sqe* op_sqe, io_uring_sqe* timeout, Operation& op, std::int64_t remaining_ns);

// Internal cancels, whose CQE comes only when they found nothing, and is
// ignored: of one op, of everything on `fd`, of everything in the ring.
void prep_cancel_op(io_uring_sqe* sqe, const Operation& op);
void prep_cancel_fd(io_uring_sqe* sqe, int fd);
void prep_cancel_any(io_uring_sqe* sqe);

// The result the contract wants for the kernel's `res`.
std::int32_t map_result(const Operation& op, std::int32_t res, bool shutting_down);

// recv_pooled's provided buffer ring (uring_buf_ring.cc): the pool's buffers
// registered as group kBufGroup, the kernel picking one per recv as data
// arrives. Created after the ring and destroyed before it, once no recv_pooled
// is in flight.
class BufRing {
 public:
  // Maps the ring, registers it and hands the kernel every buffer of `pool`.
  static sys::Result<std::unique_ptr<BufRing>> create(io_uring& ring, std::unique_ptr<internal::BufferPool> pool);
  ~BufRing();  // unregisters, then unmaps
  BufRing(const BufRing&) = delete;
  BufRing& operator=(const BufRing&) = delete;

  std::uint32_t buffer_size() const { return pool_->buffer_size(); }
  std::string describe() const { return pool_->describe(); }

  // The buffer of a CQE with IORING_CQE_F_BUFFER: lent when `result` (the
  // contract's) is > 0, otherwise straight back to the kernel (empty).
  PooledBuffer take(std::int32_t result, std::uint32_t cqe_flags);
  // Back to the kernel: io_uring_buf_ring_add + advance(1). Empty: no-op.
  void release(const PooledBuffer& buffer);

 private:
  BufRing(io_uring& ring, io_uring_buf_ring* br, std::size_t br_bytes, std::unique_ptr<internal::BufferPool> pool);
  void provide(std::uint16_t id);

  io_uring& ring_;
  io_uring_buf_ring* br_;
  std::size_t br_bytes_;
  std::unique_ptr<internal::BufferPool> pool_;
};

}  // namespace ringo::reactor::uring
