// sse_ticker: a Server-Sent Events ticker, the Ringo side of the SSE
// benchmark (bench/go/sseserver is its Go peer: same bytes on the wire per
// event, same query, same errors).
//
//   build/release/examples/sse_ticker --port 8090 --threads 1 --cpus 0
//   curl -N 'http://127.0.0.1:8090/stream?events=5&interval_ms=1000'
//
// GET /stream?events=N&interval_ms=M answers 200 text/event-stream and sends
// N events, the first at once and then one every M ms, each exactly
// "id: <i>\ndata: tick <i>\n\n" for i = 1..N, then closes the connection
// (SSE responses are close-delimited: net/sse/sse_stream.h says why).
// N in [1, 10,000,000] and M in [1, 60,000], as the Go peer: a missing or
// bad value answers 400 with a one-line message and the usage.
//
// The schedule is absolute (event i is due at start + (i-1)*M, like Go's
// time.Ticker), so the time spent writing never accumulates as drift; a
// stream that falls behind sends the late events at once, and the load
// generator's gap figures show it. A client that goes away ends its stream
// at once: the sleep waits on the stream's token, which its hang-up cancels.
//
// Cost per event, the point of the example: the event is framed into the
// stream's buffer (no allocation once the buffer has grown to an event), and
// every event due in one loop turn leaves in one send per stream, submitted
// together (one io_uring_enter for the turn on io_uring).
//
// Memory: what a stream costs is mostly the pages of its fiber's stack it
// touched (they stay resident while it is parked) and what the connection
// keeps on the heap. The query is parsed out of line (parse_query), so
// stream()'s frame is little more than the SseStream; with the HTTP
// connection on the heap and its read buffer and parser freed at hijack
// (net/http/internal/connection.h), a parked stream's deepest frames stay in
// the stack's first page, except when an allocation on the way takes
// jemalloc's slow path (refilling its thread cache: ~2 KiB of frames),
// which touches a second page for a few percent of streams.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "examples/common/server_main.h"
#include "fiber/fiber.h"
#include "net/http/server.h"
#include "net/sse/sse_stream.h"
#include "reactor/clock.h"

using namespace ringo;

namespace {

constexpr long kMaxEvents = 10'000'000;
constexpr long kMaxIntervalMs = 60'000;

// query_param `name` as an integer in [min, max]; otherwise nullopt and
// `error` says why (the Go peer's wording).
std::optional<long> query_int(const net::http::Request& req, std::string_view name, long min, long max,
                              std::string& error) {
  auto raw = req.query_param(name);
  if (!raw || raw->empty()) {
    error = "missing query parameter " + std::string(name);
    return std::nullopt;
  }
  long v = 0;
  auto r = std::from_chars(raw->data(), raw->data() + raw->size(), v);
  if (r.ec != std::errc() || r.ptr != raw->data() + raw->size() || v < min || v > max) {
    error = std::string(name) + "=\"" + std::string(*raw) + "\": want an integer in [" + std::to_string(min) + ", " +
            std::to_string(max) + "]";
    return std::nullopt;
  }
  return v;
}

struct Query {
  long events = 0;
  long interval_ms = 0;
};

// The query, or nullopt after answering 400. Out of line: its strings and
// error formatting would otherwise sit in stream()'s frame, under which every
// call of the stream's life runs (see "Memory" above).
[[gnu::noinline]] std::optional<Query> parse_query(const net::http::Request& req, net::http::ResponseWriter& w) {
  std::string error;
  auto events = query_int(req, "events", 1, kMaxEvents, error);
  auto interval_ms = events ? query_int(req, "interval_ms", 1, kMaxIntervalMs, error) : std::nullopt;
  if (!events || !interval_ms) {
    w.send(400, "text/plain; charset=utf-8", error + "\nusage: GET /stream?events=N&interval_ms=M\n");
    return std::nullopt;
  }
  return Query{*events, *interval_ms};
}

void stream(net::http::Request& req, net::http::ResponseWriter& w) {
  const std::optional<Query> q = parse_query(req, w);
  if (!q) return;
  net::sse::SseStream s(req, w);
  const std::int64_t interval_ns = q->interval_ms * 1'000'000;
  std::int64_t due = reactor::now_ns();
  char data[32] = "tick ";
  for (long i = 1;; ++i) {
    // "tick <i>" in `data`, with <i> (the id) as its tail: one conversion.
    char* end = std::to_chars(data + 5, data + sizeof data, i).ptr;
    const std::string_view id(data + 5, static_cast<std::size_t>(end - (data + 5)));
    if (!s.send({.data = std::string_view(data, static_cast<std::size_t>(end - data)), .id = id})) return;
    if (i == q->events) return;  // ~SseStream drains, then the server closes
    due += interval_ns;
    if (!this_fiber::sleep_until_ns(due, s.token())) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const examples::ServerFlags flags = examples::parse_server_flags(
      argc, argv, "GET /stream?events=N&interval_ms=M streams N SSE ticks M ms apart.\n");
  auto group = examples::start_loops(flags);

  net::http::Router router;
  router.get("/stream", stream);
  net::http::ServerOptions options;
  options.tcp.address = examples::listen_address(flags);
  options.tcp.name = "sse";
  // A stream's request is one short head: start each connection's read
  // buffer small (it grows for a request that needs more). hijack() frees
  // it for the stream's life anyway; 1 KiB keeps the ramp's transient
  // buffers (connections accepted, not yet streaming) small too.
  options.read_buffer_bytes = 1024;
  auto server = net::http::Server::start(*group, options, std::move(router));
  return examples::serve_until_signal("sse_ticker", std::move(server), *group);
}
