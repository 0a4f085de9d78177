// ringo-doctor: checks that this machine can run Ringo servers well, and says
// what to change where it cannot. It is what the README's run command runs
// until the gateway exists.
//
// Each check prints one line: "ok", "warn" (works, but a server will be slower
// or hold fewer connections than it could) or "FAIL" (a Ringo server cannot
// work as configured). The exit status is 1 when any check failed, 0 otherwise.
// It only reads system settings and uses loopback sockets; it changes nothing
// but its own RLIMIT_NOFILE soft limit.
#include <dlfcn.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "reactor/backend.h"
#include "syscall/cpu.h"
#include "syscall/fd_registry.h"
#include "syscall/io.h"
#include "syscall/rlimit.h"
#include "syscall/socket.h"
#include "syscall/sockopt.h"

namespace {

using namespace ringo::sys;

int g_failures = 0;
int g_warnings = 0;

void ok(std::string_view what, std::string_view detail) { fmt::print("  ok    {:<22} {}\n", what, detail); }
void warn(std::string_view what, std::string_view detail) {
  ++g_warnings;
  fmt::print("  warn  {:<22} {}\n", what, detail);
}
void fail(std::string_view what, std::string_view detail) {
  ++g_failures;
  fmt::print("  FAIL  {:<22} {}\n", what, detail);
}

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

void check_kernel() {
  utsname u{};
  ::uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  if (major > 6 || (major == 6 && minor >= 1)) {
    ok("kernel", fmt::format("Linux {} (io_uring multishot, DEFER_TASKRUN available)", u.release));
  } else if (major == 5 && minor >= 19) {
    warn("kernel", fmt::format("Linux {}: io_uring works; DEFER_TASKRUN needs 6.1", u.release));
  } else {
    warn("kernel", fmt::format("Linux {}: older than 5.19; Ringo will fall back to epoll", u.release));
  }
}

// Sets up each backend the way a loop would, so the answer is the real one
// (sysctl, seccomp, RLIMIT_MEMLOCK and missing opcodes included).
void check_backends() {
  namespace reactor = ringo::reactor;
  if (auto uring = reactor::make_backend(reactor::BackendKind::io_uring)) {
    ok("io_uring", (*uring)->describe());
  } else {
    warn("io_uring", uring.error().message() + "; Ringo will use epoll");
  }
  if (auto epoll = reactor::make_backend(reactor::BackendKind::epoll)) {
    ok("epoll", (*epoll)->describe());
  } else {
    fail("epoll", epoll.error().message());
  }
}

void check_cpus() {
  auto cpus = affinity_cpus();
  if (!cpus) return fail("cpus", cpus.error().message());
  std::string list;
  for (int c : *cpus) list += (list.empty() ? "" : ",") + std::to_string(c);
  ok("cpus", fmt::format("{} in this process's affinity mask ({}): one loop per CPU", cpus->size(), list));
}

void check_nofile() {
  auto before = getrlimit(RLIMIT_NOFILE);
  auto raised = raise_nofile_limit();
  if (!before || !raised) return fail("RLIMIT_NOFILE", (before ? raised.error() : before.error()).message());
  const std::string detail = fmt::format("soft {} -> {} (hard {}); about {} connections per process",
                                         before->soft, raised->soft, raised->hard, raised->soft - 64);
  if (raised->hard < 65536) {
    warn("RLIMIT_NOFILE", detail + "; raise the hard limit (ulimit -Hn / LimitNOFILE=) for more");
  } else {
    ok("RLIMIT_NOFILE", detail);
  }
  const std::string somaxconn = read_sysctl("/proc/sys/net/core/somaxconn");
  if (!somaxconn.empty() && std::stol(somaxconn) < 4096) {
    warn("net.core.somaxconn", somaxconn + ": accept backlog is capped there; 4096+ absorbs connection bursts");
  } else if (!somaxconn.empty()) {
    ok("net.core.somaxconn", somaxconn);
  }
}

// Sets one tuning option on a fresh TCP socket and reads it back.
template <class T>
void check_option(int fd, const SockOpt<T>& o, T value, const char* why) {
  if (auto r = set_option(fd, o, value); !r) {
    return warn(o.label, fmt::format("{} ({})", r.error().message(), why));
  }
  auto back = get_option(fd, o);
  if (!back) return warn(o.label, back.error().message());
  ok(o.label, fmt::format("settable ({})", why));
}

void check_socket_options() {
  auto s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  if (!s) return fail("socket", s.error().message());
  using namespace std::chrono_literals;
  check_option(s->get(), opt::reuse_port, true, "one listener per loop");
  check_option(s->get(), opt::tcp_nodelay, true, "no Nagle delay on small responses");
  check_option(s->get(), opt::notsent_lowat, 16384, "bounded send buffering for SSE");
  check_option(s->get(), opt::busy_poll, std::chrono::microseconds(50), "busy polling for latency");
  check_option(s->get(), opt::prefer_busy_poll, true, "busy polling preferred over interrupts");
  const std::string busy_read = read_sysctl("/proc/sys/net/core/busy_read");
  ok("net.core.busy_read", busy_read.empty() ? "absent" : busy_read + " us (system default for SO_BUSY_POLL)");
}

void check_loopback() {
  auto listener = socket(AF_INET, SOCK_STREAM);
  if (!listener) return fail("loopback TCP", listener.error().message());
  if (auto r = bind(listener->get(), SockAddr::ipv4_loopback(0)); !r) return fail("loopback TCP", r.error().message());
  if (auto r = listen(*listener, 8); !r) return fail("loopback TCP", r.error().message());
  auto addr = getsockname(listener->get());
  auto client = socket(AF_INET, SOCK_STREAM);
  if (!addr || !client) return fail("loopback TCP", "socket/getsockname failed");
  if (auto r = connect(client->get(), *addr); !r) return fail("loopback TCP", r.error().message());
  auto server = accept4(listener->get(), nullptr, 0);
  if (!server) return fail("loopback TCP", server.error().message());
  const char ping[] = "ping";
  auto w = write(client->get(), std::as_bytes(std::span(ping, 4)));
  std::byte buf[8];
  auto r = read(server->get(), buf);
  if (!w || !r || *r != 4) return fail("loopback TCP", "a 4-byte ping did not arrive");
  ok("loopback TCP", fmt::format("connect/accept/send/recv on {}", addr->to_string()));
}

void check_registry() {
  if (!fd_registry::kEnabled) {
    return warn("fd registry", "compiled out (RINGO_FD_REGISTRY=OFF): no /debug/fds, no leak reports");
  }
  const FdKindCounts c = fd_registry::counts();
  ok("fd registry", fmt::format("on; {} live framework fds now (all checks closed theirs)", c.total));
}

void check_allocator() {
  // jemalloc exports mallctl; glibc's malloc does not.
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  auto mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  const char* version = nullptr;
  std::size_t len = sizeof(version);
  if (mallctl && mallctl("version", &version, &len, nullptr, 0) == 0) {
    ok("allocator", fmt::format("jemalloc {}", version));
  } else {
    warn("allocator", "glibc malloc (a sanitizer build, or built with RINGO_JEMALLOC=OFF)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      fmt::print("usage: ringo-doctor\n  Checks kernel, limits and socket options for Ringo servers.\n"
                 "  Exit status: 0 when nothing failed, 1 when a check failed, 2 on bad usage.\n");
      return 0;
    }
    fmt::print(stderr, "ringo-doctor: unknown argument '{}' (try --help)\n", argv[i]);
    return 2;
  }
  fmt::print("ringo-doctor: can this machine run Ringo servers well?\n");
  check_kernel();
  check_backends();
  check_cpus();
  check_nofile();
  check_socket_options();
  check_loopback();
  check_registry();
  check_allocator();
  fmt::print("ringo-doctor: {} failed, {} warnings\n", g_failures, g_warnings);
  return g_failures ? 1 : 0;
}
