// Shared by the io_uring backend's two files and nothing else:
// uring_backend.cc (the ring, the backlog, waiting, reaping, shutdown) and
// uring_ops.cc (the SQEs each Operation becomes, and what the kernel's result
// means for it). The public entry point is make_uring_backend (backend.h).
//
// It names liburing's types without including liburing, so that including it
// never carries liburing past the *uring* files (DESIGN.md, "Layers").
#pragma once

#include <linux/time_types.h>

#include <cstdint>

#include "reactor/operation.h"

struct io_uring_sqe;

namespace ringo::reactor::uring {

// Reserved user_data values: an Operation is never at an address below 8.
inline constexpr std::uint64_t kIgnoredData = 1;  // linked timeouts, cancels that missed
inline constexpr std::uint64_t kWakeData = 2;     // the eventfd read that wake() completes
inline constexpr std::uint64_t kProbeData = 3;    // the setup-time CANCEL_FD probe
inline constexpr std::uint64_t kFirstOpData = 8;

__kernel_timespec to_kernel_timespec(std::int64_t ns);

// Whether `op` gets a linked timeout (a deadline set on a kind that takes one).
bool has_deadline(const Operation& op);

// Fills `sqe` for `op`: everything but user_data and link flags. False for a
// value that is no OpKind (a corrupted Operation).
bool prep_op(io_uring_sqe* sqe, Operation& op);

// Links `timeout` to `op_sqe`, expiring `remaining_ns` from submission.
void prep_deadline(io_uring_sqe* op_sqe, io_uring_sqe* timeout, Operation& op, std::int64_t remaining_ns);

// Internal cancels, whose CQE comes only when they found nothing, and is
// ignored: of one op, of everything on `fd`, of everything in the ring.
void prep_cancel_op(io_uring_sqe* sqe, const Operation& op);
void prep_cancel_fd(io_uring_sqe* sqe, int fd);
void prep_cancel_any(io_uring_sqe* sqe);

// The result the contract wants for the kernel's `res`.
std::int32_t map_result(const Operation& op, std::int32_t res, bool shutting_down);

}  // namespace ringo::reactor::uring
