// Fd: the one owner of one file descriptor. Move-only; closes exactly once.
//
// Invariants:
//  - A valid Fd holds a descriptor and the owner tag the fd registry gave it
//    (see fd_registry.h). Closing presents that tag: a descriptor that was
//    closed behind the Fd's back and reused by someone else is detected and
//    left alone instead of being closed a second time.
//  - Descriptors the framework creates by other means than syscall/ (io_uring
//    accept/socket/openat completions) become Fds through Fd::adopt, which
//    registers them like any other.
//  - close(2) is never retried: on Linux the descriptor is gone even when it
//    returns EINTR, and a retry could close a number another thread just got.
//
// Rejected: a shared_ptr-style counted fd (ownership becomes unclear exactly
// where leaks hide); an fd that is "borrowed" implicitly by copy (the bug
// fdsan exists to catch). Operations that only use a descriptor take a plain
// `int fd`: borrowing is explicit with get().
#pragma once

#include <utility>

#include "syscall/fd_registry.h"
#include "syscall/result.h"
#include "syscall/site.h"

namespace ringo::sys {

class Fd {
 public:
  Fd() = default;

  // Takes ownership of `fd`, which the caller just created, and registers it.
  // `owner` is a static label shown by the registry (may be null).
  static Fd adopt(int fd, FdKind kind, Site site = RINGO_HERE, const char* owner = nullptr) {
    return Fd(fd, fd_registry::on_create(fd, kind, site, owner));
  }

  Fd(Fd&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), tag_(std::exchange(other.tag_, 0)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
      tag_ = std::exchange(other.tag_, 0);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(RINGO_HERE); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  OwnerTag tag() const noexcept { return tag_; }

  // Closes now and reports close(2)'s error (EIO on some files); the Fd is
  // empty afterwards whatever happened. Closing an empty Fd is a no-op.
  Result<void> close(Site site = RINGO_HERE);

  // Closes, ignoring close(2)'s result.
  void reset(Site site = RINGO_HERE) noexcept {
    if (fd_ >= 0) (void)close(site);
  }

  // Hands the raw descriptor to the caller, who must close it; the registry
  // forgets it. Returns -1 on an empty Fd.
  [[nodiscard]] int release(Site site = RINGO_HERE) noexcept;

  // Gives up the object's ownership without closing or unregistering: the
  // registry record stays, and whoever holds the returned pair must close it
  // by presenting the tag (close_owned, or a backend's asynchronous close).
  struct Owned {
    int fd;
    OwnerTag tag;
  };
  [[nodiscard]] Owned detach() noexcept {
    return {std::exchange(fd_, -1), std::exchange(tag_, 0)};
  }

  // Relabels the registry record (e.g. a socket that starts listening).
  void set_kind(FdKind kind) const noexcept { fd_registry::set_kind(fd_, tag_, kind); }
  void set_owner(const char* owner) const noexcept { fd_registry::set_owner(fd_, tag_, owner); }

 private:
  Fd(int fd, OwnerTag tag) : fd_(fd), tag_(tag) {}

  int fd_ = -1;
  OwnerTag tag_ = 0;
};

// Closes `fd` on behalf of the owner holding `tag` (for code that keeps raw
// descriptors with their tags, like a backend's in-flight operations). The
// registry checks the tag first; on a violation nothing is closed and the
// policy decides between abort and a counted error (EBADF is returned).
Result<void> close_owned(int fd, OwnerTag tag, Site site = RINGO_HERE);

}  // namespace ringo::sys
