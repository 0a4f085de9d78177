// Server-Sent Events framing: an event or a comment as the bytes of a
// text/event-stream body, appended to a buffer.
//
//   std::string out;
//   sse::append_event(out, {.data = "line 1\nline 2", .id = "7"}).value();
//   // "id: 7\ndata: line 1\ndata: line 2\n\n"
//   sse::append_comment(out, "keep-alive");          // ": keep-alive\n"
//
// The bytes follow the WHATWG HTML "server-sent events" section, read from the
// parser's side (net/sse/event_parser.h implements that parser):
//  - The parser ends a line at "\r\n", "\n" or a lone "\r". So `data` is split
//    at every one of the three, and each piece becomes its own "data: " line;
//    the browser joins the pieces with "\n" (a "\r\n" in the data therefore
//    arrives as "\n": the format cannot carry a CR). A trailing line ending
//    yields an empty last piece ("a\n" -> "data: a\ndata: \n"), which is what
//    makes the browser's data end with "\n" again. Empty data is one
//    "data: \n" line: the browser dispatches an event with empty data (an
//    event without any data line would not be dispatched at all).
//  - Field order is event, id, retry, data, then the blank line. The order
//    does not matter to a parser; this one makes the ticker's events exactly
//    "id: <i>\ndata: tick <i>\n\n", the bytes the Go peer writes.
//  - `event` and `id` are single-line by nature: a CR or LF in them would end
//    the field early and inject the rest as another field, so they are
//    rejected (EINVAL), as is a NUL in `id` (the parser ignores such an id,
//    silently). Nothing is appended on an error.
//  - Comments (": text") are ignored by parsers; they keep idle connections
//    from being closed by proxies and let a server notice a dead peer. A
//    multi-line comment is split like data, one ": " line per line.
//  - Bytes are not checked for UTF-8: the stream is UTF-8 by definition and
//    the caller's text is passed through.
//
// Rejected alternatives:
//  - An Event that owns std::strings: framing is on the per-event hot path of
//    every stream; string_views into the caller's storage cost nothing.
//  - Escaping newlines in id/event instead of refusing them: there is no
//    escape in the format, any rewrite would change the value silently.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "syscall/result.h"

namespace ringo::net::sse {

struct Event {
  std::string_view data = {};  // any text; split into "data:" lines (see above)
  std::string_view event = {};  // the type ("event:"); empty: none (the browser's "message")
  std::optional<std::string_view> id = {};  // "id:"; an empty id resets the client's Last-Event-ID
  std::optional<std::chrono::milliseconds> retry = {};  // "retry:", the client's reconnection delay
};

// Whether `s` may be an id (no CR, LF or NUL) / an event type (no CR or LF).
bool valid_id(std::string_view s);
bool valid_event_type(std::string_view s);

// Appends the event's bytes, ending with the blank line that dispatches it.
// EINVAL (nothing appended) for an invalid id or event type, or a negative retry.
sys::Result<void> append_event(std::string& out, const Event& event);

// Appends `text` as comment lines (": text\n" per line; ":\n" for empty text).
void append_comment(std::string& out, std::string_view text);

// Appends a lone "retry: <ms>\n\n" (a negative value is clamped to 0).
void append_retry(std::string& out, std::chrono::milliseconds retry);

// The bytes append_event would append (for reserving; 0 when invalid).
std::size_t framed_size(const Event& event);

}  // namespace ringo::net::sse
