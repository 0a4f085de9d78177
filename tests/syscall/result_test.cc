// Result<T> and Error: values, errors, messages that name the call and errno,
// and the abort on misuse.
#include "syscall/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ringo::sys {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Error("parse_positive", EINVAL);
  return v;
}

TEST(Result, HoldsValue) {
  Result<int> r = parse_positive(7);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 7);
  EXPECT_EQ(*r, 7);
  EXPECT_EQ(r.value_or(3), 7);
}

TEST(Result, HoldsError) {
  Result<int> r = parse_positive(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().errnum(), EINVAL);
  EXPECT_TRUE(r.error().is(EINVAL));
  EXPECT_EQ(r.error().code(), std::error_code(EINVAL, std::system_category()));
  EXPECT_EQ(r.value_or(3), 3);
}

TEST(Result, MessageNamesCallAndErrno) {
  EXPECT_EQ(Error("accept4", EMFILE).message(), "accept4: EMFILE (Too many open files)");
  EXPECT_EQ(Error("setsockopt", EPERM, "SO_BUSY_POLL", "needs CAP_NET_ADMIN").message(),
            "setsockopt SO_BUSY_POLL: EPERM (Operation not permitted): needs CAP_NET_ADMIN");
  EXPECT_EQ(Error("x", 999999).message(), "x: errno 999999");
  EXPECT_STREQ(errno_name(ECONNRESET), "ECONNRESET");
}

TEST(Result, FromErrnoCapturesErrnoNow) {
  errno = EAGAIN;
  Error e = Error::from_errno("read");
  errno = 0;
  EXPECT_EQ(e.errnum(), EAGAIN);
  EXPECT_STREQ(e.op(), "read");
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
  Result<std::unique_ptr<int>> moved = std::move(r);
  EXPECT_TRUE(moved.ok());
}

TEST(Result, CopyAndAssign) {
  Result<std::string> a = std::string("hello");
  Result<std::string> b = Error("op", ENOENT);
  b = a;
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "hello");
  a = Error("op", ENOENT);
  EXPECT_FALSE(a.ok());
  EXPECT_EQ(b->size(), 5u);
}

TEST(Result, VoidResult) {
  Result<void> good = ok();
  EXPECT_TRUE(good.ok());
  good.value();  // does not abort
  Result<void> bad = Error("close", EIO);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "close: EIO (Input/output error)");
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r = Error("accept4", EMFILE);
  EXPECT_DEATH((void)r.value(), "value\\(\\) of a Result that holds an error \\(accept4: EMFILE");
}

TEST(ResultDeathTest, ErrorOfValueAborts) {
  Result<int> r = 1;
  EXPECT_DEATH((void)r.error(), "error\\(\\) of a Result that holds a value");
}

TEST(ResultDeathTest, VoidValueOfErrorAborts) {
  Result<void> r = Error("close", EBADF);
  EXPECT_DEATH(r.value(), "Result<void> that holds an error \\(close: EBADF");
}

}  // namespace
}  // namespace ringo::sys
