// Parser: HTTP/1.x requests (server) and responses (client) on llhttp, as a
// pull-style stream of events over bytes the caller owns.
//
//   http::Parser p(http::Parser::Mode::request, limits);
//   for (std::string_view in = buffered; ;) {
//     http::Parser::Step s = p.parse(in);   // stops after each event
//     in.remove_prefix(s.consumed);
//     switch (s.event) {
//       case Event::head:    p.method(), p.target(), p.headers() ... are valid
//       case Event::body:    s.body is the next piece of the (de-chunked) body
//       case Event::message: the message is complete; the head is still valid
//       case Event::need_more: read more and call parse() with it
//       case Event::error:   p.error().status (400/413/431), p.error().message
//     }
//   }
//
// The same parser reads responses for the client (Mode::response): status(),
// reason(), bodies by Content-Length, chunked or until the connection closes
// (finish() at end of stream completes those), HEAD responses and 1xx / 204 /
// 304 without a body (set_head_request(true) before a HEAD's response).
//
// Invariants:
//  - Zero-copy: method/target/reason/header views and body pieces point into
//    the bytes given to parse(). The bytes of one message must stay where they
//    are until the message is done, or the caller moves them and calls
//    rebase() (a server compacting its read buffer). A token whose pieces
//    are not contiguous (obs-fold, which RFC 9112 lets a recipient reject)
//    is an error (400).
//  - parse() stops after every event: a caller that handles each message
//    before parsing on never sees a later message overwrite an earlier head.
//    The head stays valid from Event::head until the next message's first
//    byte is parsed.
//  - Limits are enforced while parsing, before the bytes are buffered
//    further: the head (request or status line plus headers, counted from the
//    message's first byte) never exceeds max_head_bytes (431), the field count
//    never exceeds max_headers (431), and the body never exceeds
//    max_body_bytes: a Content-Length above it fails at the head (413), a
//    chunked body fails at the chunk that crosses it (413).
//  - Message framing is strict, against request smuggling: Content-Length and
//    Transfer-Encoding together, two Content-Length fields, or a request
//    Transfer-Encoding whose last coding is not chunked are errors (400);
//    llhttp's lenient flags stay off.
//  - After Event::error the parser stays failed (every parse() repeats the
//    error) until reset(): the stream's framing is lost.
//  - Trailer fields of chunked messages are parsed (and counted against the
//    body limit) but dropped: they would point after the body, which a server
//    may already have discarded.
//  - An upgrade (CONNECT, or Upgrade + Connection: upgrade that llhttp
//    accepts) ends the HTTP stream: Event::message with upgrade() true, and
//    every later parse() returns Event::error.
//
// Rejected alternatives:
//  - A push API with user callbacks (llhttp's own): handlers would run inside
//    llhttp_execute, where they may not block; the server's fibers need to
//    handle a request (and park) between two parse() calls.
//  - Copying headers into std::string pairs: an allocation per field per
//    request on the hot path; views into the read buffer cost nothing.
//  - Counting head bytes in the callbacks: parse() instead never hands
//    llhttp more than the head budget left, so an oversized head is refused
//    exactly at the limit whatever the read sizes.
//  - Exposing llhttp.h here: only parser.cc includes it (DESIGN.md); the
//    llhttp state lives in opaque aligned storage, so a Parser is one object
//    with no allocation besides its header vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/http/headers.h"

namespace ringo::net::http {

struct ParserLimits {
  // Request line (or status line) plus header fields, in bytes: 431 above it.
  std::size_t max_head_bytes = 16 * 1024;
  // Header fields per message: 431 above it.
  std::size_t max_headers = 100;
  // Body bytes (after de-chunking); 0: no limit. 413 above it.
  std::uint64_t max_body_bytes = 1024 * 1024;
};

struct ParseError {
  // What a server answers: 400 (malformed, conflicting framing), 413 (body
  // over the limit), 431 (head or field count over the limit). 0: no error.
  int status = 0;
  // One line for the error response's body and for logs, e.g.
  // "request header fields too large: more than 16384 bytes".
  std::string message;
};

class Parser {
 public:
  enum class Mode : std::uint8_t { request, response };
  enum class Event : std::uint8_t {
    need_more,  // every byte given was consumed; parse() the next bytes
    head,       // the head is complete (method/target or status, headers)
    body,       // Step::body is the next piece of the body
    message,    // the message is complete
    error,      // see error(); the parser stays failed until reset()
  };
  struct Step {
    Event event = Event::need_more;
    std::size_t consumed = 0;  // bytes of the input used (the event's included)
    std::string_view body;     // Event::body only
  };

