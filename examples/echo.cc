// echo: a TCP echo server, one fiber per connection, written as if blocking.
//
//   build/release/examples/echo --port 7000 --threads 2 --backend uring
//
// Each connection's bytes come back as they arrive, until the client closes
// its side (then the server closes too) or the server stops (SIGINT/SIGTERM:
// every connection's token is cancelled, the reads end with ECANCELED).
// A connection idle for 5 minutes is closed: an echo server must not be
// held open forever by clients that went away without a FIN.
#include <array>
#include <chrono>
#include <cstdio>

#include "examples/common/server_main.h"
#include "net/tcp_server.h"

using namespace ringo;

int main(int argc, char** argv) {
  const examples::ServerFlags flags =
      examples::parse_server_flags(argc, argv, "Echoes every byte back, per connection.\n");
  auto group = examples::start_loops(flags);

  net::ServerOptions options;
  options.address = examples::listen_address(flags);
  options.name = "echo";
  auto server = net::TcpServer::start(*group, options, [](net::TcpStream& conn, const net::Connection& c) {
    std::array<std::byte, 16 * 1024> buf;
    for (;;) {
      auto n = conn.read(buf, c.token().with_timeout(std::chrono::minutes(5)));
      if (!n || *n == 0) return;
      if (!conn.write_all(std::span<const std::byte>(buf.data(), *n), c.token())) return;
    }
  });
  return examples::serve_until_signal("echo", std::move(server), *group);
}
