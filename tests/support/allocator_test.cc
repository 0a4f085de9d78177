// Release builds link jemalloc (CMake option RINGO_JEMALLOC, off in sanitizer
// builds): check the allocator the binary really runs on.
#include <dlfcn.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);

TEST(Allocator, JemallocInReleaseBuilds) {
#ifdef RINGO_WITH_JEMALLOC
  auto mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  ASSERT_NE(mallctl, nullptr) << "built with RINGO_WITH_JEMALLOC but jemalloc is not loaded";
  // Allocations go through jemalloc: its per-thread allocated counter moves.
  std::uint64_t before = 0, after = 0;
  std::size_t len = sizeof(before);
  ASSERT_EQ(mallctl("thread.allocated", &before, &len, nullptr, 0), 0);
  auto block = std::make_unique<char[]>(1 << 20);
  std::memset(block.get(), 1, 1 << 20);
  ASSERT_EQ(mallctl("thread.allocated", &after, &len, nullptr, 0), 0);
  EXPECT_GE(after - before, std::uint64_t{1} << 20);
#else
  EXPECT_EQ(::dlsym(RTLD_DEFAULT, "mallctl"), nullptr) << "jemalloc loaded in a build that should not use it";
#endif
}

}  // namespace