  explicit Parser(Mode mode, ParserLimits limits = {});
  ~Parser();
  Parser(Parser&& other) noexcept;
  Parser& operator=(Parser&& other) noexcept;
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses from the start of `data` (the bytes after those consumed so far)
  // up to and including the next event.
  Step parse(std::string_view data);
  // The stream ended (a read returned 0): completes a body delimited by the
  // connection's close (Event::message), reports a message cut short
  // (Event::error, status 400), or Event::need_more between messages.
  Step finish();
  // Back to the start of a stream (a new connection), keeping buffers.
  void reset();

  // Responses: the next response answers a HEAD request, so it has no body
  // whatever its Content-Length says. Set before its head is parsed; cleared
  // when that message completes.
  void set_head_request(bool head) { head_request_ = head; }

  // The bytes of the current message's head moved by `delta` (a buffer
  // compaction or growth): every view pointing into [lo, hi) follows them.
  void rebase(const char* lo, const char* hi, std::ptrdiff_t delta);

  Mode mode() const { return mode_; }
  const ParserLimits& limits() const { return limits_; }
  // Between Event::head and the next message's first byte.
  bool head_complete() const { return head_complete_; }
  // A message has begun (bytes of it were parsed) and is not complete.
  bool in_message() const { return in_message_; }
  // Head bytes of the current message parsed so far.
  std::size_t head_bytes() const { return head_bytes_; }
  // Body bytes of the current message delivered so far.
  std::uint64_t body_bytes() const { return body_bytes_; }
  const ParseError& error() const { return error_; }

  // The head (valid from Event::head, see the invariants).
  std::string_view method() const { return method_; }  // requests: "GET" (a static string)
  std::string_view target() const { return target_; }  // requests: "/path?query"
  int status() const { return status_; }               // responses
  std::string_view reason() const { return reason_; }  // responses: "OK"
  int version_major() const { return version_major_; }
  int version_minor() const { return version_minor_; }
  std::span<const HeaderField> headers() const { return headers_; }
  std::optional<std::string_view> header(std::string_view name) const { return find_header(headers_, name); }
  std::optional<std::uint64_t> content_length() const {
    return has_content_length_ ? std::optional<std::uint64_t>(content_length_) : std::nullopt;
  }
  bool chunked() const { return chunked_; }
  // A body follows the head (Content-Length > 0, chunked, or until close).
  bool has_body() const { return has_body_; }
  // The connection may carry another message after this one (HTTP/1.1
  // without "Connection: close", HTTP/1.0 with "Connection: keep-alive",
  // and for responses a body that does not end at the close).
  bool keep_alive() const { return keep_alive_; }
  // Requests: "Expect: 100-continue".
  bool expect_continue() const { return expect_continue_; }
  bool upgrade() const { return upgrade_; }

 private:
  struct Callbacks;  // parser.cc: llhttp's settings, friends of this class
  static constexpr std::size_t kStateSize = 128;

  Step fail(std::size_t consumed, int status, std::string message);
  Step fail_head_too_large(std::size_t consumed);
  Step fail_limit(std::size_t consumed);
  Step fail_from_llhttp(std::size_t consumed, int err);
  Step run(std::string_view data);
  Step finish_message(std::size_t consumed);
  void begin_message();
  bool extend(std::string_view& span, const char* at, std::size_t len);

  alignas(8) unsigned char state_[kStateSize];  // llhttp_t
  Mode mode_;
  ParserLimits limits_;
  ParseError error_;
  bool failed_ = false;

  // The current message.
  bool in_message_ = false;
  bool head_complete_ = false;
  bool head_request_ = false;
  bool head_reported_ = false;
  bool message_pending_ = false;  // a head event was returned first; the message is next
  bool upgraded_ = false;
  std::size_t head_bytes_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::string_view method_;
  std::string_view target_;
  std::string_view reason_;
  std::string_view field_;  // the name being parsed
  std::vector<HeaderField> headers_;
  int status_ = 0;
  int version_major_ = 1;
  int version_minor_ = 1;
  bool has_content_length_ = false;
  std::uint64_t content_length_ = 0;
  bool chunked_ = false;
  bool has_body_ = false;
  bool keep_alive_ = false;
  bool expect_continue_ = false;
  bool upgrade_ = false;

  // Set by the callbacks during one llhttp_execute.
  enum class Pause : std::uint8_t { none, head, body, message };
  Pause pause_ = Pause::none;
  std::string_view piece_;  // Pause::body
  int pending_status_ = 0;  // a limit the callbacks hit
  const char* pending_message_ = nullptr;
};

}  // namespace ringo::net::http
