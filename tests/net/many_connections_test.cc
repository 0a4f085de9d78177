// 10,000 concurrent connections on loopback: the server (a TcpServer echoing
// on two loops) in this process, the clients in their own process
// (net_conn_client), each side with its own RLIMIT_NOFILE. The client holds
// every connection open until all have made a round trip, so the server's
// count of open connections must reach 10,000 at once.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "net/tcp_server.h"
#include "syscall/rlimit.h"
#include "tests/fiber/fiber_fixture.h"

extern char** environ;

namespace ringo::net {
namespace {

class ManyConnectionsTest : public fiber::testing::FiberLoopTest {};

constexpr int kConnections = 10'000;

// Runs the client; its stdout and exit status.
std::pair<std::string, int> run_client(std::uint16_t port, const char* backend) {
  int out[2];
  if (pipe(out) != 0) return {"pipe failed", -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string port_s = std::to_string(port), n_s = std::to_string(kConnections);
  const char* argv[] = {RINGO_CONN_CLIENT, port_s.c_str(), n_s.c_str(), backend, nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, RINGO_CONN_CLIENT, &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return {std::string("posix_spawn failed: ") + std::strerror(rc), -1};
  }
  std::string text;
  char buf[256];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {text, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
}

TEST_P(ManyConnectionsTest, TenThousandConcurrentConnections) {
  auto limit = sys::raise_nofile_limit();
  ASSERT_TRUE(limit.ok()) << limit.error().message();
  std::printf("RLIMIT_NOFILE soft/hard after raising: %llu/%llu (each process needs %d + a few)\n",
              static_cast<unsigned long long>(limit->soft), static_cast<unsigned long long>(limit->hard),
              kConnections);
  if (limit->soft < static_cast<rlim_t>(kConnections + 200)) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit->hard << " is below " << kConnections + 200;
  }
  auto group = start_group(2, true);
  ASSERT_TRUE(group);
  std::atomic<int> open{0}, peak{0};
  ServerOptions o;
  o.address = sys::SockAddr::ipv4_any(0);
  auto server = TcpServer::start(*group, o, [&](TcpStream& conn, const Connection& c) {
                  const int now = open.fetch_add(1) + 1;
                  for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
                  }
                  std::byte buf[256];
                  for (;;) {
                    auto n = conn.read(buf, c.token());
                    if (!n || *n == 0 || !conn.write_all(std::span<const std::byte>(buf, *n))) break;
                  }
                  open.fetch_sub(1);
                })
                    .value();
  auto [out, status] = run_client(server->port(), GetParam() == reactor::BackendKind::io_uring ? "uring" : "epoll");
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "ok " + std::to_string(kConnections) + "\n");
  EXPECT_EQ(peak.load(), kConnections);
  server->stop();
  EXPECT_EQ(server->stats().accepted, static_cast<std::uint64_t>(kConnections));
  EXPECT_EQ(open.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ManyConnectionsTest, reactor::testing::kAllBackends,
                         reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net
