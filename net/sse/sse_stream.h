// SseStream: the server side of one Server-Sent Events response. The handler
// writes events; the stream frames them, gathers what is written within one
// loop iteration into one send, keeps a slow reader from costing more than a
// configured amount of memory, disconnects a reader that stops draining, and
// turns the peer's hang-up into a cancellation the handler sees at once.
//
//   router.get("/ticks", [](http::Request& req, http::ResponseWriter& w) {
//     sse::SseStream s(req, w);                 // the head goes out with the first event
//     for (int i = 1;; ++i) {
//       if (!s.send({.data = "tick", .id = std::to_string(i)})) return;
//       if (!this_fiber::sleep_for(1s, s.token())) return;   // ECANCELED when the client leaves
//     }
//   });                                          // ~SseStream: drains, then the connection closes
//
// Coalescing: send() only appends the framed event to the stream's buffer
// and, the first time in a loop iteration, schedules a flush (an intrusive
// reactor::Runnable of the stream) for the loop's next run_ready phase. That
// flush submits one send operation with everything appended meanwhile, by
// this fiber or any other fiber of the loop writing to this stream, and the
// loop hands all the turn's sends to the kernel in one io_uring_enter (on
// epoll: one send(2) each). The events of one turn therefore leave in one
// send, after the writer has moved on (parked in a sleep, a channel, ...),
// and the writer never waits for the kernel itself unless the buffer is full.
//
// Back-pressure, in two stages:
//  - The socket: TCP_NOTSENT_LOWAT (StreamOptions::notsent_lowat) is set on
//    it, so the kernel takes more only while fewer than that many bytes wait
//    unsent (on loopback: behind a full receive window). Past it a
//    non-blocking send gets EAGAIN, and the backend's send operation waits for
//    POLLOUT (io_uring's internal poll; epoll's edge-triggered retry) instead
//    of completing.
//  - The stream's buffer: while that send is in flight, events accumulate in
//    a second buffer. When accepting an event would take the bytes buffered
//    (in flight + waiting) past StreamOptions::max_buffered, send() parks the
//    writer ("sse send") until the kernel takes some (or fails with the
//    token's ECANCELED/ETIMEDOUT). try_send() fails with EAGAIN instead, for
//    servers that drop events for slow readers. An event larger than the
//    bound is accepted into an empty buffer, so the bound is
//    max(max_buffered, largest event).
//  - A reader that drains nothing for StreamOptions::stall_timeout is
//    disconnected: the stream fails with ETIMEDOUT ("the SSE reader drained
//    nothing for stall_timeout"), its token is cancelled (a handler parked in
//    a sleep or a channel wakes with ECANCELED; error() says why), and
//    SO_LINGER 0 makes the connection's close a reset that frees the kernel's
//    unsent bytes at once instead of an orphaned socket retrying for minutes.
//    The check is a reactor timer of the stream, armed when a send is
//    submitted and none is armed, and re-armed from its own expiry while
//    sends are in flight: when it fires and the send in flight is the one
//    that was in flight at the previous check (no completion, so no bytes
//    taken, in between), the stream has stalled. So a stall is detected
//    between stall_timeout and twice that after the last progress, and a
//    stream costs one timer insertion per stall_timeout while busy, none
//    while idle.
//
// Hang-up: a net::HangupWatch (one poll operation for POLLRDHUP) cancels
// the stream's CancelSource, a child of the request's token, the moment the
// peer closes: whatever the handler waits on with token() returns ECANCELED.
//
// Connection: SSE responses are close-delimited ("Connection: close", no
// Content-Length, no chunked framing): the stream is the connection's last
// response anyway (an EventSource never sends a second request on it, it
// reconnects), so the chunk framing Go's net/http adds (a hex size line and a
// CRLF around each flush) would only cost bytes and a formatting step per
// flush, and the close-delimited body ends exactly where the handler stops.
//
// Invariants:
//  - Everything runs on the loop of the fiber that made the stream; any
//    fiber of that loop may send() (one at a time may be parked for room).
//  - The destructor (on the fiber that made the stream) sends what is
//    buffered unless the stream failed or its token was cancelled, cancels
//    the send otherwise, and returns only when the backend has let go of the
//    send operation, the flush runnable and the hang-up watch (it parks).
//  - Once failed (a send error, a stall, the drain in close()), every later
//    call returns the same error; bytes sent before a failure are gone to the
//    kernel, what was buffered is dropped.
//
// Rejected alternatives:
//  - A send per event (Go's Flush after each Fprintf): a syscall per event,
//    and events of the same turn each pay it.
//  - Flushing from a hook in the scheduler's park(): fiber/ knows nothing of
//    streams, and events written by several fibers would still go out in
//    several sends; the runnable gathers per loop turn, whoever wrote.
//  - A fiber per stream that drains the buffer: a second stack per stream
//    (10,000 streams on a core are the target), for what one operation
//    and its completion callback do.
//  - Growing the buffer without bound and letting the kernel block: one slow
//    reader could take the server's memory.
//  - The stall as the send operation's deadline (an io_uring linked timeout
//    per send; the first version): the kernel armed and cancelled an hrtimer
//    for every event, ~5% of the ticker's CPU in perf, for a check that
//    matters once in a long while.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fiber/cancel.h"
#include "fiber/scheduler.h"
#include "fiber/waiter.h"
#include "net/sse/event.h"
#include "net/tcp_stream.h"
#include "reactor/loop.h"
#include "reactor/operation.h"
#include "reactor/timer_heap.h"
#include "syscall/result.h"

