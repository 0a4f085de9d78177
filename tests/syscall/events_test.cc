// Tests for syscall/events.h: eventfd counting and semaphore reads, EAGAIN
// when empty; timerfd one-shot expiry, settime returning the old setting,
// gettime counting down, disarming; signalfd reading a signal blocked in the
// calling thread; block/unblock_signals; pipe2; and that each descriptor is
// close-on-exec and registered with its kind and the caller's site.
#include "syscall/events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>

#include "syscall/io.h"
#include "tests/support/test_util.h"

namespace ringo::sys {
namespace {

using ringo::testing::is_cloexec;
using ringo::testing::is_nonblocking;
using ringo::testing::registered;

using namespace std::chrono_literals;
using ::testing::EndsWith;
using ::testing::StartsWith;

bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 5000) == 1;
}

// --- eventfd ------------------------------------------------------------------

TEST(EventfdTest, WritesAddUpAndAReadTakesTheCounter) {
  Result<Fd> e = eventfd();
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_TRUE(is_cloexec(e->get()));
  EXPECT_TRUE(is_nonblocking(e->get()));

  Result<std::uint64_t> empty = eventfd_read(e->get());
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(empty.error().is(EAGAIN));
  EXPECT_THAT(empty.error().message(), StartsWith("eventfd read: EAGAIN"));

  ASSERT_TRUE(eventfd_write(e->get(), 3).ok());
  ASSERT_TRUE(eventfd_write(e->get(), 4).ok());
  Result<std::uint64_t> n = eventfd_read(e->get());
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(*n, 7u);
  EXPECT_FALSE(eventfd_read(e->get()).ok()) << "a read takes the whole counter";
}

TEST(EventfdTest, InitialValueAndSemaphoreMode) {
  Result<Fd> e = eventfd(2, EFD_NONBLOCK | EFD_SEMAPHORE);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(eventfd_read(e->get()).value_or(0), 1u);
  EXPECT_EQ(eventfd_read(e->get()).value_or(0), 1u);
  EXPECT_FALSE(eventfd_read(e->get()).ok());
}

// --- timerfd ------------------------------------------------------------------

TEST(TimerfdTest, OneShotFiresOnceNoEarlierThanAsked) {
  Result<Fd> t = timerfd_create();
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_TRUE(is_cloexec(t->get()));

  const auto start = std::chrono::steady_clock::now();
  Result<TimerSpec> old = timerfd_settime(t->get(), {20ms, 0ns});
  ASSERT_TRUE(old.ok()) << old.error().message();
  EXPECT_EQ(old->initial, 0ns) << "a new timer is disarmed";
  ASSERT_TRUE(wait_readable(t->get()));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);

  Result<std::uint64_t> n = timerfd_read(t->get());
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_GE(*n, 1u);
  Result<std::uint64_t> again = timerfd_read(t->get());
  ASSERT_FALSE(again.ok()) << "a one-shot timer fires once";
  EXPECT_THAT(again.error().message(), StartsWith("timerfd read: EAGAIN"));
  Result<TimerSpec> after = timerfd_gettime(t->get());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->initial, 0ns) << "expired: disarmed";
}

TEST(TimerfdTest, SettimeReturnsTheOldSettingAndGettimeCountsDown) {
  Result<Fd> t = timerfd_create();
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(timerfd_settime(t->get(), {10s, 1s}).ok());

  Result<TimerSpec> now = timerfd_gettime(t->get());
  ASSERT_TRUE(now.ok()) << now.error().message();
  EXPECT_GT(now->initial, 0ns);
  EXPECT_LE(now->initial, 10s);
  EXPECT_EQ(now->interval, 1s);

  Result<TimerSpec> old = timerfd_settime(t->get(), {5s, 0ns});
  ASSERT_TRUE(old.ok());
  EXPECT_GT(old->initial, 0ns);
  EXPECT_LE(old->initial, now->initial);
  EXPECT_EQ(old->interval, 1s);

  old = timerfd_settime(t->get(), {});  // initial 0 disarms
  ASSERT_TRUE(old.ok());
  EXPECT_GT(old->initial, 0ns);
  EXPECT_LE(old->initial, 5s);
  EXPECT_EQ(old->interval, 0ns);
  now = timerfd_gettime(t->get());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->initial, 0ns);
  EXPECT_EQ(now->interval, 0ns);
  Result<std::uint64_t> n = timerfd_read(t->get());
  ASSERT_FALSE(n.ok());
  EXPECT_TRUE(n.error().is(EAGAIN)) << n.error().message();
}

// --- signals ------------------------------------------------------------------

