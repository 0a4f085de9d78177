// The fd registry: counts follow creates and closes, snapshots describe each
// fd (kind, site, owner, age, optional stack), and concurrent use loses
// nothing.
#include "syscall/fd_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "syscall/events.h"
#include "syscall/socket.h"

namespace ringo::sys {
namespace {

TEST(FdRegistry, CountsFollowCreatesAndCloses) {
  const FdKindCounts base = fd_registry::counts();
  std::vector<Fd> events;
  for (int i = 0; i < 5; ++i) events.push_back(std::move(*eventfd()));
  auto pipe = pipe2();
  ASSERT_TRUE(pipe.ok());
  auto timer = timerfd_create();
  ASSERT_TRUE(timer.ok());

  FdKindCounts c = fd_registry::counts();
  EXPECT_EQ(c[FdKind::eventfd], base[FdKind::eventfd] + 5);
  EXPECT_EQ(c[FdKind::pipe], base[FdKind::pipe] + 2);
  EXPECT_EQ(c[FdKind::timerfd], base[FdKind::timerfd] + 1);
  EXPECT_EQ(c.total, base.total + 8);

  events.resize(2);
  pipe->write.reset();
  c = fd_registry::counts();
  EXPECT_EQ(c[FdKind::eventfd], base[FdKind::eventfd] + 2);
  EXPECT_EQ(c[FdKind::pipe], base[FdKind::pipe] + 1);
  EXPECT_EQ(c.total, base.total + 4);

  events.clear();
  pipe->read.reset();
  timer->reset();
  EXPECT_EQ(fd_registry::counts().total, base.total);
}

TEST(FdRegistry, ListenRelabelsSocket) {
  auto s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(s.ok());
  const FdKindCounts before = fd_registry::counts();
  ASSERT_TRUE(bind(s->get(), SockAddr::ipv4_loopback(0)).ok());
  ASSERT_TRUE(listen(*s, 16).ok());
  const FdKindCounts after = fd_registry::counts();
  EXPECT_EQ(after[FdKind::listener], before[FdKind::listener] + 1);
  EXPECT_EQ(after[FdKind::socket], before[FdKind::socket] - 1);
}

TEST(FdRegistry, SnapshotDescribesEachFd) {
  auto fd = eventfd();
  ASSERT_TRUE(fd.ok());
  fd->set_owner("Loop#0 inbox");
  std::vector<FdInfo> all = fd_registry::snapshot();
  const FdInfo* mine = nullptr;
  for (const FdInfo& info : all) {
    if (info.fd == fd->get()) mine = &info;
  }
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->tag, fd->tag());
  EXPECT_EQ(mine->kind, FdKind::eventfd);
  EXPECT_STREQ(mine->owner, "Loop#0 inbox");
  EXPECT_STREQ(mine->site.file, "tests/syscall/fd_registry_test.cc") << "relative, not a build machine path";
  EXPECT_STREQ(mine->site.function, "TestBody");
  EXPECT_GE(mine->age.count(), 0);
  EXPECT_TRUE(mine->stack.empty());
  const std::string text = fd_registry::format(all);
  EXPECT_NE(text.find("eventfd age"), std::string::npos) << text;
  EXPECT_NE(text.find("owner Loop#0 inbox created at tests/syscall/fd_registry_test.cc:"), std::string::npos)
      << text;
}

TEST(FdRegistry, AgeGrows) {
  auto fd = eventfd();
  ASSERT_TRUE(fd.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  for (const FdInfo& info : fd_registry::snapshot()) {
    // The coarse clock ticks every few ms; 30 ms cannot round down below 10.
    if (info.fd == fd->get()) {
      EXPECT_GE(info.age, std::chrono::milliseconds(10));
    }
  }
}

__attribute__((noinline)) Result<Fd> make_eventfd_for_stack() { return eventfd(); }

TEST(FdRegistry, CapturesCreationStackWhenAsked) {
  fd_registry::set_capture_stacks(true);
  auto fd = make_eventfd_for_stack();
  fd_registry::set_capture_stacks(false);
  ASSERT_TRUE(fd.ok());
  for (const FdInfo& info : fd_registry::snapshot()) {
    if (info.fd != fd->get()) continue;
    EXPECT_GE(info.stack.size(), 2u);
    EXPECT_NE(fd_registry::describe(info).find("\n    #0 "), std::string::npos);
  }
  auto plain = eventfd();
  for (const FdInfo& info : fd_registry::snapshot()) {
    if (info.fd == plain->get()) {
      EXPECT_TRUE(info.stack.empty());
    }
  }
}

TEST(FdRegistry, ConcurrentCreatesAndClosesLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  const FdKindCounts base = fd_registry::counts();
  const FdRegistryStats stats_before = fd_registry::stats();
  std::atomic<bool> stop{false};
  // A reader snapshots while writers churn: every record it sees is whole.
  std::thread reader([&] {
    while (!stop.load()) {
      for (const FdInfo& info : fd_registry::snapshot()) {
        ASSERT_NE(info.tag, 0u);
        ASSERT_NE(info.site.file, nullptr);
      }
    }
  });
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      std::vector<Fd> held;
      for (int i = 0; i < kRounds; ++i) {
        auto fd = eventfd();
        if (!fd.ok()) {
          ++failures;
          continue;
        }
        if (fd_registry::tag_of(fd->get()) != fd->tag()) ++failures;
        held.push_back(std::move(*fd));
        if (held.size() > 8) held.erase(held.begin());
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fd_registry::counts().total, base.total);
  const FdRegistryStats stats_after = fd_registry::stats();
  EXPECT_EQ(stats_after.double_closes, stats_before.double_closes);
  EXPECT_EQ(stats_after.foreign_closes, stats_before.foreign_closes);
}

TEST(FdRegistry, TagsAreUniqueAcrossThreads) {
  std::vector<OwnerTag> a, b;
  std::thread ta([&] {
    for (int i = 0; i < 3000; ++i) a.push_back(eventfd()->tag());
  });
  std::thread tb([&] {
    for (int i = 0; i < 3000; ++i) b.push_back(eventfd()->tag());
  });
  ta.join();
  tb.join();
  std::vector<OwnerTag> all = a;
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  EXPECT_EQ(std::count(all.begin(), all.end(), OwnerTag{0}), 0);
}

TEST(FdRegistry, KindNames) {
  EXPECT_EQ(to_string(FdKind::io_uring), "io_uring");
  EXPECT_EQ(to_string(FdKind::listener), "listener");
  EXPECT_EQ(to_string(static_cast<FdKind>(200)), "invalid");
}

}  // namespace
}  // namespace ringo::sys
