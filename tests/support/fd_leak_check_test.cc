// The leak check itself must be able to fail: a descriptor created between
// begin() and leaks() is reported, with its registry record when it has one.
#include "tests/support/fd_leak_check.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "syscall/events.h"

namespace ringo::testing {
namespace {

TEST(FdLeakCheck, ReportsRegisteredFdWithItsSite) {
  FdLeakCheck check;
  check.begin();
  auto fd = sys::eventfd();
  ASSERT_TRUE(fd.ok());
  const auto leaks = check.leaks();
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_NE(leaks[0].find("eventfd"), std::string::npos) << leaks[0];
  EXPECT_NE(leaks[0].find("fd_leak_check_test.cc"), std::string::npos) << leaks[0];
  fd->reset();
  EXPECT_TRUE(check.leaks().empty());
}

TEST(FdLeakCheck, ReportsRawFdUnknownToTheRegistry) {
  FdLeakCheck check;
  check.begin();
  const int raw = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(raw, 0);
  const auto leaks = check.leaks();
  ::close(raw);
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_NE(leaks[0].find("not created through the fd registry"), std::string::npos) << leaks[0];
  EXPECT_TRUE(check.leaks().empty());
}

TEST(FdLeakCheck, FdsOpenBeforeAreNotLeaks) {
  auto before = sys::eventfd();
  ASSERT_TRUE(before.ok());
  FdLeakCheck check;
  check.begin();
  EXPECT_TRUE(check.leaks().empty());
}

}  // namespace
}  // namespace ringo::testing

namespace ringo::testing {
namespace {

// Leaks an eventfd on purpose so that the CTest test `support.listener_fails_leaky_test`
// can show the listener turning the leak into a failure; skipped otherwise.
TEST(FdLeakListener, LeaksOnPurpose) {
  if (!std::getenv("RINGO_LEAK_ON_PURPOSE")) GTEST_SKIP() << "runs only under support.listener_fails_leaky_test";
  auto fd = sys::eventfd();
  ASSERT_TRUE(fd.ok());
  (void)fd->release();  // the registry forgets it; /proc/self/fd still shows it
  auto registered = sys::eventfd();
  ASSERT_TRUE(registered.ok());
  static sys::Fd keep = std::move(*registered);  // outlives the test: a registered leak
}

}  // namespace
}  // namespace ringo::testing
