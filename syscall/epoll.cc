// See epoll.h.
#include "syscall/epoll.h"

#include <atomic>

namespace ringo::sys {
namespace {
std::atomic<bool> g_have_pwait2{true};
}

Result<Fd> epoll_create(Site site) {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return Error::from_errno("epoll_create1");
  return Fd::adopt(fd, FdKind::epoll, site);
}

Result<void> epoll_ctl(int epfd, int op, int fd, std::uint32_t events, std::uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  if (::epoll_ctl(epfd, op, fd, &ev) < 0) return Error::from_errno("epoll_ctl");
  return ok();
}

Result<std::size_t> epoll_wait(int epfd, std::span<epoll_event> events, std::chrono::nanoseconds timeout) {
  const int max = static_cast<int>(events.size());
  if (g_have_pwait2.load(std::memory_order_relaxed)) {
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout.count() >= 0) {
      ts = {static_cast<time_t>(timeout.count() / 1'000'000'000), static_cast<long>(timeout.count() % 1'000'000'000)};
      tsp = &ts;
    }
    const int n = ::epoll_pwait2(epfd, events.data(), max, tsp, nullptr);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != ENOSYS) return Error::from_errno("epoll_pwait2");
    g_have_pwait2.store(false, std::memory_order_relaxed);  // kernel < 5.11
  }
  int ms = -1;
  if (timeout.count() >= 0) {
    const auto rounded = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
    ms = rounded > 0x7fffffff ? 0x7fffffff : static_cast<int>(rounded);
  }
  const int n = ::epoll_wait(epfd, events.data(), max, ms);
  if (n < 0) return Error::from_errno("epoll_wait");
  return static_cast<std::size_t>(n);
}

}  // namespace ringo::sys
