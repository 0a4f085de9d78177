// Parser on llhttp: the callbacks only record spans and flags and pause
// llhttp at each event (see parser.h for the contract). The only file with
// llhttp.h (DESIGN.md, Layers).
#include "net/http/parser.h"

#include <llhttp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include <fmt/format.h>

namespace ringo::net::http {

static_assert(sizeof(llhttp_t) <= 128, "Parser::kStateSize is too small for llhttp_t");
static_assert(alignof(llhttp_t) <= 8, "Parser::state_ is under-aligned for llhttp_t");

namespace {

llhttp_t* llhttp_of(unsigned char* storage) { return std::launder(reinterpret_cast<llhttp_t*>(storage)); }

Parser* self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

// An empty input still needs a valid pointer: llhttp reports positions in it.
const char kEmpty[1] = {0};

// RFC 9110 5.6.2 tchar: what a field name may consist of. llhttp built
// without LLHTTP_STRICT_MODE lets a space through ("Bad Name: x"), which an
// intermediary may read differently: a smuggling vector, so checked here.
struct TcharTable {
  bool ok[256] = {};
  constexpr TcharTable() {
    for (int c = '0'; c <= '9'; ++c) ok[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) ok[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) ok[c] = true;
    for (const char c : std::string_view("!#$%&'*+-.^_`|~")) ok[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TcharTable kTchar;

bool valid_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!kTchar.ok[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

}  // namespace

struct Parser::Callbacks {
  static int on_message_begin(llhttp_t* p) {
    self(p)->begin_message();
    return HPE_OK;
  }
  static int on_url(llhttp_t* p, const char* at, std::size_t len) {
    Parser* s = self(p);
    return s->extend(s->target_, at, len) ? HPE_OK : HPE_USER;
  }
  static int on_status(llhttp_t* p, const char* at, std::size_t len) {
    Parser* s = self(p);
    return s->extend(s->reason_, at, len) ? HPE_OK : HPE_USER;
  }
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    Parser* s = self(p);
    if (s->head_complete_) return trailer_bytes(s, len);
    return s->extend(s->field_, at, len) ? HPE_OK : HPE_USER;
  }
  static int on_header_field_complete(llhttp_t* p) {
    Parser* s = self(p);
    if (s->head_complete_) return HPE_OK;
    if (!valid_field_name(s->field_)) {
      s->pending_status_ = 400;
      s->pending_message_ = "name";
      return HPE_USER;
    }
    if (s->headers_.size() >= s->limits_.max_headers) {
      s->pending_status_ = 431;
      s->pending_message_ = "fields";
      return HPE_USER;
    }
    s->headers_.push_back({s->field_, {}});
    s->field_ = {};
    return HPE_OK;
  }
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    Parser* s = self(p);
    if (s->head_complete_) return trailer_bytes(s, len);
    return s->extend(s->headers_.back().value, at, len) ? HPE_OK : HPE_USER;
  }
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    Parser* s = self(p);
    if (len == 0) return HPE_OK;
    if (s->limits_.max_body_bytes != 0 && s->body_bytes_ + len > s->limits_.max_body_bytes) {
      s->pending_status_ = 413;
      s->pending_message_ = "chunked";
      return HPE_USER;
    }
    s->body_bytes_ += len;
    s->piece_ = {at, len};
    s->pause_ = Pause::body;
    return HPE_PAUSED;
  }
  static int on_message_complete(llhttp_t* p) {
    Parser* s = self(p);
    s->keep_alive_ = llhttp_should_keep_alive(p) != 0;
    // A head that completed in this same execute (a response without a
    // body): report the head first, the message on the next parse().
    if (!s->head_reported_) {
      s->message_pending_ = true;
      s->pause_ = Pause::head;
    } else {
      s->pause_ = Pause::message;
    }
    return HPE_PAUSED;
  }
  // Trailer fields count against the body limit, and are dropped.
  static int trailer_bytes(Parser* s, std::size_t len) {
    s->body_bytes_ += len;
    if (s->limits_.max_body_bytes != 0 && s->body_bytes_ > s->limits_.max_body_bytes) {
      s->pending_status_ = 413;
      s->pending_message_ = "chunked";
      return HPE_USER;
    }
    return HPE_OK;
  }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t t;
      llhttp_settings_init(&t);
      t.on_message_begin = on_message_begin;
      t.on_url = on_url;
      t.on_status = on_status;
      t.on_header_field = on_header_field;
      t.on_header_field_complete = on_header_field_complete;
      t.on_header_value = on_header_value;
      t.on_headers_complete = on_headers_complete;
      t.on_body = on_body;
      t.on_message_complete = on_message_complete;
      return t;
    }();
    return s;
  }
};

