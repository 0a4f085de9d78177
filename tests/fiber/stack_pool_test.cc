// StackPool: reuse instead of mmap, the pool's bound, the trim policy (warm
// stacks untouched, sinking deep stacks trimmed), and one pool per thread.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "fiber/stack.h"

namespace ringo::fiber {
namespace {

// Writes to every page of the top `bytes` of the stack, as a fiber using that
// much stack would.
void touch(Stack& s, std::size_t bytes) {
  for (std::size_t off = page_size(); off <= bytes; off += page_size()) s.top()[-static_cast<std::ptrdiff_t>(off)] = std::byte{1};
}

std::vector<Stack> acquire_n(StackPool& pool, std::size_t n) {
  std::vector<Stack> stacks;
  for (std::size_t i = 0; i < n; ++i) {
    sys::Result<Stack> s = pool.acquire();
    EXPECT_TRUE(s.ok());
    if (s.ok()) stacks.push_back(std::move(*s));
  }
  return stacks;
}

TEST(StackPool, ReleasedStacksAreReusedLastInFirstOut) {
  StackPool pool({.map_batch = 1});
  std::vector<Stack> stacks = acquire_n(pool, 2);
  const std::byte* first = stacks[0].bottom();
  const std::byte* second = stacks[1].bottom();
  pool.release(std::move(stacks[0]));
  pool.release(std::move(stacks[1]));
  EXPECT_EQ(pool.acquire()->bottom(), second);  // the temporary goes straight back to the kernel...
  StackPool::Stats st = pool.stats();
  EXPECT_EQ(st.maps, 2u);
  EXPECT_EQ(st.reuses, 1u);
  EXPECT_EQ(st.pooled, 1u);
  sys::Result<Stack> again = pool.acquire();
  EXPECT_EQ(again->bottom(), first);
  EXPECT_EQ(pool.stats().maps, 2u);
}

TEST(StackPool, SpawnFinishOneAtATimeMapsOnce) {
  StackPool pool({.map_batch = 1});
  for (int i = 0; i < 10'000; ++i) {
    sys::Result<Stack> s = pool.acquire();
    ASSERT_TRUE(s.ok());
    pool.release(std::move(*s));
  }
  StackPool::Stats st = pool.stats();
  EXPECT_EQ(st.maps, 1u);
  EXPECT_EQ(st.reuses, 9'999u);
  EXPECT_EQ(st.unmaps, 0u);
  EXPECT_EQ(st.trim_checks, 0u);
}

TEST(StackPool, KeepsAtMostMaxPooled) {
  StackPool pool({.max_pooled = 4, .map_batch = 1});
  std::vector<Stack> stacks = acquire_n(pool, 10);
  for (Stack& s : stacks) pool.release(std::move(s));
  StackPool::Stats st = pool.stats();
  EXPECT_EQ(st.pooled, 4u);
  EXPECT_EQ(st.unmaps, 6u);
  pool.clear();
  EXPECT_EQ(pool.stats().pooled, 0u);
  EXPECT_EQ(pool.stats().unmaps, 10u);
}

TEST(StackPool, StacksOfAnotherSizeAreUnmapped) {
  StackPool pool({.map_batch = 1});
  sys::Result<Stack> small = Stack::map(64 * 1024);
  ASSERT_TRUE(small.ok());
  pool.release(std::move(*small));
  EXPECT_EQ(pool.stats().pooled, 0u);
  EXPECT_EQ(pool.stats().unmaps, 1u);
  pool.release(Stack());  // an empty stack is nothing
  EXPECT_EQ(pool.stats().unmaps, 1u);
}

TEST(StackPool, SizeIsRoundedAndInvalidSizesFailAtAcquire) {
  StackPool odd({.stack_size = 100 * 1024 + 1});
  EXPECT_EQ(odd.stack_size(), 104u * 1024);  // 4 KiB pages
  StackPool bad({.stack_size = 0});
  sys::Result<Stack> s = bad.acquire();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.error().is(EINVAL));
}

TEST(StackPool, WarmStacksKeepTheirPagesWithoutASyscall) {
  StackPool pool({.keep_warm = 16, .map_batch = 1});
  std::vector<Stack> stacks = acquire_n(pool, 16);
  for (Stack& s : stacks) touch(s, 64 * 1024);
  for (Stack& s : stacks) pool.release(std::move(s));
  EXPECT_EQ(pool.stats().trim_checks, 0u);
  EXPECT_EQ(pool.stats().trims, 0u);
  sys::Result<Stack> s = pool.acquire();
  EXPECT_EQ(*s->resident_bytes(), 64u * 1024);
}

TEST(StackPool, DeepStacksSinkingBelowTheWarmOnesAreTrimmed) {
  StackPool pool({.keep_warm = 2, .trim_threshold = 32 * 1024, .trim_keep = 16 * 1024, .map_batch = 1});
  std::vector<Stack> stacks = acquire_n(pool, 6);
  for (std::size_t i = 0; i < stacks.size(); ++i) touch(stacks[i], i == 0 ? 8 * 1024 : 64 * 1024);
  for (Stack& s : stacks) pool.release(std::move(s));
  EXPECT_EQ(pool.stats().trim_checks, 0u);  // release alone never checks
  // 6 released, 2 stay warm: the 4 oldest are checked; the shallow one keeps its 8 KiB.
  EXPECT_EQ(pool.trim(), 4u);
  EXPECT_EQ(pool.trim(), 0u);  // once
  StackPool::Stats st = pool.stats();
  EXPECT_EQ(st.trim_checks, 4u);
  EXPECT_EQ(st.trims, 3u);
  std::vector<std::size_t> resident;
  for (Stack& s : acquire_n(pool, 6)) resident.push_back(*s.resident_bytes());
  EXPECT_EQ(resident, (std::vector<std::size_t>{64 * 1024, 64 * 1024, 16 * 1024, 16 * 1024, 16 * 1024, 8 * 1024}));
}

TEST(StackPool, SteadyChurnAfterABurstCostsNoTrimChecks) {
  StackPool pool({.keep_warm = 4, .map_batch = 1});
  std::vector<Stack> burst = acquire_n(pool, 64);
  for (Stack& s : burst) pool.release(std::move(s));
  pool.trim();
  const StackPool::Stats before = pool.stats();
  EXPECT_EQ(before.trim_checks, 60u);
  for (int i = 0; i < 1000; ++i) {
    std::vector<Stack> few = acquire_n(pool, 3);
    for (Stack& s : few) pool.release(std::move(s));
    pool.trim();
  }
  EXPECT_EQ(pool.stats().trim_checks, before.trim_checks);
  EXPECT_EQ(pool.stats().maps, before.maps);
}

TEST(StackPool, AnEmptyPoolMapsABatchWithOneMmap) {
  StackPool pool({.map_batch = 8});
  std::vector<Stack> stacks = acquire_n(pool, 8);
  EXPECT_EQ(pool.stats().maps, 8u);
  EXPECT_EQ(pool.stats().reuses, 7u);  // the batch's others came from the pool
  // Neighbours of one mmap, each with its own guard, each unmapped alone.
  for (const Stack& s : stacks) {
    EXPECT_EQ(s.guard() + s.guard_size(), s.bottom());
    EXPECT_EQ(*s.resident_bytes(), 0u);
  }
  stacks.erase(stacks.begin() + 3);  // unmaps one in the middle
  for (Stack& s : stacks) touch(s, 4096);
  (void)acquire_n(pool, 1);
  EXPECT_EQ(pool.stats().maps, 16u);
}

TEST(StackPool, EachThreadHasItsOwn) {
  StackPool* main_pool = &StackPool::this_thread();
  StackPool* other_pool = nullptr;
  std::thread([&] {
    other_pool = &StackPool::this_thread();
    sys::Result<Stack> s = other_pool->acquire();
    EXPECT_TRUE(s.ok());
    other_pool->release(std::move(*s));
  }).join();
  EXPECT_NE(main_pool, other_pool);
  EXPECT_EQ(&StackPool::this_thread(), main_pool);
}

}  // namespace
}  // namespace ringo::fiber
