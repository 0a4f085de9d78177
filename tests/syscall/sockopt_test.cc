// Tests for syscall/sockopt.h: every option in namespace opt is set and read
// back with getsockopt (one parameterised case per option), including the
// values the kernel reports differently from what was set (doubled buffer
// sizes, TCP_DEFER_ACCEPT's retransmission rounding); SO_BUSY_POLL_BUDGET,
// which the kernel cannot read back, is checked through what it refuses; the
// EPERM message when CAP_NET_ADMIN is missing (in a forked child that drops
// the capability); SO_ERROR; and the option's name in the errors of calls on
// a non-socket.
#include "syscall/sockopt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "syscall/events.h"
#include "syscall/socket.h"
#include "tests/support/test_util.h"

namespace ringo::sys {
namespace {

using ringo::testing::has_effective_capability;
using ringo::testing::drop_effective_capability;

using namespace std::chrono_literals;
using ::testing::StartsWith;
using sockopt_detail::to_int;

// --- Every option, set and read back -------------------------------------------

struct OptionCase {
  std::string name;                 // the option's label, also the test's name
  std::function<void(int fd)> run;  // sets and reads back on a fresh TCP socket
};

void PrintTo(const OptionCase& c, std::ostream* os) { *os << c.name; }

// Sets each step's first value in turn and expects get_option to report its
// second. Steps that go back and forth prove the set took effect whatever the
// system's default happens to be.
template <class T>
OptionCase round_trip(const SockOpt<T>& o, std::vector<std::pair<T, T>> steps) {
  return {o.label, [o, steps](int fd) {
            for (const auto& [value, reads_back] : steps) {
              SCOPED_TRACE(std::string(o.label) + " set to " + std::to_string(to_int(value)));
              Result<void> set = set_option(fd, o, value);
              ASSERT_TRUE(set.ok()) << set.error().message();
              Result<T> got = get_option(fd, o);
              ASSERT_TRUE(got.ok()) << got.error().message();
              EXPECT_EQ(to_int(*got), to_int(reads_back));
            }
          }};
}

// SO_BUSY_POLL_BUDGET has no getsockopt: what the kernel accepts and refuses
// shows it was stored (and SockOptDeathTest reads the stored value back
// through EPERM).
OptionCase busy_poll_budget_case() {
  return {opt::busy_poll_budget.label, [](int fd) {
            for (int value : {64, 0, 65535}) {
              Result<void> r = set_option(fd, opt::busy_poll_budget, value);
              EXPECT_TRUE(r.ok()) << value << ": " << r.error().message();
            }
            Result<void> r = set_option(fd, opt::busy_poll_budget, 65536);  // above U16_MAX
            ASSERT_FALSE(r.ok());
            EXPECT_TRUE(r.error().is(EINVAL)) << r.error().message();
          }};
}

std::vector<OptionCase> every_option() {
  return {
      round_trip(opt::reuse_addr, {{true, true}, {false, false}}),
      round_trip(opt::reuse_port, {{true, true}, {false, false}}),
      round_trip(opt::keepalive, {{true, true}, {false, false}}),
      // The kernel doubles a buffer size for its bookkeeping (socket(7)).
      round_trip(opt::send_buffer, {{64 << 10, 128 << 10}, {32 << 10, 64 << 10}}),
      round_trip(opt::receive_buffer, {{64 << 10, 128 << 10}, {32 << 10, 64 << 10}}),
      round_trip(opt::incoming_cpu, {{0, 0}, {-1, -1}}),
      // Raising these needs CAP_NET_ADMIN (SO_BUSY_POLL only before Linux
      // 6.4); the tests run as root, and lowering never needs it.
      round_trip(opt::busy_poll, {{50us, 50us}, {0us, 0us}}),
      round_trip(opt::prefer_busy_poll, {{true, true}, {false, false}}),
      busy_poll_budget_case(),
      round_trip(opt::tcp_nodelay, {{true, true}, {false, false}}),
      round_trip(opt::notsent_lowat, {{16 << 10, 16 << 10}, {128 << 10, 128 << 10}}),
      round_trip(opt::keep_idle, {{30s, 30s}, {1s, 1s}}),
      round_trip(opt::keep_interval, {{10s, 10s}, {1s, 1s}}),
      round_trip(opt::keep_count, {{4, 4}, {1, 1}}),
      // Kept as a count of SYN-ACK retransmissions (1 s, then doubling), read
      // back as the seconds those cover: 1, 3, 7, 15, ...
      round_trip(opt::defer_accept, {{3s, 3s}, {5s, 7s}, {0s, 0s}}),
  };
}

// The access is part of an option's type (see sockopt.h).
template <class O>
concept Gettable = requires(const O& o) { get_option(0, o); };
template <class O>
concept Settable = requires(const O& o) { set_option(0, o, 0); };
static_assert(Gettable<decltype(opt::keep_count)> && Settable<decltype(opt::keep_count)>);
static_assert(!Gettable<decltype(opt::busy_poll_budget)> && Settable<decltype(opt::busy_poll_budget)>);
static_assert(Gettable<decltype(opt::error)> && !Settable<decltype(opt::error)>);

class SockOptRoundTrip : public ::testing::TestWithParam<OptionCase> {};

TEST_P(SockOptRoundTrip, SetThenGetReportsTheKernelsValue) {
  Result<Fd> s = socket(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(s.ok()) << s.error().message();
  GetParam().run(s->get());
}

INSTANTIATE_TEST_SUITE_P(EveryOption, SockOptRoundTrip, ::testing::ValuesIn(every_option()),
                         [](const auto& p) { return p.param.name; });

// --- SO_ERROR and errors ------------------------------------------------------------

TEST(SockOptTest, FreshSocketHasNoPendingError) {
  Result<Fd> s = socket(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(s.ok());
  Result<int> e = get_option(s->get(), opt::error);
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(*e, 0);
}

TEST(SockOptTest, RefusedNonBlockingConnectLeavesEconnrefusedInSoError) {
  // The reactor's connect: EINPROGRESS, wait for writability, read SO_ERROR.
  Result<Fd> quiet = socket(AF_INET, SOCK_STREAM);  // bound, never listening
  ASSERT_TRUE(quiet.ok());
  ASSERT_TRUE(bind(quiet->get(), SockAddr::ipv4_loopback(0)).ok());
  Result<SockAddr> closed = getsockname(quiet->get());
  ASSERT_TRUE(closed.ok());

  Result<Fd> client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ASSERT_TRUE(client.ok());
  Result<void> r = connect(client->get(), *closed);
  ASSERT_FALSE(r.ok());
  if (r.error().is(ECONNREFUSED)) return;  // the reset came back before connect returned
  ASSERT_TRUE(r.error().is(EINPROGRESS)) << r.error().message();
  pollfd p{client->get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  Result<int> e = get_option(client->get(), opt::error);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, ECONNREFUSED);
  EXPECT_EQ(*get_option(client->get(), opt::error), 0) << "reading SO_ERROR clears it";
}

TEST(SockOptTest, ErrorsOnANonSocketNameTheOption) {
  Result<Fd> efd = eventfd();
  ASSERT_TRUE(efd.ok());
  Result<void> set = set_option(efd->get(), opt::reuse_addr, true);
  ASSERT_FALSE(set.ok());
  EXPECT_TRUE(set.error().is(ENOTSOCK));
  EXPECT_THAT(set.error().message(), StartsWith("setsockopt SO_REUSEADDR: ENOTSOCK ("));
  Result<bool> get = get_option(efd->get(), opt::tcp_nodelay);
  ASSERT_FALSE(get.ok());
  EXPECT_THAT(get.error().message(), StartsWith("getsockopt TCP_NODELAY: ENOTSOCK ("));
}

TEST(SockOptTest, PrivilegeHintIsOnlyAddedToEperm) {
  Result<Fd> s = socket(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(s.ok());
  Result<void> r = set_option(s->get(), opt::busy_poll, -1us);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(EINVAL));
  EXPECT_EQ(r.error().hint(), nullptr);
  EXPECT_EQ(r.error().message(), "setsockopt SO_BUSY_POLL: EINVAL (Invalid argument)");
}

// --- Without CAP_NET_ADMIN ------------------------------------------------------------

// The body of a death-test child, on a fresh socket: sets `o` to `start`
// (still privileged), drops CAP_NET_ADMIN, sets `start` again (not a raise,
// so allowed), then `higher`. Prints the outcome to stderr; exits 0 on EPERM,
// 2 when the kernel accepted the raise (and, if it can, reads it back).
template <class T, OptAccess A>
[[noreturn]] void raise_without_net_admin(const SockOpt<T, A>& o, T start, T higher) {
  Result<Fd> s = socket(AF_INET, SOCK_STREAM);
  Result<void> before = s ? set_option(s->get(), o, start) : Result<void>(s.error());
  if (!before) {
    std::fprintf(stderr, "%s\n", before.error().message().c_str());
    ::_exit(4);
  }
  if (!drop_effective_capability(CAP_NET_ADMIN)) {
    std::fprintf(stderr, "capset failed\n");
    ::_exit(3);
  }
  if (Result<void> same = set_option(s->get(), o, start); !same) {
    std::fprintf(stderr, "setting the current value again: %s\n", same.error().message().c_str());
    ::_exit(6);
  }
  Result<void> r = set_option(s->get(), o, higher);
  if (r.ok()) {
    if constexpr (A != OptAccess::write_only) {
      Result<T> now = get_option(s->get(), o);
      std::fprintf(stderr, "accepted, reads back %d\n", now ? to_int(*now) : -1);
      ::_exit(now && to_int(*now) == to_int(higher) ? 2 : 5);
    }
    std::fprintf(stderr, "accepted\n");
    ::_exit(2);
  }
  std::fprintf(stderr, "%s\n", r.error().message().c_str());
  ::_exit(r.error().is(EPERM) ? 0 : 1);
}

class SockOptDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_effective_capability(CAP_NET_ADMIN)) {
      GTEST_SKIP() << "needs CAP_NET_ADMIN to drop (run as root): an unprivileged process "
                      "cannot show the difference";
    }
  }
};

TEST_F(SockOptDeathTest, PreferBusyPollNeedsNetAdmin) {
  EXPECT_EXIT(raise_without_net_admin(opt::prefer_busy_poll, false, true),
              ::testing::ExitedWithCode(0),
              "setsockopt SO_PREFER_BUSY_POLL: EPERM \\(.*\\): enabling it needs CAP_NET_ADMIN");
}

// Setting 64 again is allowed and 65 is not: the kernel holds exactly 64,
// the read-back SO_BUSY_POLL_BUDGET otherwise lacks.
TEST_F(SockOptDeathTest, BusyPollBudgetNeedsNetAdmin) {
  EXPECT_EXIT(raise_without_net_admin(opt::busy_poll_budget, 64, 65),
              ::testing::ExitedWithCode(0),
              "setsockopt SO_BUSY_POLL_BUDGET: EPERM \\(.*\\): raising it needs CAP_NET_ADMIN");
}

// Linux 6.4 (commit 48b7ea1d22dd, "net: make SO_BUSY_POLL available to all
// users") dropped the check for SO_BUSY_POLL: before it the raise is EPERM
// with the hint, from it on the raise is accepted and reads back.
TEST_F(SockOptDeathTest, BusyPollNeedsNetAdminBeforeLinux64) {
  const auto eperm_or_accepted = [](int status) {
    return WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 2);
  };
  EXPECT_EXIT(raise_without_net_admin(opt::busy_poll, 0us, 50us),
              eperm_or_accepted,
              "setsockopt SO_BUSY_POLL: EPERM \\(.*\\): raising it needs CAP_NET_ADMIN|"
              "accepted, reads back 50");
}

}  // namespace
}  // namespace ringo::sys
