// SseReader: Server-Sent Events from an HTTP client response body
// (http::ClientResponse): the body's pieces fed to an EventParser.
//
//   auto resp = client.get(addr, "/stream?events=3&interval_ms=10").value();
//   sse::SseReader reader(resp);
//   while (auto e = reader.next()) use(e->id, e->data);   // ENODATA at the end
//   // or, without a copy per event:
//   reader.for_each([](const sse::ParsedEvent& e) { count(e); return true; }).value();
//
// Invariants: the reader borrows the response (which must outlive it) and
// reads its body in the response's buffer-sized pieces; next() copies each
// event (owned strings, for tests and simple clients); for_each() hands out
// views valid during the call only. A body that ends in the middle of an
// event drops that event, as a browser does; the stream's end is ENODATA for
// next() and success for for_each().
//
// Rejected: reading line by line through a BufferedReader (a call per line
// and a second buffer; the parser splits lines where the bytes already lie).
#pragma once

#include <deque>
#include <string>
#include <utility>

#include "fiber/cancel.h"
#include "fiber/fiber.h"
#include "net/http/client.h"
#include "net/sse/event_parser.h"
#include "syscall/result.h"

namespace ringo::net::sse {

struct OwnedEvent {
  std::string type;  // "message" unless the event named one
  std::string data;
  std::string id;    // the last event id at dispatch
};

class SseReader {
 public:
  explicit SseReader(http::ClientResponse& response, EventParser::Limits limits = {})
      : response_(&response), parser_(limits) {}

  // The next event; ENODATA once the body has ended.
  sys::Result<OwnedEvent> next(const CancelToken& token = this_fiber::token());

  // Calls fn(const ParsedEvent&) -> bool for every event until the body ends
  // (success) or fn returns false (success, after the rest of that piece is
  // parsed and its events dropped).
  template <class F>
  sys::Result<void> for_each(F&& fn, const CancelToken& token = this_fiber::token()) {
    bool more = true;
    while (more) {
      auto piece = response_->read_some(token);
      if (!piece) return piece.error();
      if (piece->empty() && response_->done()) return {};
      auto r = parser_.feed(*piece, [&](const ParsedEvent& e) {
        if (more) more = fn(e);
      });
      if (!r) return r;
    }
    return {};
  }

  const EventParser& parser() const { return parser_; }

 private:
  http::ClientResponse* response_;
  EventParser parser_;
  std::deque<OwnedEvent> pending_;
};

}  // namespace ringo::net::sse