int Parser::Callbacks::on_headers_complete(llhttp_t* p) {
  Parser* s = self(p);
  s->head_complete_ = true;
  s->version_major_ = p->http_major;
  s->version_minor_ = p->http_minor;
  s->chunked_ = (p->flags & F_CHUNKED) != 0;
  s->has_content_length_ = (p->flags & F_CONTENT_LENGTH) != 0 && !s->chunked_;
  s->content_length_ = s->has_content_length_ ? p->content_length : 0;
  s->upgrade_ = p->upgrade != 0;
  bool skip_body = false;
  if (s->mode_ == Mode::request) {
    s->method_ = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    if (auto e = s->header("expect"); e && iequals(*e, "100-continue")) s->expect_continue_ = true;
    s->has_body_ = s->chunked_ || s->content_length_ > 0;
  } else {
    s->status_ = p->status_code;
    // 1xx, 204 and 304 have no body whatever their fields say (RFC 9112 6.3);
    // llhttp would read a Content-Length body after a 304.
    skip_body = s->head_request_ || s->status_ / 100 == 1 || s->status_ == 204 || s->status_ == 304;
    s->has_body_ = !skip_body && (s->chunked_ || s->content_length_ > 0 || llhttp_message_needs_eof(p));
  }
  // Requests learn it at the message's end (on_message_complete); a client
  // may want it with the head.
  if (s->mode_ == Mode::response) s->keep_alive_ = llhttp_should_keep_alive(p) != 0;
  if (!skip_body && s->has_content_length_ && s->limits_.max_body_bytes != 0 &&
      s->content_length_ > s->limits_.max_body_bytes) {
    s->pending_status_ = 413;
    s->pending_message_ = "length";
    return HPE_USER;
  }
  if (skip_body) return 1;  // llhttp: no body; the message completes at once
  // Without a body the message completes within this same execute, where
  // on_message_complete reports the head first (message_pending_): one
  // llhttp_execute per bodiless request instead of two.
  if (!s->has_body_ && !s->upgrade_) return 0;
  s->pause_ = Pause::head;
  return HPE_PAUSED;
}

Parser::Parser(Mode mode, ParserLimits limits) : mode_(mode), limits_(limits) {
  llhttp_init(new (state_) llhttp_t, mode == Mode::request ? HTTP_REQUEST : HTTP_RESPONSE, &Callbacks::settings());
  headers_.reserve(limits_.max_headers < 32 ? limits_.max_headers : 32);
}

Parser::~Parser() = default;  // llhttp_t is trivially destructible

Parser::Parser(Parser&& o) noexcept = default;
Parser& Parser::operator=(Parser&& o) noexcept = default;

void Parser::reset() {
  llhttp_init(llhttp_of(state_), mode_ == Mode::request ? HTTP_REQUEST : HTTP_RESPONSE, &Callbacks::settings());
  error_ = {};
  failed_ = false;
  message_pending_ = false;
  upgraded_ = false;
  head_request_ = false;
  head_bytes_ = 0;
  begin_message();
  in_message_ = false;
}

void Parser::begin_message() {
  in_message_ = true;
  head_complete_ = false;
  head_reported_ = false;
  body_bytes_ = 0;
  method_ = {};
  target_ = {};
  reason_ = {};
  field_ = {};
  headers_.clear();
  status_ = 0;
  has_content_length_ = false;
  content_length_ = 0;
  chunked_ = false;
  has_body_ = false;
  keep_alive_ = false;
  expect_continue_ = false;
  upgrade_ = false;
}

bool Parser::extend(std::string_view& span, const char* at, std::size_t len) {
  if (len == 0) return true;
  if (span.empty()) {
    span = {at, len};
    return true;
  }
  // A gap inside one token: llhttp (built without LLHTTP_STRICT_MODE)
  // accepts obs-fold, continuing a field value on the next line. RFC 9112
  // 5.2 lets a server reject it with 400, and a view cannot span the gap.
  if (span.data() + span.size() != at) {
    pending_status_ = 400;
    pending_message_ = "fold";
    return false;
  }
  span = {span.data(), span.size() + len};
  return true;
}

Parser::Step Parser::parse(std::string_view data) {
  if (failed_) return {Event::error, 0, {}};
  if (message_pending_) {
    message_pending_ = false;
    return finish_message(0);
  }
  if (upgraded_) return fail(0, 400, "bad request: data after a protocol upgrade");
  std::string_view in = data;
  if (!head_complete_ || !in_message_) {
    const std::size_t budget = limits_.max_head_bytes - head_bytes_;
    if (budget == 0 && !data.empty()) return fail_head_too_large(0);
    if (in.size() > budget) in = in.substr(0, budget);
  }
  return run(in);
}

