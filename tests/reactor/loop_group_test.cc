// LoopGroup: one pinned loop per CPU (checked with sched_getcpu from inside
// each loop), cross-loop posts, clean stop and join, per-loop counters.
#include "reactor/loop_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "syscall/cpu.h"
#include "tests/reactor/backend_fixture.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;

class LoopGroupTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  std::unique_ptr<LoopGroup> start(LoopGroup::Options options = {}) {
    options.loop.backend = GetParam();
    auto group = LoopGroup::start(options);
    EXPECT_TRUE(group.ok()) << group.error().message();
    return group.ok() ? std::move(*group) : nullptr;
  }
};

TEST_P(LoopGroupTest, OneLoopPerAllowedCpuEachPinned) {
  auto cpus = sys::affinity_cpus();
  ASSERT_TRUE(cpus.ok());
  auto group = start();
  ASSERT_TRUE(group);
  ASSERT_EQ(group->size(), cpus->size());
  for (std::size_t i = 0; i < group->size(); ++i) {
    std::promise<std::pair<int, std::vector<int>>> where;
    group->loop(i).post([&] {
      where.set_value({sys::current_cpu().value_or(-1), sys::affinity_cpus().value_or(std::vector<int>{})});
    });
    auto [cpu, mask] = where.get_future().get();
    EXPECT_EQ(cpu, group->cpu(i)) << "loop " << i;
    EXPECT_EQ(mask, std::vector<int>{group->cpu(i)}) << "loop " << i << " is pinned to one CPU";
    EXPECT_EQ(group->loop(i).index(), static_cast<int>(i));
    EXPECT_EQ(group->loop(i).backend_kind(), GetParam());
  }
  group->stop();
  group->stop();  // idempotent
}

TEST_P(LoopGroupTest, ExplicitCpuListAndCount) {
  auto cpus = sys::affinity_cpus();
  ASSERT_TRUE(cpus.ok());
  LoopGroup::Options options;
  options.cpus = {cpus->back()};
  auto group = start(options);
  ASSERT_TRUE(group);
  ASSERT_EQ(group->size(), 1u);
  EXPECT_EQ(group->cpu(0), cpus->back());
}

TEST_P(LoopGroupTest, InvalidCpuIsAClearError) {
  LoopGroup::Options options;
  options.cpus = {4000};
  options.loop.backend = GetParam();
  auto group = LoopGroup::start(options);
  ASSERT_FALSE(group.ok());
  EXPECT_NE(group.error().message().find("sched_setaffinity: EINVAL"), std::string::npos)
      << group.error().message();
}

TEST_P(LoopGroupTest, CrossLoopPingPong) {
  LoopGroup::Options options;
  options.count = 2;
  auto group = start(options);
  ASSERT_TRUE(group);
  Loop& a = group->loop(0);
  Loop& b = group->size() > 1 ? group->loop(1) : group->loop(0);
  constexpr int kRounds = 10'000;
  std::promise<int> done;
  std::atomic<int> count{0};
  std::function<void()> ping;
  std::function<void()> pong = [&] {
    if (count.fetch_add(1) + 1 == kRounds) {
      done.set_value(count.load());
      return;
    }
    a.post([&] { ping(); });
  };
  ping = [&] { b.post([&] { pong(); }); };
  a.post([&] { ping(); });
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(future.get(), kRounds);
  group->stop();
}

TEST_P(LoopGroupTest, StopJoinsAndCountersMove) {
  auto group = start();
  ASSERT_TRUE(group);
  std::promise<LoopStats> stats;
  group->loop(0).post([&] { stats.set_value(group->loop(0).stats()); });
  const LoopStats s = stats.get_future().get();
  EXPECT_GE(s.iterations, 1u);
  group->stop();
  EXPECT_EQ(group->size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, LoopGroupTest, testing::kAllBackends, testing::backend_name);

}  // namespace
}  // namespace ringo::reactor
