// See events.h.
#include "syscall/events.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>

namespace ringo::sys {
namespace {

timespec to_timespec(std::chrono::nanoseconds d) {
  const auto ns = d.count();
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

std::chrono::nanoseconds from_timespec(const timespec& ts) {
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Reads exactly one fixed-size record (eventfd/timerfd counters, signalfd_siginfo).
Result<void> read_record(int fd, void* out, std::size_t size, const char* op) {
  const ssize_t n = ::read(fd, out, size);
  if (n < 0) return Error::from_errno(op);
  if (static_cast<std::size_t>(n) != size) return Error(op, EIO, "short read of a fixed-size record");
  return ok();
}

}  // namespace

Result<Fd> eventfd(unsigned initial, int flags, Site site) {
  const int fd = ::eventfd(initial, flags | EFD_CLOEXEC);
  if (fd < 0) return Error::from_errno("eventfd");
  return Fd::adopt(fd, FdKind::eventfd, site);
}

Result<void> eventfd_write(int fd, std::uint64_t value) {
  if (::write(fd, &value, sizeof(value)) < 0) return Error::from_errno("eventfd write");
  return ok();
}

Result<std::uint64_t> eventfd_read(int fd) {
  std::uint64_t value = 0;
  if (auto r = read_record(fd, &value, sizeof(value), "eventfd read"); !r) return r.error();
  return value;
}

Result<Fd> timerfd_create(clockid_t clock, int flags, Site site) {
  const int fd = ::timerfd_create(clock, flags | TFD_CLOEXEC);
  if (fd < 0) return Error::from_errno("timerfd_create");
  return Fd::adopt(fd, FdKind::timerfd, site);
}

Result<TimerSpec> timerfd_settime(int fd, TimerSpec spec, int flags) {
  itimerspec next{to_timespec(spec.interval), to_timespec(spec.initial)};
  itimerspec old{};
  if (::timerfd_settime(fd, flags, &next, &old) < 0) return Error::from_errno("timerfd_settime");
  return TimerSpec{from_timespec(old.it_value), from_timespec(old.it_interval)};
}

Result<TimerSpec> timerfd_gettime(int fd) {
  itimerspec cur{};
  if (::timerfd_gettime(fd, &cur) < 0) return Error::from_errno("timerfd_gettime");
  return TimerSpec{from_timespec(cur.it_value), from_timespec(cur.it_interval)};
}

Result<std::uint64_t> timerfd_read(int fd) {
  std::uint64_t expirations = 0;
  if (auto r = read_record(fd, &expirations, sizeof(expirations), "timerfd read"); !r) return r.error();
  return expirations;
}

Result<Fd> signalfd(const sigset_t& signals, int flags, Site site) {
  const int fd = ::signalfd(-1, &signals, flags | SFD_CLOEXEC);
  if (fd < 0) return Error::from_errno("signalfd");
  return Fd::adopt(fd, FdKind::signalfd, site);
}

Result<void> block_signals(const sigset_t& signals) {
  // pthread_sigmask returns the error instead of setting errno.
  if (int e = ::pthread_sigmask(SIG_BLOCK, &signals, nullptr); e != 0) return Error("pthread_sigmask", e);
  return ok();
}

Result<void> unblock_signals(const sigset_t& signals) {
  if (int e = ::pthread_sigmask(SIG_UNBLOCK, &signals, nullptr); e != 0) return Error("pthread_sigmask", e);
  return ok();
}

Result<int> signalfd_read(int fd) {
  signalfd_siginfo info;
  std::memset(&info, 0, sizeof(info));
  if (auto r = read_record(fd, &info, sizeof(info), "signalfd read"); !r) return r.error();
  return static_cast<int>(info.ssi_signo);
}

Result<Pipe> pipe2(int flags, Site site) {
  int fds[2];
  if (::pipe2(fds, flags | O_CLOEXEC) < 0) return Error::from_errno("pipe2");
  return Pipe{Fd::adopt(fds[0], FdKind::pipe, site), Fd::adopt(fds[1], FdKind::pipe, site)};
}

}  // namespace ringo::sys
