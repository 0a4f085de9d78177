// Fd: closes exactly once, moves, releases, and the fdsan-style ownership
// checks (double close, close through a non-owner) under both policies.
#include "syscall/fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "syscall/events.h"
#include "tests/support/test_util.h"

namespace ringo::sys {
namespace {

using ringo::testing::FdPolicyGuard;
using ringo::testing::is_open;

TEST(Fd, ClosesOnDestruction) {
  int raw = -1;
  {
    auto fd = eventfd();
    ASSERT_TRUE(fd.ok());
    raw = fd->get();
    EXPECT_TRUE(is_open(raw));
    EXPECT_EQ(fd_registry::tag_of(raw), fd->tag());
  }
  EXPECT_FALSE(is_open(raw));
  EXPECT_EQ(fd_registry::tag_of(raw), 0u);
}

TEST(Fd, MoveTransfersOwnership) {
  auto made = eventfd();
  ASSERT_TRUE(made.ok());
  Fd a = std::move(*made);
  const int raw = a.get();
  const OwnerTag tag = a.tag();
  Fd b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(b.tag(), tag);
  Fd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(is_open(raw));
}

TEST(Fd, MoveAssignClosesPrevious) {
  auto x = eventfd();
  auto y = eventfd();
  ASSERT_TRUE(x.ok() && y.ok());
  const int old = x->get();
  *x = std::move(*y);
  EXPECT_FALSE(is_open(old));
}

TEST(Fd, ExplicitCloseThenDestructorDoesNothing) {
  auto fd = eventfd();
  ASSERT_TRUE(fd.ok());
  const auto before = fd_registry::stats();
  EXPECT_TRUE(fd->close().ok());
  EXPECT_FALSE(fd->valid());
  EXPECT_TRUE(fd->close().ok());  // closing an empty Fd is a no-op
  fd->reset();
  const auto after = fd_registry::stats();
  EXPECT_EQ(after.double_closes, before.double_closes);
}

TEST(Fd, ReleaseHandsOutTheDescriptor) {
  auto fd = eventfd();
  ASSERT_TRUE(fd.ok());
  const auto releases = fd_registry::stats().releases;
  const int raw = fd->release();
  EXPECT_FALSE(fd->valid());
  EXPECT_TRUE(is_open(raw));
  EXPECT_EQ(fd_registry::tag_of(raw), 0u);
  EXPECT_EQ(fd_registry::stats().releases, releases + 1);
  ::close(raw);
}

TEST(Fd, AdoptRegistersForeignDescriptor) {
  const int raw = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(raw, 0);
  Fd fd = Fd::adopt(raw, FdKind::io_uring, RINGO_HERE, "test-owner");
  EXPECT_NE(fd.tag(), 0u);
  bool found = false;
  for (const FdInfo& info : fd_registry::snapshot()) {
    if (info.fd != raw) continue;
    found = true;
    EXPECT_EQ(info.kind, FdKind::io_uring);
    EXPECT_STREQ(info.owner, "test-owner");
    EXPECT_NE(std::string(info.site.file).find("fd_test.cc"), std::string::npos);
  }
  EXPECT_TRUE(found);
}

TEST(Fd, DoubleCloseIsCountedAndDoesNotClose) {
  FdPolicyGuard policy(FdViolationPolicy::count);
  auto fd = eventfd();
  ASSERT_TRUE(fd.ok());
  const int raw = fd->get();
  const OwnerTag tag = fd->tag();
  ASSERT_TRUE(fd->close().ok());
  // The number is free; something outside the framework gets it.
  const int other = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_EQ(other, raw);
  const auto before = fd_registry::stats().double_closes;
  Result<void> r = close_owned(raw, tag);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum(), EBADF);
  EXPECT_EQ(fd_registry::stats().double_closes, before + 1);
  EXPECT_TRUE(is_open(other)) << "the second close must not close a reused number";
  ::close(other);
}

TEST(Fd, CloseByNonOwnerIsCountedAndDoesNotClose) {
  FdPolicyGuard policy(FdViolationPolicy::count);
  auto a = eventfd();
  auto b = eventfd();
  ASSERT_TRUE(a.ok() && b.ok());
  const auto before = fd_registry::stats().foreign_closes;
  EXPECT_FALSE(close_owned(a->get(), b->tag()).ok());
  EXPECT_EQ(fd_registry::stats().foreign_closes, before + 1);
  EXPECT_TRUE(is_open(a->get()));
}

TEST(Fd, CloseBehindOwnersBackThenReuseIsCaught) {
  // The fdsan scenario: code closes a descriptor it does not own, the kernel
  // hands the number to a new owner, then the first owner closes "its" fd.
  FdPolicyGuard policy(FdViolationPolicy::count);
  auto first = eventfd();
  ASSERT_TRUE(first.ok());
  const int raw = first->get();
  ::close(raw);  // the bug: a raw close behind the Fd's back
  const auto foreign_before = fd_registry::stats().foreign_closes;
  auto second = eventfd();  // reuses the number; the registry notices the stale record
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->get(), raw);
  EXPECT_EQ(fd_registry::stats().foreign_closes, foreign_before + 1);
  first->reset();  // refused: the number now belongs to `second`
  EXPECT_EQ(fd_registry::stats().foreign_closes, foreign_before + 2);
  EXPECT_TRUE(is_open(raw)) << "the first owner's close must not close the second owner's fd";
  EXPECT_EQ(fd_registry::tag_of(raw), second->tag());
}

TEST(FdDeathTest, DoubleCloseAbortsUnderAbortPolicy) {
  EXPECT_DEATH(
      {
        fd_registry::set_policy(FdViolationPolicy::abort);
        auto fd = eventfd();
        const int raw = fd->get();
        const OwnerTag tag = fd->tag();
        (void)fd->close();
        (void)close_owned(raw, tag);
      },
      "broken invariant: fd registry: close of fd [0-9]+ at .*fd_test.cc:[0-9]+ .*double close");
}

TEST(FdDeathTest, ForeignCloseAbortsUnderAbortPolicy) {
  EXPECT_DEATH(
      {
        fd_registry::set_policy(FdViolationPolicy::abort);
        auto a = eventfd();
        auto b = eventfd();
        (void)close_owned(a->get(), b->tag());
      },
      "broken invariant: fd registry: close of fd [0-9]+ .* which does not own it; owner is \\[fd [0-9]+ eventfd");
}

}  // namespace
}  // namespace ringo::sys
