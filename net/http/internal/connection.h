// internal::Connection: one HTTP/1.1 connection's life on its fiber: the
// read buffer, the parser, the request and response objects it reuses, and
// the per-connection timer that enforces the timeouts of server.h.
//
//   loop:  read once  ->  parse + handle every complete request buffered
//          (each response appended to out_)  ->  write out_ (one write)
//
// Buffer layout (buf_, cap_ bytes):
//   [0, start_)         consumed, free for compaction
//   [start_, parsed_)   the current message as parsed so far: its head
//                       (views in parser_ and req_ point here) up to
//                       head_end_, then body bytes already delivered
//   [parsed_, end_)     read, not parsed yet (pipelined requests)
// Bodies are handed to handlers as a view into the buffer when they arrived
// with their head in one read (the common case), otherwise copied to body_
// before the next read, so the buffer holds at most one head plus one read:
// cap_ never grows past max_head_bytes + read_buffer_bytes.
//
// Timeouts: one reactor::Timer per connection, armed lazily. deadline_ns_
// is the current phase's deadline (kNoDeadline while a handler runs); the
// timer fires at or after it (when it fires early, because the deadline moved
// later, it re-arms itself at the new one), and then cancels io_source_, the
// token every read and write of the connection uses. Moving the deadline on
// each batch is a store, not a heap operation. The batch loop's timestamps
// come from the coarse monotonic clock (a tick, 1-4 ms, behind at most), so
// a timeout may end that much early.
//
// Hijack: the connection's last request becomes a stream that may stay open
// for hours (SSE), so hijack() hands back what the connection will never use
// again: the read buffer and the parser (with its 32-field header array) are
// freed, and the request's views (target, headers, params, body) are first
// moved into one block of exactly their size, so they stay valid until the
// handler returns, as for any request. For the SSE ticker that frees ~2.4 KiB
// per stream for a ~160-byte copy. The parser is a block of its own for this
// (inline, it would stay allocated with the Connection). Whatever was read
// after the hijacked request goes with the buffer: the server never serves
// it (the connection closes when the handler returns), as before.
//
// The Connection lives on the heap (server.cc), not on its fiber's stack:
// its ~1.2 KiB there pushed every handler's frames that much deeper, and an
// SSE handler parked in a sleep touched a second stack page (4 KiB resident
// per stream; measured 8.0 -> 4.2 KiB of stack per stream at 10,000 streams
// with this and hijack's release together).
//
// Invariants:
//  - One reader and one writer at a time on the socket: this fiber does
//    both, never at once; a HangupWatch (response.h) exists only while a
//    handler runs, when this fiber reads nothing.
//  - Every timeout and every error ends the connection: io_source_ is
//    cancelled at most once and never needs resetting. The farewell (a 408
//    or 400 response, the lingering drain) uses a token of its own made from
//    the connection's token.
//  - The timer is never left armed when the Connection is destroyed.
//  - After hijack() the connection reads and parses nothing more: buf_ and
//    parser_ are gone, and the batch ends with End::close once the handler
//    returns.
//
// Rejected alternatives:
//  - Keeping the request's buffer after hijack and shrinking it in place:
//    the allocator moves a block that changes size class anyway, and the
//    parser's header array would still be the parser's.
//  - A token deadline per read (token.with_timeout): a linked timeout SQE
//    and its completion on every io_uring read, i.e. on every batch of the
//    plaintext benchmark; the lazy timer costs nothing per batch.
//  - A fiber per connection for the timeout (sleep, then cancel): a stack
//    per connection for a timer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fiber/cancel.h"
#include "net/http/parser.h"
#include "net/http/request.h"
#include "net/http/response.h"
#include "net/http/router.h"
#include "net/http/server.h"
#include "net/tcp_server.h"
#include "net/tcp_stream.h"
#include "reactor/loop.h"
#include "reactor/timer_heap.h"

namespace ringo::net::http {

namespace internal {

// One loop's counters: written only by that loop's thread (a relaxed load
// and store, no locked instruction), read by Server::stats() from anywhere.
struct alignas(64) LoopCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> bad_requests{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> handler_errors{0};
  std::atomic<std::uint64_t> hijacked{0};

  static void bump(std::atomic<std::uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

}  // namespace internal

struct Server::Shared {
  ServerOptions options;
  Router router;
  std::size_t loops = 0;
  std::unique_ptr<internal::LoopCounters[]> counters;
};

namespace internal {

class Connection {
 public:
  Connection(const Server::Shared& shared, TcpStream& stream, const net::Connection& info);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves requests until the connection ends.
  void serve();
  // ResponseWriter::hijack: writes what earlier requests of the batch
  // answered (and a pending 100 Continue) before the handler takes over,
  // then releases the read buffer and the parser (see the head comment).
  void hijack();

  // What the connection holds on the heap beyond its own object (tests).
  struct Held {
    std::size_t read_buffer = 0;   // the read buffer's capacity
    bool parser = false;           // the parser (and its header array) is alive
    std::size_t request_copy = 0;  // the hijacked request's own block, in bytes
  };
  Held held() const;
  // The connection behind `writer` (tests: ResponseWriter is bound to one).
  static const Connection& of(const ResponseWriter& writer) { return *writer.connection_; }

 private:
  enum class Phase : std::uint8_t { idle, head, body };  // what a read waits for
  enum class End : std::uint8_t { keep, close, linger };  // after the current batch
  enum class ReadResult : std::uint8_t { data, eof, failed };

  // The batch loop's steps.
  ReadResult read_some();
  End process();
  End on_head();
  End on_message();
  End run_handler(const Handler& handler, bool keep_alive, bool http10_keep_alive, bool head_only);
  void add_body(std::string_view piece);
  bool flush();
  void after_batch(std::int64_t now);
  void on_read_end(ReadResult r);
  // Ending.
  End respond_error(int status, std::string_view message);
  void linger();

  // The buffer.
  void prepare_buffer();
  void detach_body();
  void release_request_buffers();
  std::string_view unparsed() const { return {buf_.get() + parsed_, end_ - parsed_}; }

  // The timer.
  void set_deadline(std::int64_t deadline_ns);
  void clear_deadline() { deadline_ns_ = CancelToken::kNoDeadline; }
  static void on_timer(reactor::Timer& timer);

  const Server::Shared& shared_;
  const HttpLimits& limits_;
  LoopCounters& counters_;
  TcpStream& stream_;
  const net::Connection& info_;
  reactor::Loop* loop_;

  CancelSource io_source_;  // cancelled by the timer; child of the connection's token
  CancelToken io_token_;
  CancelToken conn_token_;  // what handlers get
  reactor::Timer timer_;
  std::int64_t deadline_ns_ = CancelToken::kNoDeadline;
  bool expired_ = false;
  Phase phase_ = Phase::idle;
  std::int64_t read_time_ns_ = 0;  // when the last read completed
  std::int64_t head_time_ns_ = 0;  // when the current head completed

  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0;
  std::size_t start_ = 0, head_end_ = 0, parsed_ = 0, end_ = 0;

  std::unique_ptr<Parser> parser_;  // its own block: hijack() frees it (see the head comment)
  std::unique_ptr<HeaderField[]> held_;  // after hijack: req_'s header array, then its bytes
  std::size_t held_bytes_ = 0;
  Request req_;
  ResponseWriter writer_;
  std::string_view body_view_;
  bool body_copied_ = false;
  std::string body_;
  std::string out_;
  std::string allow_;
  std::string_view date_;  // this batch's Date value (date_cache.h)
};

}  // namespace internal
}  // namespace ringo::net::http