namespace ringo::net::http {
class Request;
class ResponseWriter;
}  // namespace ringo::net::http

namespace ringo::net::sse {

struct StreamOptions {
  // TCP_NOTSENT_LOWAT set on the socket; 0 leaves the socket as it is.
  int notsent_lowat = 16 * 1024;
  // Bytes the stream holds that the kernel has not taken yet (see above).
  std::size_t max_buffered = 64 * 1024;
  // No bytes drained for this long: the reader is disconnected.
  std::chrono::milliseconds stall_timeout{30'000};
  // Cancel token() when the peer hangs up (a HangupWatch; over HTTP the
  // writer's, ResponseWriter::watch_hangup(), so req.token() sees it too).
  bool watch_hangup = true;
};

struct StreamStats {
  std::uint64_t events = 0;       // send()/try_send() calls that took an event
  std::uint64_t sends = 0;        // send operations submitted
  std::uint64_t bytes_sent = 0;   // bytes the kernel took
  std::uint64_t parks = 0;        // times send() parked for room
  std::size_t max_buffered = 0;   // the most bytes held at once
};

class SseStream {
 public:
  // The response to `request`: takes the connection over from `writer`
  // (hijack), queues the head (the writer's status, 200 unless set, and the
  // fields set on it, plus Content-Type: text/event-stream, Cache-Control:
  // no-cache, X-Accel-Buffering: no, Connection: close) to leave with the
  // first event or at the next loop turn, and reads Last-Event-ID. The token
  // is a child of the request's. Set extra fields (CORS...) on the writer
  // before.
  SseStream(http::Request& request, http::ResponseWriter& writer, StreamOptions options = {});
  // A stream over a connection whose response head the caller has written
  // (or that needs none: tests); cancelled with `parent`.
  SseStream(TcpStream& connection, const CancelToken& parent, StreamOptions options = {});
  ~SseStream();
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;

  // Frames and buffers one event (see the head comment for when it leaves
  // and when this parks). EINVAL: a newline in id/event. ECANCELED: the
  // token (hang-up, request cancelled). ETIMEDOUT: its deadline, or a stall.
  sys::Result<void> send(const Event& event);
  // As send(), but EAGAIN instead of parking when the buffer is full.
  sys::Result<void> try_send(const Event& event);
  // ": text" lines: a keep-alive that parsers ignore.
  sys::Result<void> send_comment(std::string_view text);
  // A lone "retry: <ms>" field: the client's reconnection delay.
  sys::Result<void> send_retry(std::chrono::milliseconds retry);
  // Waits until every byte buffered so far is in the kernel.
  sys::Result<void> drain();

  // Cancelled on hang-up, on a stall, or with the parent (the request).
  const CancelToken& token() const { return token_; }
  // The request's Last-Event-ID header ("" when absent; HTTP constructor).
  std::string_view last_event_id() const { return last_event_id_; }
  // Why the stream failed (ok() while it has not).
  sys::Result<void> error() const;
  bool failed() const { return failed_; }
  bool hung_up() const;
  std::size_t buffered() const { return (out_.size() - out_off_) + next_.size(); }
  const StreamStats& stats() const { return stats_; }
  TcpStream& connection() { return *conn_; }

 private:
  struct FlushRunnable : reactor::Runnable {
    SseStream* stream = nullptr;
  };
  void init();
  sys::Result<void> check(const char* op) const;
  sys::Result<void> wait_for_room(const char* op, bool may_park);
  sys::Result<void> wait_until(bool (*done)(const SseStream&), const CancelToken& token, const char* reason);
  template <class Append>
  sys::Result<void> put(const char* op, bool may_park, Append&& append);
  static void run_flush(reactor::Runnable& r);
  void start_send();
  static void on_sent(reactor::Operation& op, reactor::Completion& c);
  static void on_stall_timer(reactor::Timer& t);
  void fail(sys::Error error);
  void notify();

  TcpStream* conn_;
  StreamOptions options_;
  CancelSource source_;
  CancelToken token_;           // source_.token(), made once
  reactor::Loop* loop_ = nullptr;
  std::string out_;             // handed to the send operation: untouched while it is in flight
  std::size_t out_off_ = 0;     // bytes of out_ the kernel has taken
  std::string next_;            // appended meanwhile
  reactor::Operation op_;
  FlushRunnable flush_;
  bool sending_ = false;
  bool flush_scheduled_ = false;
  bool failed_ = false;
  bool closing_ = false;        // the destructor runs: no new sends
  bool stalled_ = false;        // the stall check cancelled the send
  // The buffer that carries the HTTP head (~200 bytes, usually the largest
  // write of a stream's life) is freed once sent, so a parked stream keeps
  // two event-sized buffers rather than a head-sized one for hours.
  bool release_sent_buffer_ = false;
  reactor::Timer stall_timer_;  // armed while sends are in flight, see on_stall_timer
  std::uint64_t stall_mark_ = 0;  // stats_.sends at the last stall check
  sys::Error error_;
  fiber::Waiter* waiter_ = nullptr;  // a fiber parked for room, a drain, or the destructor
  std::string last_event_id_;
  StreamStats stats_;
  http::ResponseWriter* writer_ = nullptr;  // HTTP: its hang-up watch is ours
  // Plain TcpStream streams only (over HTTP the writer's watch does it): on
  // the heap, so an HTTP stream's object, on its handler's stack, is ~220
  // bytes smaller (every call the handler makes sits below it).
  std::unique_ptr<HangupWatch> hangup_;
};

}  // namespace ringo::net::sse
