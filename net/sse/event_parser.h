// EventParser: the client side of Server-Sent Events. Bytes of a
// text/event-stream body go in, in pieces of any size; dispatched events come
// out, following the WHATWG HTML "server-sent events" parsing rules:
//
//   sse::EventParser p;
//   p.feed(chunk, [](const sse::ParsedEvent& e) { use(e.type, e.data, e.id); });
//
//  - Lines end at "\r\n", "\n" or a lone "\r" (a "\r" at the end of one piece
//    and a "\n" at the start of the next are one line ending). A UTF-8 BOM at
//    the very start of the stream is skipped.
//  - A line starting with ":" is a comment (counted, otherwise ignored).
//  - "field: value" (one space after the colon stripped; a line without a
//    colon is a field with an empty value): "data" appends value + "\n" to the
//    data buffer; "event" sets the type; "id" sets the last event id unless
//    the value holds a NUL; "retry" sets the reconnection time if the value is
//    all ASCII digits; other fields are ignored.
//  - An empty line dispatches: with an empty data buffer nothing is
//    dispatched (the type is reset); otherwise the data's last "\n" is
//    removed and the event goes out with its type ("message" when none was
//    given) and the last event id (which persists across events, as in a
//    browser's EventSource).
//  - An event not ended by an empty line when the stream ends is discarded
//    (the caller simply stops feeding).
//
// Invariants:
//  - Memory is bounded: a line longer than Limits::max_line or an event whose
//    data exceeds Limits::max_data fails feed() with EMSGSIZE, and the parser
//    is unusable afterwards (the stream is out of step).
//  - The views in a ParsedEvent are valid only during the callback.
//  - Whole lines inside one fed piece are parsed where they lie; only a line
//    split across pieces is copied (into `partial_`), so a load generator
//    that feeds 64 KiB reads copies almost nothing but the data itself.
//
// Rejected alternatives:
//  - Splitting into lines first (a vector of lines per chunk): allocations
//    per chunk on the load generator's hot path.
//  - std::function for the callback: a template that forwards to a small
//    function reference keeps the parser's code in the .cc without a heap
//    allocation or a virtual call per event beyond one indirect call.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "syscall/result.h"

namespace ringo::net::sse {

struct ParsedEvent {
  std::string_view type;  // "message" when the event named none
  std::string_view data;  // the data lines joined by "\n"
  std::string_view id;    // the last event id (persists across events; empty: none)
};

class EventParser {
 public:
  struct Limits {
    std::size_t max_line = 64 * 1024;
    std::size_t max_data = 1024 * 1024;
  };

  EventParser() = default;
  explicit EventParser(Limits limits) : limits_(limits) {}

  // Parses `bytes`, calling on_event(const ParsedEvent&) for every event
  // dispatched. EMSGSIZE: see Limits.
  template <class F>
  sys::Result<void> feed(std::string_view bytes, F&& on_event) {
    using Fn = std::remove_reference_t<F>;
    return feed_impl(bytes, Sink{const_cast<void*>(static_cast<const void*>(&on_event)),
                                 [](void* f, const ParsedEvent& e) { (*static_cast<Fn*>(f))(e); }});
  }

  std::string_view last_event_id() const { return last_id_; }
  // The last "retry:" value the stream sent, if any.
  std::optional<std::chrono::milliseconds> retry() const { return retry_; }
  std::uint64_t events() const { return events_; }
  std::uint64_t comments() const { return comments_; }

 private:
  struct Sink {
    void* fn;
    void (*call)(void* fn, const ParsedEvent& e);
  };
  sys::Result<void> feed_impl(std::string_view bytes, Sink sink);
  sys::Result<void> line(std::string_view l, const Sink& sink);

  Limits limits_;
  std::string partial_;     // a line split across fed pieces
  std::string data_;        // the data buffer
  std::string type_;        // the event type buffer
  std::string last_id_;
  std::optional<std::chrono::milliseconds> retry_;
  std::uint64_t events_ = 0;
  std::uint64_t comments_ = 0;
  bool started_ = false;    // past the optional BOM
  bool after_cr_ = false;   // the last piece ended with "\r": skip a leading "\n"
  bool failed_ = false;
};

}  // namespace ringo::net::sse
