// Tests for syscall/epoll.h, with an eventfd as the watched descriptor:
// epoll_create registers an epoll fd; edge-triggered interest reports one
// event per edge with the caller's data; level-triggered interest (after
// EPOLL_CTL_MOD) repeats until drained; EPOLL_CTL_DEL stops events; a timeout
// is never cut short; and the errors name the call.
#include "syscall/epoll.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>

#include "syscall/events.h"
#include "tests/support/test_util.h"

namespace ringo::sys {
namespace {

using ringo::testing::registered_kind;

using namespace std::chrono_literals;
using ::testing::ContainsRegex;
using ::testing::StartsWith;

class EpollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<Fd> ep = epoll_create();
    ASSERT_TRUE(ep.ok()) << ep.error().message();
    ep_ = std::move(*ep);
    Result<Fd> efd = eventfd();
    ASSERT_TRUE(efd.ok()) << efd.error().message();
    efd_ = std::move(*efd);
  }

  // The number of events ready within `timeout`; -1 (and a failure) on error.
  long wait(std::chrono::nanoseconds timeout) {
    Result<std::size_t> n = epoll_wait(ep_.get(), events_, timeout);
    EXPECT_TRUE(n.ok()) << n.error().message();
    return n ? static_cast<long>(*n) : -1;
  }

  // By value: epoll_event is packed on x86-64, so a reference to its u64
  // (as EXPECT_EQ would bind) is misaligned.
  std::uint64_t data(std::size_t i) const { return events_[i].data.u64; }

  void signal() { ASSERT_TRUE(eventfd_write(efd_.get(), 1).ok()); }

  Fd ep_;
  Fd efd_;
  std::array<epoll_event, 8> events_{};
};

TEST_F(EpollTest, CreateRegistersACloseOnExecEpollFd) {
  const int flags = ::fcntl(ep_.get(), F_GETFD);
  EXPECT_TRUE(flags >= 0 && (flags & FD_CLOEXEC) != 0);
  if (fd_registry::kEnabled) {
    EXPECT_EQ(registered_kind(ep_), FdKind::epoll);
  }
}

TEST_F(EpollTest, EdgeTriggeredReportsEachEdgeOnceWithItsData) {
  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_ADD, efd_.get(), EPOLLIN | EPOLLET, 42).ok());
  EXPECT_EQ(wait(0ns), 0) << "nothing written yet";

  signal();
  ASSERT_EQ(wait(0ns), 1);
  EXPECT_EQ(data(0), 42u);
  EXPECT_TRUE(events_[0].events & EPOLLIN);
  EXPECT_EQ(wait(0ns), 0) << "still readable, but no new edge";

  signal();
  ASSERT_EQ(wait(0ns), 1) << "a second write is a new edge";
  EXPECT_EQ(data(0), 42u);
}

TEST_F(EpollTest, LevelTriggeredAfterModRepeatsUntilDrained) {
  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_ADD, efd_.get(), EPOLLIN | EPOLLET, 42).ok());
  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_MOD, efd_.get(), EPOLLIN, 7).ok());
  signal();
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(wait(0ns), 1) << "round " << round;
    EXPECT_EQ(data(0), 7u) << "MOD replaces the data too";
  }
  ASSERT_TRUE(eventfd_read(efd_.get()).ok());
  EXPECT_EQ(wait(0ns), 0);
}

TEST_F(EpollTest, DelStopsEvents) {
  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_ADD, efd_.get(), EPOLLIN | EPOLLET, 42).ok());
  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_DEL, efd_.get(), 0, 0).ok());
  signal();
  EXPECT_EQ(wait(0ns), 0);
}

TEST_F(EpollTest, TimeoutIsNeverCutShort) {
  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_ADD, efd_.get(), EPOLLIN | EPOLLET, 42).ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(wait(30ms), 0);
  // Lower bound only: a loaded machine may oversleep, never undersleep.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST_F(EpollTest, CtlErrorsNameTheCall) {
  Result<void> bad_fd = epoll_ctl(ep_.get(), EPOLL_CTL_ADD, -1, EPOLLIN, 0);
  ASSERT_FALSE(bad_fd.ok());
  EXPECT_TRUE(bad_fd.error().is(EBADF));
  EXPECT_THAT(bad_fd.error().message(), StartsWith("epoll_ctl: EBADF ("));

  Result<void> bad_epfd = epoll_ctl(-1, EPOLL_CTL_ADD, efd_.get(), EPOLLIN, 0);
  ASSERT_FALSE(bad_epfd.ok());
  EXPECT_TRUE(bad_epfd.error().is(EBADF));

  Result<void> unknown = epoll_ctl(ep_.get(), EPOLL_CTL_DEL, efd_.get(), 0, 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().message(), StartsWith("epoll_ctl: ENOENT"));

  ASSERT_TRUE(epoll_ctl(ep_.get(), EPOLL_CTL_ADD, efd_.get(), EPOLLIN, 0).ok());
  Result<void> twice = epoll_ctl(ep_.get(), EPOLL_CTL_ADD, efd_.get(), EPOLLIN, 0);
  ASSERT_FALSE(twice.ok());
  EXPECT_THAT(twice.error().message(), StartsWith("epoll_ctl: EEXIST"));
}

TEST_F(EpollTest, WaitOnANonEpollFdIsEinval) {
  Result<std::size_t> n = epoll_wait(efd_.get(), events_, 0ns);
  ASSERT_FALSE(n.ok());
  EXPECT_TRUE(n.error().is(EINVAL));
  // epoll_pwait2 where the kernel has it (5.11), epoll_wait before.
  EXPECT_THAT(n.error().message(), ContainsRegex("^epoll_(pwait2|wait): EINVAL"));
}

}  // namespace
}  // namespace ringo::sys
