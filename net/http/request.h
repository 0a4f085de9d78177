// Request: what a handler gets to read of one HTTP request, as views into
// the connection's read buffer, plus the request's CancelToken.
//
//   router.get("/v1/models/{id}", [](http::Request& req, http::ResponseWriter& w) {
//     std::string_view id = req.param("id");                  // path parameter
//     auto fmt = req.query_param("format").value_or("json");  // ?format=...
//     auto auth = req.header("authorization");                // case-insensitive
//     w.send(200, "text/plain", id);
//   });
//
// Invariants:
//  - Every string_view (method, target, headers, params, body) is valid
//    until the handler returns: it points into the connection's buffers,
//    which the next request reuses. Copy what must outlive the handler.
//  - method() is the canonical upper-case name ("GET"); target() the
//    request-target as received; path() and query() split it at the first
//    '?'. Nothing is percent-decoded (decode_percent() does that on demand):
//    decoding would copy, and routing on the raw path is what the client
//    sent, byte for byte.
//  - body() is the whole body, de-chunked, read before the handler runs
//    (bounded by HttpLimits::max_body_bytes).
//  - token() is cancelled when the server stops (the connection's token,
//    net::Connection::token()), and, after ResponseWriter::watch_hangup(),
//    also when the client hangs up.
//
// Rejected: owning std::strings per request (an allocation per header on the
// hot path); a header map (see headers.h); a body stream for the handler to
// read (the limits make a buffered body cheap, and a handler that reads after
// responding would break pipelining order; streaming uploads can hijack).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "fiber/cancel.h"
#include "net/http/headers.h"
#include "syscall/socket.h"

namespace ringo::net::http {

namespace internal {
class Connection;
}

// Path parameters of the matched route ("{id}" -> "gpt-4"), at most
// kMaxParams, stored inline: matching never allocates.
class PathParams {
 public:
  static constexpr std::size_t kMaxParams = 8;

  // Returns false when full.
  bool add(std::string_view name, std::string_view value) {
    if (size_ == kMaxParams) return false;
    items_[size_++] = {name, value};
    return true;
  }
  void clear() { size_ = 0; }
  std::size_t size() const { return size_; }
  std::optional<std::string_view> find(std::string_view name) const {
    for (std::size_t i = 0; i < size_; ++i) {
      if (items_[i].name == name) return items_[i].value;
    }
    return std::nullopt;
  }
  std::span<const HeaderField> items() const { return {items_.data(), size_}; }

 private:
  std::array<HeaderField, kMaxParams> items_{};  // name = parameter, value = path segment(s)
  std::size_t size_ = 0;
};

class Request {
 public:
  Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  std::string_view method() const { return method_; }
  std::string_view target() const { return target_; }
  std::string_view path() const { return path_; }
  // After the '?', without it; empty when there is none.
  std::string_view query() const { return query_; }
  int version_minor() const { return version_minor_; }  // HTTP/1.<minor>

  std::optional<std::string_view> header(std::string_view name) const { return find_header(headers_, name); }
  std::span<const HeaderField> headers() const { return headers_; }

  // A path parameter of the matched route; empty when the route has none of
  // that name.
  std::string_view param(std::string_view name) const { return params_.find(name).value_or(std::string_view{}); }
  const PathParams& params() const { return params_; }
  // The raw (still percent-encoded) value of the first `name=` in the query;
  // "" for a bare `name`; nullopt when absent.
  std::optional<std::string_view> query_param(std::string_view name) const;

  std::string_view body() const { return body_; }
  const CancelToken& token() const { return *token_; }
  const sys::SockAddr& peer() const { return *peer_; }
  // The loop (core) serving this connection.
  int loop_index() const { return loop_index_; }

 private:
  friend class internal::Connection;
  friend class ResponseWriter;

  std::string_view method_;
  std::string_view target_;
  std::string_view path_;
  std::string_view query_;
  std::span<const HeaderField> headers_;
  PathParams params_;
  std::string_view body_;
  const CancelToken* token_ = nullptr;
  const sys::SockAddr* peer_ = nullptr;
  int loop_index_ = 0;
  int version_minor_ = 1;
};

// Percent-decodes `s` ("a%20b" -> "a b"; with `plus_as_space`, '+' -> ' ' as
// in form-encoded queries). nullopt on a malformed escape.
std::optional<std::string> decode_percent(std::string_view s, bool plus_as_space = false);

}  // namespace ringo::net::http
