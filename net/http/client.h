// Client: HTTP/1.1 requests from fibers, over a keep-alive connection pool,
// with streamed response bodies.
//
//   http::Client client;                                 // one per loop
//   auto r = client.send(addr, {.target = "/v1/models"}, token.with_timeout(2s));
//   if (!r) return r.error();                            // connect/send/head errors
//   std::string body = r->read_all().value();            // or r->read_some() in pieces
//   // r's destructor returns the connection to the pool (body read to its end)
//
// Pool: idle connections are kept per "host:port" key (the address's text),
// at most ClientOptions::max_idle_per_host of them (extras are closed), each
// closed after idle_timeout by a reactor timer of the client's loop. A
// connection goes back to the pool only when its response was read to the
// end and both sides allow keep-alive. max_conns_per_host (0: none) bounds
// busy + idle connections per key: send() waits (with its token) for one.
// A pooled connection the server closed meanwhile is noticed before reuse (a
// non-blocking MSG_PEEK recv: 0 or an error means gone) and dropped; if a
// request on a reused connection still fails before any byte of the
// response arrived and the method is idempotent (GET, HEAD, OPTIONS), it is
// sent once more on a fresh connection, as Go's Transport does.
//
// Bodies: Content-Length, chunked (de-chunked by the parser) and
// close-delimited (HTTP/1.0-style, and SSE streams that end by closing).
// read_some() returns views into the connection's read buffer: each read
// fills the buffer after the response head (ClientOptions::read_buffer
// bytes, 16 KiB by default), so a stream of small events costs one recv per
// buffer-full, not per event.
//
// Timeouts: connect_timeout bounds the TCP handshake; the token passed to
// send() (and to each body read) bounds everything else: a whole-request
// deadline is `token.with_timeout(d)` made once and passed to every call.
//
// Errors are sys::Error values naming the step: "http::Client connect:
// ECONNREFUSED", "http::Client response: EPROTO (malformed response: ...)"
// (the parser's message in the hint is static only for the common cases; a
// malformed response is EPROTO), "http::Client response: ECONNRESET (the
// connection closed before the response head)".
//
// Invariants:
//  - A Client and its connections belong to the loop that first uses it:
//    use it from fibers of that loop only (the epoll backend registers a
//    descriptor with one loop's epoll set); destroy it on that loop's thread,
//    after every ClientResponse it made is gone.
//  - A ClientResponse owns its connection until destroyed; only one request
//    is in flight per connection (no pipelining: a client that pipelines
//    cannot retry safely, and servers gain little from it).
//  - Memory per connection is bounded: the read buffer holds the response
//    head (ClientOptions::max_head_bytes at most) and one buffer of body.
//
// Rejected alternatives:
//  - Copying the response head into owned strings: the head stays at the
//    start of the read buffer (body reads land after it), so status, reason
//    and header views stay valid for the response's life at no cost.
//  - A reaper fiber for idle connections: a stack for what a reactor timer
//    does; the timer is armed only while idle connections exist.
//  - One pool shared by every loop: connections would move between loops'
//    backends and need a lock; a pool per loop, like the server's loops, scales.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "net/http/headers.h"
#include "net/socket_options.h"
#include "reactor/loop.h"
#include "reactor/timer_heap.h"
#include "syscall/result.h"
#include "syscall/socket.h"

namespace ringo::net::http {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds idle_timeout{30'000};  // idle pooled connections closed after
  std::size_t max_idle_per_host = 16;
  std::size_t max_conns_per_host = 0;              // busy + idle; 0: no bound
  std::size_t read_buffer = 16 * 1024;             // body bytes per read (after the head)
  std::size_t max_head_bytes = 16 * 1024;          // response status line + headers
  std::size_t max_headers = 100;
  std::uint64_t max_body_bytes = 0;                // 0: no limit (streams)
  SocketOptions socket;                            // applied to each new connection
};

struct ClientRequest {
  std::string_view method = "GET";
  std::string_view target = "/";       // origin-form: path and query
  std::string_view host = {};             // Host header; empty: the address ("127.0.0.1:8080")
  std::span<const HeaderField> headers = {};// extra fields (no Host / Content-Length)
  std::string_view body = {};             // sent with a Content-Length (when non-empty or not GET/HEAD)
};

class Client;

namespace internal {
struct ClientConnection;
}

// One response: the head at once, the body in pieces.
class ClientResponse {
 public:
  ClientResponse() = default;
  ClientResponse(ClientResponse&& o) noexcept;
  ClientResponse& operator=(ClientResponse&& o) noexcept;
  // Returns the connection to the pool when the body was read to its end and
  // keep-alive allows; closes it otherwise.
  ~ClientResponse();

  int status() const;
  std::string_view reason() const;
  std::optional<std::string_view> header(std::string_view name) const;
  std::span<const HeaderField> headers() const;
  // The response came on a pooled connection.
  bool reused() const { return reused_; }
  // When the request's last byte went to the kernel (reactor clock, ns): the
  // start of the wait for the response, for latency measurements.
  std::int64_t request_sent_ns() const { return sent_ns_; }

  // The next piece of the body, valid until the next call on this response;
  // empty once the body has ended (then done() is true).
  sys::Result<std::string_view> read_some(const CancelToken& token = this_fiber::token());
  // The rest of the body; EMSGSIZE past `max` bytes.
  sys::Result<std::string> read_all(std::size_t max = 16 * 1024 * 1024, const CancelToken& token = this_fiber::token());
  bool done() const { return done_; }

 private:
  friend class Client;
  ClientResponse(Client* client, std::unique_ptr<internal::ClientConnection> conn, bool reused);

  Client* client_ = nullptr;
  std::unique_ptr<internal::ClientConnection> conn_;
  bool reused_ = false;
  bool done_ = false;
  std::int64_t sent_ns_ = 0;
};

struct ClientStats {
  std::uint64_t connects = 0;   // new connections
  std::uint64_t reuses = 0;     // requests sent on pooled connections
  std::uint64_t stale = 0;      // pooled connections found closed before reuse
  std::uint64_t retries = 0;    // idempotent requests sent again after a reused connection failed
  std::uint64_t idle_closed = 0;
  std::size_t idle = 0;         // connections in the pool now
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request` to `addr` and reads the response head.
  sys::Result<ClientResponse> send(const sys::SockAddr& addr, const ClientRequest& request,
                                   const CancelToken& token = this_fiber::token());
  sys::Result<ClientResponse> get(const sys::SockAddr& addr, std::string_view target,
                                  const CancelToken& token = this_fiber::token()) {
    return send(addr, ClientRequest{.target = target}, token);
  }

  // Closes every idle connection now.
  void close_idle();
  ClientStats stats() const;
  const ClientOptions& options() const { return options_; }

  struct Host;  // internal: one key's idle connections and slots

 private:
  friend class ClientResponse;
  Host& host(const std::string& key);
  sys::Result<ClientResponse> attempt(const sys::SockAddr& addr, const std::string& key, const ClientRequest& request,
                                      const CancelToken& token, bool allow_reuse, bool* retryable);
  std::unique_ptr<internal::ClientConnection> take_idle(Host& h);
  void release(std::unique_ptr<internal::ClientConnection> conn, bool reusable);
  void arm_reaper();
  static void on_reap(reactor::Timer& t);

  ClientOptions options_;
  reactor::Loop* loop_ = nullptr;  // bound on first use
  std::unordered_map<std::string, std::unique_ptr<Host>> hosts_;
  reactor::Timer reaper_;
  ClientStats stats_;
};

}  // namespace ringo::net::http
