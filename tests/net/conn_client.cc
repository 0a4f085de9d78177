// net_conn_client: the client half of tests/net/many_connections_test.cc, in
// its own process so that each side has RLIMIT_NOFILE to itself (the hard
// limit is 20,000 on the test machines: 10,000 connections need 10,000
// descriptors on each side).
//
//   net_conn_client <port> <connections> <uring|epoll>
//
// One fiber per connection on one loop: connect (at most 256 in progress at
// once, so the server's backlog is not overrun), one round trip, then wait
// until every connection has made its round trip (so all are open at the same
// time), a second round trip, close. Each client socket is bound to a source
// address 127.x.y.z picked at random, so the ephemeral ports of earlier runs
// (in TIME_WAIT) do not limit this one. Prints "ok <n>" and exits 0, or
// "failed <n>: <first error>" and exits 1.
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "fiber/fiber.h"
#include "fiber/io.h"
#include "fiber/sync.h"
#include "net/tcp_stream.h"
#include "syscall/rlimit.h"

using namespace ringo;
using namespace std::chrono_literals;

namespace {

struct Run {
  sys::SockAddr server;
  sys::SockAddr source;
  fiber::Semaphore connecting{256};
  fiber::Latch all_open;
  std::atomic<int> failed{0};
  std::string first_error;
  explicit Run(int n) : all_open(n) {}

  void fail(const std::string& what) {
    if (failed.fetch_add(1) == 0) first_error = what;
  }
};

bool round_trip(net::TcpStream& s, const std::string& text, Run& run) {
  if (auto w = s.write_all(text, CancelToken().with_timeout(30s)); !w) {
    run.fail(w.error().message());
    return false;
  }
  std::string got;
  std::byte buf[64];
  while (got.size() < text.size()) {
    auto n = s.read(buf, CancelToken().with_timeout(30s));
    if (!n || *n == 0) {
      run.fail(n ? "the server closed early" : n.error().message());
      return false;
    }
    got.append(reinterpret_cast<char*>(buf), *n);
  }
  if (got != text) run.fail("echo mismatch: " + got);
  return got == text;
}

void client(Run& run, int i) {
  net::TcpStream s;
  {
    (void)run.connecting.acquire();
    auto fd = sys::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP);
    int one = 1;
    if (fd) setsockopt(fd->get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sys::Result<void> r = !fd ? sys::Result<void>(fd.error()) : sys::bind(fd->get(), run.source);
    if (r) r = io::connect(fd->get(), run.server, CancelToken().with_timeout(60s));
    run.connecting.release();
    if (!r) {
      run.fail(r.error().message());
      run.all_open.count_down();
      return;
    }
    s = net::TcpStream(std::move(*fd));
  }
  const bool first = round_trip(s, "hello " + std::to_string(i) + "\n", run);
  run.all_open.count_down();
  (void)run.all_open.wait();
  if (first) round_trip(s, "bye " + std::to_string(i) + "\n", run);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, n = 0;
  if (argc != 4 || std::from_chars(argv[1], argv[1] + std::strlen(argv[1]), port).ec != std::errc() ||
      std::from_chars(argv[2], argv[2] + std::strlen(argv[2]), n).ec != std::errc() || n <= 0) {
    std::fprintf(stderr, "usage: net_conn_client <port> <connections> <uring|epoll>\n");
    return 2;
  }
  auto backend = reactor::parse_backend_kind(argv[3]);
  if (!backend) {
    std::fprintf(stderr, "net_conn_client: %s\n", backend.error().message().c_str());
    return 2;
  }
  if (auto lim = sys::raise_nofile_limit(); !lim) {
    std::fprintf(stderr, "net_conn_client: %s\n", lim.error().message().c_str());
  }
  reactor::Loop::Options options;
  options.backend = *backend;
  auto loop = reactor::Loop::create(options);
  if (!loop) {
    std::fprintf(stderr, "net_conn_client: %s\n", loop.error().message().c_str());
    return 1;
  }
  Run run(n);
  run.server = sys::SockAddr::ipv4_loopback(static_cast<std::uint16_t>(port));
  std::random_device rd;
  const std::string source = "127." + std::to_string(1 + rd() % 250) + "." + std::to_string(rd() % 256) + "." +
                             std::to_string(1 + rd() % 250);
  run.source = sys::SockAddr::parse(source, 0).value();
  auto main_fiber = go_on(**loop, [&] {
    fiber::WaitGroup wg;
    for (int i = 0; i < n; ++i) {
      wg.add(1);
      go([&run, &wg, i] {
        client(run, i);
        wg.done();
      });
    }
    (void)wg.wait();
  });
  while (!main_fiber.done()) (*loop)->run_once(std::chrono::milliseconds(100));
  main_fiber.join();
  if (run.failed.load() != 0) {
    std::printf("failed %d: %s\n", run.failed.load(), run.first_error.c_str());
    return 1;
  }
  std::printf("ok %d\n", n);
  return 0;
}
