// Stack: layout (guard page below the usable area), lazy touching, size
// rounding and limits, move-only ownership, and the ENOMEM message.
#include "fiber/stack.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

namespace ringo::fiber {
namespace {

// The permissions ("rw-p", "---p") of the /proc/self/maps line starting at `addr`.
std::string mapping_perms(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::uintptr_t from = 0, to = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &from, &to, perms) != 3) continue;
    if (from == reinterpret_cast<std::uintptr_t>(addr)) return perms;
  }
  return "";
}

bool is_mapped(const void* addr) {
  unsigned char vec = 0;
  return ::mincore(const_cast<void*>(addr), page_size(), &vec) == 0;  // ENOMEM: unmapped
}

TEST(Stack, UsableAreaSitsAboveAGuardPage) {
  sys::Result<Stack> s = Stack::map(128 * 1024);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->size(), 128u * 1024);
  EXPECT_EQ(s->guard_size(), page_size());
  EXPECT_EQ(s->top() - s->bottom(), static_cast<std::ptrdiff_t>(s->size()));
  EXPECT_EQ(s->guard() + s->guard_size(), s->bottom());
  if (Stack::guards_are_markers()) {
    // A page-table marker: the guard and the stack share one rw mapping.
    EXPECT_EQ(mapping_perms(s->guard()), "rw-p");
  } else {
    EXPECT_EQ(mapping_perms(s->guard()), "---p");
    EXPECT_EQ(mapping_perms(s->bottom()), "rw-p");
  }
}

TEST(StackDeathTest, TouchingTheGuardFaults) {
  sys::Result<Stack> s = Stack::map(64 * 1024);
  ASSERT_TRUE(s.ok()) << s.error().message();
  volatile std::byte* guard = s->guard() + s->guard_size() - 1;
  EXPECT_DEATH(*guard = std::byte{1}, "");
  *(s->bottom()) = std::byte{1};  // the page above is the stack's
}

TEST(Stack, NothingIsTouchedUntilUsed) {
  sys::Result<Stack> s = Stack::map();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), kDefaultStackSize);
  EXPECT_EQ(*s->resident_bytes(), 0u);
  s->top()[-1] = std::byte{1};  // the first byte a fiber would use
  EXPECT_EQ(*s->resident_bytes(), page_size());
  EXPECT_FALSE(*s->resident_below(page_size()));
  s->top()[-static_cast<std::ptrdiff_t>(3 * page_size())] = std::byte{1};
  EXPECT_EQ(*s->resident_bytes(), 2 * page_size());
  EXPECT_TRUE(*s->resident_below(2 * page_size()));
  EXPECT_FALSE(*s->resident_below(3 * page_size()));
}

TEST(Stack, DiscardBelowGivesPagesBack) {
  sys::Result<Stack> s = Stack::map(64 * 1024);
  ASSERT_TRUE(s.ok());
  for (std::byte* p = s->bottom(); p < s->top(); p += page_size()) *p = std::byte{7};
  EXPECT_EQ(*s->resident_bytes(), 64u * 1024);
  ASSERT_TRUE(s->discard_below(16 * 1024).ok());
  EXPECT_EQ(*s->resident_bytes(), 16u * 1024);
  EXPECT_EQ(s->top()[-static_cast<std::ptrdiff_t>(page_size())], std::byte{7});  // kept
  EXPECT_EQ(s->bottom()[0], std::byte{0});  // given back: a fresh zero page
}

TEST(Stack, SizesRoundUpToWholePages) {
  sys::Result<Stack> one = Stack::map(1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), page_size());
  sys::Result<Stack> more = Stack::map(page_size() + 1);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->size(), 2 * page_size());
}

TEST(Stack, AbsurdSizesAreAnError) {
  for (std::size_t size : {std::size_t{0}, kMaxStackSize + 1, SIZE_MAX}) {
    sys::Result<Stack> s = Stack::map(size);
    ASSERT_FALSE(s.ok()) << size;
    EXPECT_TRUE(s.error().is(EINVAL));
    EXPECT_NE(s.error().message().find("1 GiB"), std::string::npos) << s.error().message();
  }
  EXPECT_TRUE(Stack::map(kMaxStackSize).ok());  // the limit itself: address space only
}

TEST(Stack, MoveOnlyAndUnmapsOnce) {
  sys::Result<Stack> s = Stack::map(16 * 1024);
  ASSERT_TRUE(s.ok());
  const std::byte* guard = s->guard();
  Stack a = std::move(*s);
  EXPECT_TRUE(s->empty());
  EXPECT_EQ(a.guard(), guard);
  Stack b;
  b = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(is_mapped(guard));
  b = Stack();  // unmaps
  EXPECT_FALSE(is_mapped(guard));
}

// Address space usage now, from /proc/self/statm (pages).
std::size_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  statm >> pages;
  return pages * page_size();
}

// In a death-test child: the lowered RLIMIT_AS must not hurt the other tests.
[[noreturn]] void map_beyond_the_address_space_limit() {
  const rlim_t limit = address_space_bytes() + (64 << 20);
  const struct rlimit rl = {limit, limit};
  if (::setrlimit(RLIMIT_AS, &rl) != 0) std::_Exit(2);
  sys::Result<Stack> s = Stack::map(512 << 20);
  if (s.ok()) std::_Exit(3);
  std::fprintf(stderr, "%s\n", s.error().message().c_str());
  std::_Exit(s.error().is(ENOMEM) ? 0 : 4);
}

TEST(StackDeathTest, OutOfAddressSpaceNamesTheLimits) {
  EXPECT_EXIT(map_beyond_the_address_space_limit(), ::testing::ExitedWithCode(0),
              "mmap fiber stack: ENOMEM .*cannot map a fiber stack.*vm.max_map_count\\? RLIMIT_AS\\?");
}

}  // namespace
}  // namespace ringo::fiber
