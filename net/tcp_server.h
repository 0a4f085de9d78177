// TcpServer: a listener per loop of a LoopGroup (SO_REUSEPORT on one port),
// an accept fiber per loop, and a fiber per connection running the handler:
// the goroutine-per-connection model, on per-core loops.
//
//   auto group = reactor::LoopGroup::start({}).value();
//   auto server = net::TcpServer::start(*group, {.address = sys::SockAddr::ipv4_any(8080)},
//       [](net::TcpStream& conn, const net::Connection& c) {
//         std::byte buf[4096];
//         while (auto n = conn.read(buf)) {          // c.token(): cancelled by stop()
//           if (*n == 0 || !conn.write_all({buf, *n})) break;
//         }
//       }).value();
//   ...
//   server->stop();   // stops accepting, cancels every connection, waits for them
//
// Invariants:
//  - The handler runs in its own fiber, on the loop that accepted the
//    connection, with the connection's token as the fiber's token (so every
//    blocking call in it ends with ECANCELED when the server stops). The
//    connection is closed when the handler returns (or throws: the exception
//    is logged with the peer's address, the server goes on).
//  - Accept errors never spin: EMFILE/ENFILE pause that loop's accepting with
//    one logged line (the reason and the limit), and it resumes when one of its
//    connections closes or after `emfile_backoff`, whichever comes first;
//    ECONNABORTED is skipped. Over `max_connections` (per loop) accepting waits
//    likewise, so the kernel's backlog, not our memory, absorbs the excess.
//  - stop() may be called from any thread or fiber but the server's own
//    connection fibers (it waits for them), more than once; it returns when
//    every accept and connection fiber has ended. Destruction stops. The
//    loops must run until stop() returns.
//
// Rejected: a handler returning a future/awaitable (fibers make the blocking
// style free); a connection object the handler must close (closing on return
// cannot be forgotten).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fiber/cancel.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "reactor/loop_group.h"
#include "syscall/result.h"
#include "syscall/socket.h"

namespace ringo::net {

struct ServerOptions {
  sys::SockAddr address = sys::SockAddr::ipv4_any(0);  // port 0: the kernel picks (all loops share it)
  ListenOptions listen;
  std::size_t max_connections = 0;  // per loop; 0: no limit but the descriptor limit
  std::chrono::milliseconds emfile_backoff{100};
  std::size_t stack_size = 0;       // connection fibers' stacks; 0: the pool's default
  std::string name = "tcp";         // in fiber names ("tcp-conn") and log lines
};

// What a connection handler knows besides its stream.
class Connection {
 public:
  const sys::SockAddr& peer() const { return peer_; }
  // Cancelled when the server stops (the handler's fiber token is this).
  const CancelToken& token() const { return token_; }
  int loop_index() const { return loop_index_; }

  Connection(sys::SockAddr peer, CancelToken token, int loop_index)
      : peer_(peer), token_(std::move(token)), loop_index_(loop_index) {}

 private:
  sys::SockAddr peer_;
  CancelToken token_;
  int loop_index_;
};

using ConnectionHandler = std::function<void(TcpStream& stream, const Connection& connection)>;

struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t active = 0;
  std::uint64_t accept_pauses = 0;  // EMFILE/ENFILE or max_connections
};

class TcpServer {
 public:
  static sys::Result<std::unique_ptr<TcpServer>> start(reactor::LoopGroup& group, ServerOptions options,
                                                       ConnectionHandler handler);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  std::uint16_t port() const { return port_; }
  sys::SockAddr address() const;  // the bound address (the port filled in)
  ServerStats stats() const;
  void stop();

 private:
  struct PerLoop;
  TcpServer() = default;

  std::uint16_t port_ = 0;
  sys::SockAddr address_;
  std::vector<std::unique_ptr<PerLoop>> loops_;
  std::atomic<bool> stopped_{false};
};

}  // namespace ringo::net
