// Backend selection: RINGO_BACKEND / BackendKind, and the automatic fallback
// from io_uring to epoll (said once per process in the log, with the reason).
#include "reactor/backend.h"

#include <atomic>
#include <cstdlib>

#include "syscall/log.h"

namespace ringo::reactor {

const char* to_string(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::io_uring: return "io_uring";
    case BackendKind::epoll: return "epoll";
  }
  return "?";
}

sys::Result<BackendKind> parse_backend_kind(std::string_view text) {
  if (text == "auto" || text.empty()) return BackendKind::automatic;
  if (text == "io_uring" || text == "uring") return BackendKind::io_uring;
  if (text == "epoll") return BackendKind::epoll;
  return sys::Error("backend", EINVAL, nullptr, "expected auto, io_uring or epoll");
}

sys::Result<BackendKind> backend_kind_from_env() {
  const char* v = std::getenv("RINGO_BACKEND");
  if (!v) return BackendKind::automatic;
  auto kind = parse_backend_kind(v);
  if (!kind) return sys::Error("RINGO_BACKEND", EINVAL, nullptr, "expected auto, io_uring or epoll");
  return kind;
}

sys::Result<std::unique_ptr<Backend>> make_backend(BackendKind kind, const BackendOptions& options) {
  switch (kind) {
    case BackendKind::io_uring: return make_uring_backend(options);
    case BackendKind::epoll: return make_epoll_backend(options);
    case BackendKind::automatic: break;
  }
  auto uring = make_uring_backend(options);
  if (uring) return uring;
  // Said once: every loop of a group falls back for the same reason.
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    sys::log(sys::LogLevel::warn, "backend auto: io_uring unavailable ({}); using epoll",
             uring.error().message());
  }
  return make_epoll_backend(options);
}

}  // namespace ringo::reactor