// Blocks `sig` in the calling thread for a test; on the way out consumes the
// signal if it is still pending (so unblocking it cannot kill the process)
// and restores the thread's old mask.
class BlockedSignal {
 public:
  explicit BlockedSignal(int sig) {
    sigemptyset(&set_);
    sigaddset(&set_, sig);
    ::pthread_sigmask(SIG_SETMASK, nullptr, &old_);
    blocked_ = block_signals(set_);
  }
  ~BlockedSignal() {
    const timespec zero{};
    while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  BlockedSignal(const BlockedSignal&) = delete;
  BlockedSignal& operator=(const BlockedSignal&) = delete;

  const sigset_t& set() const { return set_; }
  const Result<void>& blocked() const { return blocked_; }

 private:
  sigset_t set_;
  sigset_t old_;
  Result<void> blocked_;
};

bool is_blocked(int sig) {
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  return sigismember(&mask, sig) == 1;
}

TEST(SignalfdTest, ReadsASignalSentToThisThread) {
  BlockedSignal usr1(SIGUSR1);
  ASSERT_TRUE(usr1.blocked().ok()) << usr1.blocked().error().message();
  Result<Fd> s = signalfd(usr1.set());
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_TRUE(is_cloexec(s->get()));

  Result<int> none = signalfd_read(s->get());
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message(), StartsWith("signalfd read: EAGAIN"));

  ASSERT_EQ(::pthread_kill(::pthread_self(), SIGUSR1), 0);
  Result<int> sig = signalfd_read(s->get());
  ASSERT_TRUE(sig.ok()) << sig.error().message();
  EXPECT_EQ(*sig, SIGUSR1);
  EXPECT_FALSE(signalfd_read(s->get()).ok()) << "the signal is consumed by the read";
}

TEST(SignalfdTest, BlockAndUnblockChangeThisThreadsMask) {
  BlockedSignal restore(SIGUSR2);  // also puts the mask back if a check fails
  ASSERT_TRUE(restore.blocked().ok());
  EXPECT_TRUE(is_blocked(SIGUSR2));
  ASSERT_TRUE(unblock_signals(restore.set()).ok());
  EXPECT_FALSE(is_blocked(SIGUSR2));
  ASSERT_TRUE(block_signals(restore.set()).ok());
  EXPECT_TRUE(is_blocked(SIGUSR2));
}

// --- pipe2 --------------------------------------------------------------------

TEST(PipeTest, CarriesBytesThenEndOfFile) {
  Result<Pipe> p = pipe2();
  ASSERT_TRUE(p.ok()) << p.error().message();
  for (const Fd* fd : {&p->read, &p->write}) {
    EXPECT_TRUE(is_cloexec(fd->get()));
    EXPECT_TRUE(is_nonblocking(fd->get()));
  }
  std::array<std::byte, 16> buf;
  Result<std::size_t> empty = read(p->read.get(), buf);
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(empty.error().is(EAGAIN));
  EXPECT_THAT(empty.error().message(), StartsWith("read: EAGAIN"));

  const std::string_view text = "through the pipe";
  Result<std::size_t> wrote = write(p->write.get(), std::as_bytes(std::span(text.data(), text.size())));
  ASSERT_TRUE(wrote.ok()) << wrote.error().message();
  EXPECT_EQ(*wrote, text.size());
  Result<std::size_t> got = read(p->read.get(), buf);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), *got), text);

  ASSERT_TRUE(p->write.close().ok());
  EXPECT_EQ(read(p->read.get(), buf).value_or(99), 0u) << "all writers closed: end of file";
}

// --- registry -----------------------------------------------------------------

TEST(EventsRegistryTest, EachDescriptorIsRecordedWithItsKindAndSite) {
  if (!fd_registry::kEnabled) GTEST_SKIP() << "built with RINGO_FD_REGISTRY=OFF";
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);  // signalfd does not need the signal blocked to exist
  Result<Fd> e = eventfd();
  Result<Fd> t = timerfd_create();
  Result<Fd> s = signalfd(usr1);
  Result<Pipe> p = pipe2();
  ASSERT_TRUE(e.ok() && t.ok() && s.ok() && p.ok());

  const std::pair<const Fd*, FdKind> expected[] = {
      {&*e, FdKind::eventfd}, {&*t, FdKind::timerfd}, {&*s, FdKind::signalfd},
      {&p->read, FdKind::pipe}, {&p->write, FdKind::pipe}};
  for (const auto& [fd, kind] : expected) {
    SCOPED_TRACE(std::string(to_string(kind)) + " fd " + std::to_string(fd->get()));
    std::optional<FdInfo> info = registered(*fd);
    ASSERT_TRUE(info.has_value()) << "not in the registry";
    EXPECT_EQ(info->kind, kind);
    EXPECT_THAT(info->site.file, EndsWith("events_test.cc")) << "the creation site is the caller's";
  }
}

}  // namespace
}  // namespace ringo::sys
