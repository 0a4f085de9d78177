// ResponseWriter: how a handler answers. Gathers status, header fields and
// body; the server formats them after the handler returns, appended to the
// responses of the other requests of the same pipelined batch, and sends the
// batch with one write.
//
//   w.set_status(201);
//   w.set_header("Content-Type", "application/json");
//   w.write(R"({"id":"42"})");            // appends to the body
//   // or all at once:  w.send(200, "text/plain", "Hello, World!");
//
//   // Streaming (SSE): take the socket over; the server sends nothing more
//   // and closes the connection after the handler returns.
//   net::TcpStream& s = w.hijack();
//   s.write_all(w.stream_head()).value();   // status line + headers, no length
//
//   // A long wait that should end when the client goes away:
//   const CancelToken& t = w.watch_hangup();   // req.token() is t from now on
//
// What the server adds to every response: "Server: ringo", a Date (cached,
// date_cache.h), Content-Length (the bytes write() gathered, also for HEAD,
// whose body is not sent), and "Connection: close" when the connection ends
// after it (the request asked, HTTP/1.0 without keep-alive, close_connection(),
// a server error) or "Connection: keep-alive" for an HTTP/1.0 client that
// asked for it.
//
// Invariants:
//  - set_header replaces a field of the same name (case-insensitive);
//    add_header appends (Set-Cookie). Content-Length, Transfer-Encoding and
//    Date are the server's: set_header ignores them; "Connection: close" is
//    close_connection().
//  - Names and values must not contain CR or LF (header injection): such a
//    field is dropped, never sent.
//  - The writer belongs to the connection and is reused for its next request:
//    no allocation per request once its buffers have grown.
//  - After hijack() the server writes nothing more on the connection; what
//    was set on the writer is used only by stream_head(). The responses of
//    earlier pipelined requests are written by hijack() itself, first, so the
//    stream is the handler's from a clean message boundary. hijack() also
//    frees the connection's read buffer and parser (a stream may stay open
//    for hours); the request's views are moved first and stay valid until the
//    handler returns (internal/connection.h).
//  - watch_hangup() arms a net::HangupWatch (one poll operation) for the rest
//    of the handler, and only when asked: no read is in flight on the socket
//    while a handler runs (the connection's fiber is the one running it), so
//    the watch is the socket's only reader, as tcp_stream.h requires; and a
//    handler that never asks pays nothing (the plaintext path submits no
//    poll per request).
//
// Rejected: writing the response from the handler as it goes (a write per
// response defeats the batching of pipelined responses); chunked streaming
// through the writer (hijack() covers streaming, and SSE frames its own).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fiber/cancel.h"
#include "net/tcp_stream.h"

namespace ringo::net::http {

namespace internal {
class Connection;
}
class Request;

// "OK", "Not Found", ...; "Unknown" for codes without a standard phrase.
std::string_view reason_phrase(int status);

class ResponseWriter {
 public:
  ResponseWriter() = default;
  ~ResponseWriter();
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;

  void set_status(int status) { status_ = status; }
  int status() const { return status_; }
  void set_header(std::string_view name, std::string_view value);
  void add_header(std::string_view name, std::string_view value);
  void set_content_type(std::string_view type) { set_header("Content-Type", type); }
  // Appends to the body.
  void write(std::string_view data) { body_.append(data); }
  // Status, Content-Type and the whole body at once (replacing any body).
  void send(int status, std::string_view content_type, std::string_view body);
  // The connection ends after this response.
  void close_connection() { close_ = true; }
  bool closing() const { return close_; }

  // The body gathered so far.
  std::string_view body() const { return body_; }
  // The header fields set so far, formatted ("Name: value\r\n" each).
  std::string_view header_block() const { return headers_; }

  // Takes the connection over (see the head comment). Valid until the
  // handler returns; the connection is closed then.
  TcpStream& hijack();
  bool hijacked() const { return hijacked_; }
  // For a hijacked stream: the status line and the fields set so far, plus
  // Server, Date and "Connection: close", ending with the empty line; no
  // Content-Length (the body runs until the close).
  std::string stream_head() const;

  // Cancels the request's token when the client hangs up, until the handler
  // returns; returns that token (req.token() returns it too from now on).
  // Calling it again returns the same token.
  const CancelToken& watch_hangup();
  // Whether the watch saw the client hang up.
  bool hung_up() const { return hangup_ && hangup_->fired(); }

 private:
  friend class internal::Connection;

  // internal::Connection's side.
  void bind(internal::Connection* connection, Request* request, TcpStream* stream, const CancelToken* token) {
    connection_ = connection;
    request_ = request;
    stream_ = stream;
    token_ = token;
  }
  void reset();
  // Ends the hangup watch (parks until the poll is gone).
  void end_watch();
  // Formats the response (head, and the body unless `head_only`) onto `out`,
  // with `date` (the batch's http_date()) as its Date.
  void append_to(std::string& out, std::string_view date, bool keep_alive, bool http10_keep_alive,
                 bool head_only) const;

  int status_ = 200;
  bool close_ = false;
  bool hijacked_ = false;
  std::string headers_;  // "Name: value\r\n"...
  std::string body_;
  internal::Connection* connection_ = nullptr;
  Request* request_ = nullptr;
  TcpStream* stream_ = nullptr;
  const CancelToken* token_ = nullptr;  // the connection's
  std::optional<CancelSource> hangup_source_;
  std::optional<CancelToken> hangup_token_;
  std::optional<HangupWatch> hangup_;
};

}  // namespace ringo::net::http
