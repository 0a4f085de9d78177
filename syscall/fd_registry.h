// The fd registry: one record per live descriptor the framework owns.
//
// Every Fd created or closed through syscall/ is recorded here with its kind,
// creation time, creation site, an owner label and a unique owner tag. Layers
// that create descriptors by other means (io_uring accept/socket/openat
// completions, which no libc interposer can see) report them through
// Fd::adopt, the same entry point. The fd-leak tracer and /debug/fds read the
// snapshot; tests compare snapshots to catch leaks.
//
// Ownership tags, in the spirit of Android's fdsan: each registration gets a
// fresh 64-bit tag that the owning Fd keeps. A close must present the tag the
// registry holds for that fd number:
//  - the fd is not registered (tag 0)   -> "double close" (or a close of a
//    descriptor the framework never owned);
//  - the registry holds a different tag -> "close by a non-owner": the number
//    was closed behind its owner's back and reused, and this close would
//    have destroyed someone else's descriptor.
// Either way the descriptor is NOT closed. The violation aborts with a message
// (policy `abort`, the default in debug builds) or is counted and logged
// (policy `count`, the default in release builds, where a server should
// survive a bug it can describe).
//
// Invariants:
//  - A registered fd number has exactly one nonzero tag; tags are never reused.
//  - Registration happens after the kernel created the fd, unregistration
//    before close(2) releases the number, so a number is never registered
//    twice at once even when another thread reuses it immediately.
//  - Records live in lazily allocated chunks indexed by fd number, never
//    freed: no lock on the create/close path, readers never chase freed memory.
//  - The snapshot is consistent per record (the tag is read before and after
//    the fields, seqlock-style) but not across records.
//
// Cost: a create+close pair adds a few relaxed stores, one compare-exchange and
// one coarse clock read; tags are handed out to each thread in blocks so that
// loops on different cores never share a counter. Stack capture (backtrace(3))
// is off by default and costs microseconds when on. Configured with
// RINGO_FD_REGISTRY=OFF, registration compiles to nothing.
//
// Rejected: a mutex-protected std::unordered_map (a lock shared by every
// loop on every accept and close); a libc interposer only (misses io_uring's
// direct creations; it is the tracer's job for foreign code, not ours).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "syscall/site.h"

#ifndef RINGO_FD_REGISTRY_ENABLED
#define RINGO_FD_REGISTRY_ENABLED 1
#endif

namespace ringo::sys {

enum class FdKind : std::uint8_t {
  socket, listener, epoll, eventfd, timerfd, signalfd, pipe, file, io_uring, other
};
inline constexpr std::size_t kFdKindCount = 10;
std::string_view to_string(FdKind kind);

using OwnerTag = std::uint64_t;  // 0: not registered

enum class FdViolationPolicy { abort, count };

struct FdInfo {
  int fd = -1;
  FdKind kind = FdKind::other;
  OwnerTag tag = 0;
  const char* owner = nullptr;  // static label, e.g. "TcpListener"; may be null
  Site site;
  std::chrono::nanoseconds age{0};
  std::vector<void*> stack;  // creation stack, when capture was on
};

struct FdKindCounts {
  std::size_t by_kind[kFdKindCount] = {};
  std::size_t total = 0;
  std::size_t operator[](FdKind k) const { return by_kind[static_cast<std::size_t>(k)]; }
};

struct FdRegistryStats {
  std::uint64_t double_closes = 0;
  std::uint64_t foreign_closes = 0;  // close by something that does not own the fd
  std::uint64_t releases = 0;        // ownership handed out through Fd::release
};

namespace fd_registry {

inline constexpr bool kEnabled = RINGO_FD_REGISTRY_ENABLED != 0;

OwnerTag on_create_impl(int fd, FdKind kind, Site site, const char* owner) noexcept;
bool on_close_impl(int fd, OwnerTag tag, Site site) noexcept;
bool on_release_impl(int fd, OwnerTag tag, Site site) noexcept;

// Records a freshly created fd and returns its new owner tag. `owner` must be
// a static string or null. A number still registered (a leak across a close
// done behind the registry's back) is overwritten and counted as foreign.
// Inline so that a build with the registry compiled out makes no call at all.
inline OwnerTag on_create(int fd, FdKind kind, Site site, const char* owner = nullptr) noexcept {
  if constexpr (kEnabled) {
    return on_create_impl(fd, kind, site, owner);
  } else {
    return 1;
  }
}

// Checks that `tag` owns `fd` and unregisters it. Returns true when the caller
// may close(2) the fd; false after a violation (which the policy handled).
inline bool on_close(int fd, OwnerTag tag, Site site) noexcept {
  if constexpr (kEnabled) {
    return on_close_impl(fd, tag, site);
  } else {
    return true;
  }
}

// Unregisters without closing: ownership leaves the framework.
inline bool on_release(int fd, OwnerTag tag, Site site) noexcept {
  if constexpr (kEnabled) {
    return on_release_impl(fd, tag, site);
  } else {
    return true;
  }
}

// Changes the recorded kind (a socket that starts listening becomes a listener).
void set_kind(int fd, OwnerTag tag, FdKind kind) noexcept;
void set_owner(int fd, OwnerTag tag, const char* owner) noexcept;

// The tag registered for `fd`, 0 when none.
OwnerTag tag_of(int fd) noexcept;

std::vector<FdInfo> snapshot();
FdKindCounts counts();
FdRegistryStats stats();

// One line per live fd, oldest first: "fd 7 eventfd age 1.2s owner Loop at loop.cc:42 (Loop::Loop)".
std::string format(const std::vector<FdInfo>& fds);
std::string describe(const FdInfo& info);

void set_policy(FdViolationPolicy policy);
FdViolationPolicy policy();
void set_capture_stacks(bool on);
bool capture_stacks();

}  // namespace fd_registry
}  // namespace ringo::sys
