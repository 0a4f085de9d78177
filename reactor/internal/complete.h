// Delivering a completion, shared by the backends: the op leaves the
// backend's hands (phase 0) before its function runs, so the function may
// submit the same Operation again, or free it.
#pragma once

#include "reactor/operation.h"

namespace ringo::reactor::internal {

enum Phase : std::uint8_t { kIdle = 0, kPending = 1, kQueued = 2, kCancelling = 3 };

inline void deliver(Operation& op, Completion& c) {
  if (!c.more) op.backend_state.phase = kIdle;
  op.on_complete(op, c);
}

inline void deliver(Operation& op, std::int32_t result) {
  Completion c;
  c.result = result;
  deliver(op, c);
}

}  // namespace ringo::reactor::internal