Parser::Step Parser::run(std::string_view in) {
  llhttp_t* p = llhttp_of(state_);
  p->data = this;
  pause_ = Pause::none;
  pending_status_ = 0;
  const char* begin = in.data() != nullptr ? in.data() : kEmpty;
  const bool counting_head = !head_complete_ || !in_message_;
  const llhttp_errno_t err = llhttp_execute(p, begin, in.size());
  std::size_t consumed = in.size();
  if (err == HPE_PAUSED) {
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(p) - begin);
    llhttp_resume(p);
  } else if (err != HPE_OK) {
    const char* pos = llhttp_get_error_pos(p);
    consumed = pos != nullptr && pos >= begin ? static_cast<std::size_t>(pos - begin) : 0;
    if (pending_status_ != 0) return fail_limit(consumed);
    return fail_from_llhttp(consumed, err);
  }
  if (counting_head) head_bytes_ += consumed;
  switch (pause_) {
    case Pause::head:
      head_reported_ = true;
      return {Event::head, consumed, {}};
    case Pause::body:
      return {Event::body, consumed, piece_};
    case Pause::message:
      return finish_message(consumed);
    case Pause::none:
      break;
  }
  if (counting_head && head_bytes_ >= limits_.max_head_bytes) return fail_head_too_large(consumed);
  return {Event::need_more, consumed, {}};
}

Parser::Step Parser::finish_message(std::size_t consumed) {
  in_message_ = false;
  head_bytes_ = 0;
  head_request_ = false;
  if (upgrade_) upgraded_ = true;
  return {Event::message, consumed, {}};
}

Parser::Step Parser::finish() {
  if (failed_) return {Event::error, 0, {}};
  if (message_pending_) {
    message_pending_ = false;
    return finish_message(0);
  }
  llhttp_t* p = llhttp_of(state_);
  p->data = this;
  pause_ = Pause::none;
  const llhttp_errno_t err = llhttp_finish(p);
  if (err == HPE_PAUSED) {
    llhttp_resume(p);
    return finish_message(0);
  }
  if (err != HPE_OK || in_message_) {
    return fail(0, 400, mode_ == Mode::request ? "bad request: the connection closed in the middle of a request"
                                               : "the connection closed in the middle of a response");
  }
  return {Event::need_more, 0, {}};
}

Parser::Step Parser::fail(std::size_t consumed, int status, std::string message) {
  failed_ = true;
  error_.status = status;
  error_.message = std::move(message);
  return {Event::error, consumed, {}};
}

Parser::Step Parser::fail_head_too_large(std::size_t consumed) {
  return fail(consumed, 431,
              fmt::format("{} too large: more than {} bytes",
                          mode_ == Mode::request ? "request header fields" : "response head", limits_.max_head_bytes));
}

Parser::Step Parser::fail_limit(std::size_t consumed) {
  const char* what = mode_ == Mode::request ? "request" : "response";
  if (pending_status_ == 400) {
    if (std::strcmp(pending_message_, "name") == 0) {
      return fail(consumed, 400, fmt::format("bad {}: invalid character in a header field name", what));
    }
    return fail(consumed, 400, fmt::format("bad {}: obsolete line folding in a header field", what));
  }
  if (pending_status_ == 431) {
    return fail(consumed, 431,
                fmt::format("{} header fields too large: more than {} fields", what, limits_.max_headers));
  }
  if (std::strcmp(pending_message_, "length") == 0) {
    return fail(consumed, 413,
                fmt::format("{} body too large: Content-Length {} exceeds the limit of {} bytes", what,
                            content_length_, limits_.max_body_bytes));
  }
  return fail(consumed, 413, fmt::format("{} body too large: more than {} bytes", what, limits_.max_body_bytes));
}

Parser::Step Parser::fail_from_llhttp(std::size_t consumed, int err) {
  llhttp_t* p = llhttp_of(state_);
  const char* reason = llhttp_get_error_reason(p);
  const char* what = mode_ == Mode::request ? "bad request" : "bad response";
  if (err == HPE_PAUSED_UPGRADE) {
    upgraded_ = true;
    return fail(consumed, 400, fmt::format("{}: data after a protocol upgrade", what));
  }
  return fail(consumed, 400,
              fmt::format("{}: {} ({})", what, reason != nullptr ? reason : "malformed",
                          llhttp_errno_name(static_cast<llhttp_errno_t>(err))));
}

void Parser::rebase(const char* lo, const char* hi, std::ptrdiff_t delta) {
  auto move = [&](std::string_view& v) {
    if (!v.empty() && v.data() >= lo && v.data() < hi) v = {v.data() + delta, v.size()};
  };
  move(target_);
  move(reason_);
  move(field_);
  for (HeaderField& h : headers_) {
    move(h.name);
    move(h.value);
  }
}

}  // namespace ringo::net::http
