// ResponseWriter (response.h): fields gathered as formatted lines, the
// response formatted by hand onto the connection's output buffer.
#include "net/http/response.h"

#include <cstring>

#include "net/http/date_cache.h"
#include "net/http/internal/connection.h"
#include "net/http/request.h"

namespace ringo::net::http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace {

// Whether a field name or value could end its line early (header
// injection). A plain loop: find_first_of("\r\n") calls memchr over the
// two-character set once per byte.
bool has_crlf(std::string_view s) {
  for (const char c : s) {
    if (c == '\r' || c == '\n') return true;
  }
  return false;
}

// Writes the decimal digits of `v` ending at `end`; returns where they start.
char* put_uint(char* end, std::uint64_t v) {
  char* p = end;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return p;
}

// "HTTP/1.1 200 OK\r\nServer: ringo\r\nDate: " for `status`, built into
// `buf` (the common statuses are literals); returns the bytes.
std::string_view status_prefix(int status, char (&buf)[96]) {
  switch (status) {
    case 200: return "HTTP/1.1 200 OK\r\nServer: ringo\r\nDate: ";
    case 404: return "HTTP/1.1 404 Not Found\r\nServer: ringo\r\nDate: ";
    default: break;
  }
  if (status < 100 || status > 999) status = 500;
  const std::string_view reason = reason_phrase(status);
  char* p = buf;
  auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put("HTTP/1.1 ");
  *p++ = static_cast<char>('0' + status / 100);
  *p++ = static_cast<char>('0' + status / 10 % 10);
  *p++ = static_cast<char>('0' + status % 10);
  *p++ = ' ';
  put(reason);  // at most 31 bytes ("Request Header Fields Too Large")
  put("\r\nServer: ringo\r\nDate: ");
  return {buf, static_cast<std::size_t>(p - buf)};
}

// Removes every "Name: ...\r\n" line whose name is `name`.
void remove_field(std::string& block, std::string_view name) {
  std::size_t pos = 0;
  while (pos < block.size()) {
    const std::size_t eol = block.find("\r\n", pos);
    const std::size_t next = eol == std::string::npos ? block.size() : eol + 2;
    const std::size_t colon = block.find(':', pos);
    if (colon < next && iequals(std::string_view(block).substr(pos, colon - pos), name)) {
      block.erase(pos, next - pos);
    } else {
      pos = next;
    }
  }
}

}  // namespace

ResponseWriter::~ResponseWriter() = default;

void ResponseWriter::add_header(std::string_view name, std::string_view value) {
  if (name.empty() || has_crlf(name) || has_crlf(value) || name.find(':') != std::string_view::npos) return;
  if (iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "date")) return;
  if (iequals(name, "connection")) {
    if (iequals(value, "close")) close_ = true;
    return;
  }
  const std::size_t at = headers_.size();
  headers_.resize(at + name.size() + value.size() + 4);
  char* p = headers_.data() + at;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  std::memcpy(p, ": ", 2);
  if (!value.empty()) std::memcpy(p + 2, value.data(), value.size());
  std::memcpy(p + 2 + value.size(), "\r\n", 2);
}

void ResponseWriter::set_header(std::string_view name, std::string_view value) {
  if (!headers_.empty()) remove_field(headers_, name);
  add_header(name, value);
}

void ResponseWriter::send(int status, std::string_view content_type, std::string_view body) {
  status_ = status;
  if (!content_type.empty()) set_header("Content-Type", content_type);
  body_.assign(body);
}

TcpStream& ResponseWriter::hijack() {
  if (!hijacked_) {
    hijacked_ = true;
    connection_->hijack();
  }
  return *stream_;
}

std::string ResponseWriter::stream_head() const {
  char buf[96];
  const std::string_view prefix = status_prefix(status_, buf);
  const std::string_view date = http_date();
  constexpr std::string_view kEnd = "Connection: close\r\n\r\n";
  std::string out;
  out.reserve(prefix.size() + date.size() + 2 + headers_.size() + kEnd.size());  // one allocation
  out.append(prefix);
  out.append(date);
  out.append("\r\n");
  out.append(headers_);
  out.append(kEnd);
  return out;
}

const CancelToken& ResponseWriter::watch_hangup() {
  if (!hangup_) {
    hangup_source_.emplace(*token_);
    hangup_token_.emplace(hangup_source_->token());
    hangup_.emplace(*stream_, *hangup_source_);
    request_->token_ = &*hangup_token_;
  }
  return *hangup_token_;
}

void ResponseWriter::end_watch() {
  if (!hangup_source_) return;
  hangup_.reset();  // parks until the poll has completed
  hangup_token_.reset();
  hangup_source_.reset();
  request_->token_ = token_;
}

void ResponseWriter::reset() {
  status_ = 200;
  close_ = false;
  hijacked_ = false;
  headers_.clear();
  // A large body's buffer is given back rather than kept for every later
  // request of a long-lived connection.
  if (body_.capacity() > 64 * 1024) {
    std::string().swap(body_);
  } else {
    body_.clear();
  }
}

void ResponseWriter::append_to(std::string& out, std::string_view date, bool keep_alive, bool http10_keep_alive,
                               bool head_only) const {
  char prefix_buf[96];
  const std::string_view prefix = status_prefix(status_, prefix_buf);
  // 1xx, 204 and 304 carry neither a body nor (for 1xx/204) a length.
  const bool bodiless = status_ / 100 == 1 || status_ == 204 || status_ == 304;
  char digits[20];
  char* const digits_end = digits + sizeof digits;
  const char* const length = put_uint(digits_end, body_.size());
  const std::string_view length_field = bodiless ? std::string_view{} : std::string_view("Content-Length: ");
  const std::string_view length_digits =
      bodiless ? std::string_view{} : std::string_view(length, static_cast<std::size_t>(digits_end - length));
  const std::string_view connection = !keep_alive          ? std::string_view("Connection: close\r\n")
                                      : http10_keep_alive ? std::string_view("Connection: keep-alive\r\n")
                                                          : std::string_view{};
  const std::string_view body = head_only || bodiless ? std::string_view{} : std::string_view(body_);
  const std::string_view pieces[] = {prefix, date, "\r\n", headers_, length_field, length_digits,
                                     bodiless ? std::string_view{} : std::string_view("\r\n"), connection, "\r\n",
                                     body};
  // One resize and plain copies: a dozen std::string::append calls, each
  // checking capacity, cost more than the bytes they move.
  std::size_t total = 0;
  for (const std::string_view piece : pieces) total += piece.size();
  std::size_t at = out.size();
  out.resize(at + total);
  char* p = out.data() + at;
  for (const std::string_view piece : pieces) {
    if (!piece.empty()) std::memcpy(p, piece.data(), piece.size());
    p += piece.size();
  }
}

}  // namespace ringo::net::http
