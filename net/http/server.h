// Server: HTTP/1.1 over net::TcpServer: one fiber per connection on the
// loop that accepted it, requests parsed by http::Parser, dispatched through
// a Router, responses of a pipelined batch written with one write.
//
//   http::Router router;
//   router.get("/plaintext", [](http::Request&, http::ResponseWriter& w) {
//     w.send(200, "text/plain", "Hello, World!");
//   });
//   http::ServerOptions options;
//   options.tcp.address = sys::SockAddr::ipv4_any(8080);
//   auto server = http::Server::start(*group, options, std::move(router)).value();
//   ...
//   server->stop();   // cancels every connection (req.token()), waits for them
//
// A connection's life (net/http/internal/connection.h has the details):
//   read once -> parse every complete request buffered -> run each one's
//   handler in order, appending its response -> write them all (one write)
//   -> read again. The read buffer holds one request's head and body at most
//   (bounded by the limits); headers and body are views into it.
//
// Limits and timeouts (HttpLimits; a limit hit ends the connection with the
// status HTTP prescribes, a short text body saying what was exceeded, and
// "Connection: close"):
//   request line + headers > max_head_bytes   431
//   header fields > max_headers               431
//   body > max_body_bytes                      413 (at the head when
//       Content-Length says so, before any body is read; with
//       "Expect: 100-continue" no "100 Continue" is sent then)
//   head not complete header_timeout after the request's first byte: 408
//       (slowloris: measured from the first byte, never reset by more bytes)
//   body not complete body_timeout after the head: 408
//   no byte of a next request idle_timeout after the last response (or
//       header_timeout after the connection was accepted): closed silently
//   responses not taken by the client within write_timeout: closed
//   malformed request, conflicting Content-Length / Transfer-Encoding: 400
// After an error response the server stops reading requests but drains what
// the client still sends for up to linger_timeout (after shutting down its
// side), so the client reads the error instead of a reset.
//
// Invariants:
//  - Responses leave in request order; a pipelined batch costs one read and
//    one write (plus a 100 Continue write when a body is awaited).
//  - A handler that throws gets a 500 (if it had not hijacked), the exception
//    is logged, the connection is closed; the server goes on.
//  - stop() cancels every connection's token (handlers see req.token()
//    cancelled), waits until every connection fiber has ended, and may be
//    called more than once, from any thread but a handler of this server (it
//    would wait for itself).
//  - Counters are per loop (written only by the loop's thread, no shared
//    cache line), summed by stats().
//
// Rejected: a handler per connection the application writes (the TCP layer
// already offers that); running each handler in its own fiber (a fiber per
// request, and responses would need reordering; a handler that wants
// concurrency spawns fibers itself).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "net/http/router.h"
#include "net/tcp_server.h"
#include "reactor/loop_group.h"
#include "syscall/result.h"

namespace ringo::net::http {

struct HttpLimits {
  std::size_t max_head_bytes = 16 * 1024;     // request line + header bytes (431)
  std::size_t max_headers = 100;              // header fields (431)
  std::uint64_t max_body_bytes = 1024 * 1024; // request body after de-chunking (413)
  std::chrono::milliseconds header_timeout{10'000};  // first byte -> end of head (408)
  std::chrono::milliseconds body_timeout{30'000};    // end of head -> end of body (408)
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next request (close)
  std::chrono::milliseconds write_timeout{30'000};   // one batch of responses taken by the client (close)
  std::chrono::milliseconds linger_timeout{1'000};   // draining input before closing after an error
};

struct ServerOptions {
  // Address, listener, connection limit, fiber stack size (net/tcp_server.h).
  net::ServerOptions tcp = [] {
    net::ServerOptions o;
    o.name = "http";
    return o;
  }();
  HttpLimits limits;
  // The read buffer a connection starts with; it grows (up to head + body
  // limits) for a request that needs more, and shrinks back when idle.
  std::size_t read_buffer_bytes = 8 * 1024;
};

struct ServerStats {
  net::ServerStats tcp;              // connections accepted / active
  std::uint64_t requests = 0;        // requests handed to a handler (or answered 404/405)
  std::uint64_t bad_requests = 0;    // 400, 413, 417, 431 sent by the server
  std::uint64_t timeouts = 0;        // 408 sent, or idle/write timeouts that closed
  std::uint64_t handler_errors = 0;  // handlers that threw
  std::uint64_t hijacked = 0;        // connections taken over by hijack()
};

class Server {
 public:
  static sys::Result<std::unique_ptr<Server>> start(reactor::LoopGroup& group, ServerOptions options,
                                                    Router router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const;
  sys::SockAddr address() const;
  ServerStats stats() const;
  void stop();

  struct Shared;  // what every connection reads: options, router, counters

 private:
  Server() = default;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<net::TcpServer> tcp_;
};

}  // namespace ringo::net::http
