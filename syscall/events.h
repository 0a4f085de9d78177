// Descriptors that carry events rather than bytes: eventfd (cross-thread
// wake-ups), timerfd (timers as readable fds), signalfd (signals as reads),
// and pipe2. All are created close-on-exec and registered with their kind.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <chrono>
#include <cstdint>

#include "syscall/fd.h"
#include "syscall/result.h"

namespace ringo::sys {

// eventfd(2); EFD_CLOEXEC is always added.
Result<Fd> eventfd(unsigned initial = 0, int flags = EFD_NONBLOCK, Site site = RINGO_HERE);
// Adds `value` to the counter / takes the counter (EAGAIN when zero and non-blocking).
Result<void> eventfd_write(int fd, std::uint64_t value);
Result<std::uint64_t> eventfd_read(int fd);

// timerfd_create(2); TFD_CLOEXEC is always added.
Result<Fd> timerfd_create(clockid_t clock = CLOCK_MONOTONIC, int flags = TFD_NONBLOCK, Site site = RINGO_HERE);
struct TimerSpec {
  std::chrono::nanoseconds initial{0};   // 0 disarms
  std::chrono::nanoseconds interval{0};  // 0: one-shot
};
// Arms (or with initial == 0, disarms) a relative timer; returns the old setting.
Result<TimerSpec> timerfd_settime(int fd, TimerSpec spec, int flags = 0);
Result<TimerSpec> timerfd_gettime(int fd);
// Number of expirations since the last read (EAGAIN when none, non-blocking).
Result<std::uint64_t> timerfd_read(int fd);

// signalfd(2) for `signals`; SFD_CLOEXEC is always added. The signals must be
// blocked in every thread (block_signals) or they are delivered the old way.
Result<Fd> signalfd(const sigset_t& signals, int flags = SFD_NONBLOCK, Site site = RINGO_HERE);
// pthread_sigmask(SIG_BLOCK) for the calling thread; threads created later inherit it.
Result<void> block_signals(const sigset_t& signals);
Result<void> unblock_signals(const sigset_t& signals);
// Reads one pending signal's number (EAGAIN when none, non-blocking).
Result<int> signalfd_read(int fd);

struct Pipe {
  Fd read;
  Fd write;
};
// pipe2(2); O_CLOEXEC is always added.
Result<Pipe> pipe2(int flags = O_NONBLOCK, Site site = RINGO_HERE);

}  // namespace ringo::sys
