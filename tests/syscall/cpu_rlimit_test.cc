// Tests for syscall/cpu.h and syscall/rlimit.h: the affinity mask lists the
// allowed CPUs; pinning a thread to each of them puts it there (and leaves
// other threads alone); out-of-range CPUs are EINVAL; RLIMIT_NOFILE reads
// soft <= hard, raise_nofile_limit lifts soft to hard (the old limit is put
// back after the test); and raising the hard limit without CAP_SYS_RESOURCE
// is EPERM with a hint that names the capability (in a forked child).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "syscall/cpu.h"
#include "syscall/rlimit.h"
#include "tests/support/test_util.h"

namespace ringo::sys {
namespace {

using ringo::testing::drop_effective_capability;

using ::testing::ElementsAre;
using ::testing::StartsWith;

// --- CPU affinity ---------------------------------------------------------------

TEST(CpuTest, AffinityListsTheAllowedCpusAscending) {
  Result<std::vector<int>> cpus = affinity_cpus();
  ASSERT_TRUE(cpus.ok()) << cpus.error().message();
  ASSERT_FALSE(cpus->empty());
  for (std::size_t i = 0; i < cpus->size(); ++i) {
    EXPECT_GE((*cpus)[i], 0);
    EXPECT_LT((*cpus)[i], CPU_SETSIZE);
    if (i > 0) {
      EXPECT_LT((*cpus)[i - 1], (*cpus)[i]);
    }
  }
  cpu_set_t set;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(cpus->size(), static_cast<std::size_t>(CPU_COUNT(&set)));
}

// What a pinned thread saw, reported back to the test's thread.
struct Pinned {
  std::string error;  // empty when every call succeeded
  int cpu = -1;
  std::vector<int> mask;
};

Pinned pin_in_new_thread(int cpu) {
  Pinned out;
  std::thread([&] {
    if (Result<void> r = pin_to_cpu(cpu); !r) {
      out.error = r.error().message();
      return;
    }
    Result<int> now = current_cpu();
    Result<std::vector<int>> mask = affinity_cpus();
    if (!now || !mask) {
      out.error = !now ? now.error().message() : mask.error().message();
      return;
    }
    out.cpu = *now;
    out.mask = *mask;
  }).join();
  return out;
}

TEST(CpuTest, PinnedThreadRunsOnItsCpuAndOthersKeepTheirMask) {
  Result<std::vector<int>> before = affinity_cpus();
  ASSERT_TRUE(before.ok());
  for (int cpu : *before) {
    // sched_setaffinity migrates the caller before it returns when its
    // current CPU leaves the mask, so sched_getcpu right after is exact.
    Pinned p = pin_in_new_thread(cpu);
    EXPECT_EQ(p.error, "") << "cpu " << cpu;
    EXPECT_EQ(p.cpu, cpu);
    EXPECT_THAT(p.mask, ElementsAre(cpu));
  }
  EXPECT_EQ(affinity_cpus().value_or(std::vector<int>{}), *before) << "only the calling thread is pinned";
}

TEST(CpuTest, OutOfRangeCpusAreEinval) {
  for (int cpu : {-1, CPU_SETSIZE}) {
    Result<void> r = set_affinity({0, cpu});
    ASSERT_FALSE(r.ok()) << cpu;
    EXPECT_TRUE(r.error().is(EINVAL));
    EXPECT_THAT(r.error().message(), StartsWith("sched_setaffinity"));
  }
  // In range but not a CPU this machine has: the kernel refuses the mask.
  // (In a thread of its own, in case a kernel ever accepted it.)
  if (::sysconf(_SC_NPROCESSORS_CONF) < CPU_SETSIZE) {
    Pinned p = pin_in_new_thread(CPU_SETSIZE - 1);
    EXPECT_THAT(p.error, StartsWith("sched_setaffinity: EINVAL"));
  }
}

// --- RLIMIT_NOFILE --------------------------------------------------------------------

TEST(RlimitTest, NofileSoftLimitIsAtMostTheHardLimit) {
  Result<Limit> l = getrlimit(RLIMIT_NOFILE);
  ASSERT_TRUE(l.ok()) << l.error().message();
  EXPECT_GT(l->soft, 0u);
  EXPECT_LE(l->soft, l->hard);

  Result<Limit> bad = getrlimit(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), StartsWith("getrlimit: EINVAL"));
}

// Puts RLIMIT_NOFILE's soft limit back when the test ends, however it ends
// (lowering a soft limit never needs privileges).
class RestoreNofile {
 public:
  explicit RestoreNofile(Limit old) : old_(old) {}
  ~RestoreNofile() {
    if (Result<void> r = setrlimit(RLIMIT_NOFILE, old_); !r) ADD_FAILURE() << r.error().message();
  }
  RestoreNofile(const RestoreNofile&) = delete;
  RestoreNofile& operator=(const RestoreNofile&) = delete;

 private:
  Limit old_;
};

TEST(RlimitTest, RaiseNofileLimitLiftsSoftToHard) {
  Result<Limit> old = getrlimit(RLIMIT_NOFILE);
  ASSERT_TRUE(old.ok());
  RestoreNofile restore(*old);
  // Start below the hard limit so the raise has something to do. Descriptors
  // already open above the lowered limit stay valid; none are opened here.
  ASSERT_TRUE(setrlimit(RLIMIT_NOFILE, {old->hard / 2, old->hard}).ok());

  Result<Limit> raised = raise_nofile_limit();
  ASSERT_TRUE(raised.ok()) << raised.error().message();
  EXPECT_EQ(raised->soft, old->hard);
  EXPECT_EQ(raised->hard, old->hard);
  Result<Limit> now = getrlimit(RLIMIT_NOFILE);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->soft, old->hard);
  EXPECT_EQ(now->hard, old->hard);

  Result<Limit> again = raise_nofile_limit();  // already raised: unchanged
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->soft, old->hard);
}

// The death-test child: prints the outcome to stderr, exits 0 on EPERM.
[[noreturn]] void raise_hard_limit_without_cap_sys_resource(Limit current) {
  if (!drop_effective_capability(CAP_SYS_RESOURCE)) {
    std::fprintf(stderr, "capset failed\n");
    ::_exit(3);
  }
  Result<void> r = setrlimit(RLIMIT_NOFILE, {current.soft, current.hard + 1});
  std::fprintf(stderr, "%s\n", r ? "accepted" : r.error().message().c_str());
  ::_exit(!r && r.error().is(EPERM) ? 0 : 1);
}

TEST(RlimitDeathTest, RaisingTheHardLimitNeedsCapSysResource) {
  Result<Limit> l = getrlimit(RLIMIT_NOFILE);
  ASSERT_TRUE(l.ok());
  EXPECT_EXIT(raise_hard_limit_without_cap_sys_resource(*l), ::testing::ExitedWithCode(0),
              "setrlimit: EPERM \\(.*\\): raising a hard limit needs CAP_SYS_RESOURCE");
}

}  // namespace
}  // namespace ringo::sys
