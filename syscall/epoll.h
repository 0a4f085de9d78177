// epoll_create1 / epoll_ctl / epoll_wait, typed. The epoll backend in
// reactor/ is built on these; nothing else should need them.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <span>

#include "syscall/fd.h"
#include "syscall/result.h"

namespace ringo::sys {

// epoll_create1(2); EPOLL_CLOEXEC is always added.
Result<Fd> epoll_create(Site site = RINGO_HERE);
// op: EPOLL_CTL_ADD / MOD / DEL. `data` comes back in epoll_event::data.u64.
Result<void> epoll_ctl(int epfd, int op, int fd, std::uint32_t events, std::uint64_t data);
// Waits up to `timeout` (negative: forever; zero: poll) and returns the number
// of events written to `events`. EINTR comes back as an Error like any other.
// Uses epoll_pwait2 (Linux 5.11) for nanosecond timeouts where the kernel has
// it, else epoll_wait with the timeout rounded up to whole milliseconds (so a
// timer never fires early).
Result<std::size_t> epoll_wait(int epfd, std::span<epoll_event> events, std::chrono::nanoseconds timeout);

}  // namespace ringo::sys
