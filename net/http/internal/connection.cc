// internal::Connection (connection.h): the batch loop of one HTTP/1.1
// connection, its buffer management and its timer.
#include "net/http/internal/connection.h"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <span>

#include <fmt/format.h>

#include "net/http/date_cache.h"
#include "reactor/clock.h"
#include "syscall/log.h"

namespace ringo::net::http::internal {

namespace {

std::int64_t ns(std::chrono::milliseconds d) { return std::chrono::nanoseconds(d).count(); }

ParserLimits parser_limits(const HttpLimits& l) { return {l.max_head_bytes, l.max_headers, l.max_body_bytes}; }

std::span<std::byte> writable(char* p, std::size_t n) { return {reinterpret_cast<std::byte*>(p), n}; }

// The reactor clock's coarse variant (CLOCK_MONOTONIC_COARSE, the same time
// base, one tick behind at most: 1-4 ms): the batch loop's timestamps,
// twice per batch, where the precise clock's TSC read would cost several
// times more. Deadlines made from it fire at most a tick early.
std::int64_t coarse_now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// What a lingering close drains at most before giving up on the client.
constexpr std::size_t kMaxLingerBytes = 1024 * 1024;

}  // namespace

Connection::Connection(const Server::Shared& shared, TcpStream& stream, const net::Connection& info)
    : shared_(shared),
      limits_(shared.options.limits),
      counters_(shared.counters[static_cast<std::size_t>(info.loop_index()) % shared.loops]),
      stream_(stream),
      info_(info),
      loop_(reactor::Loop::current()),
      io_source_(info.token()),
      io_token_(io_source_.token()),
      conn_token_(info.token()),
      cap_(std::max<std::size_t>(shared.options.read_buffer_bytes, 1024)),
      parser_(std::make_unique<Parser>(Parser::Mode::request, parser_limits(shared.options.limits))) {
  timer_.on_fire = &Connection::on_timer;
  timer_.user = this;
  buf_.reset(new char[cap_]);
  req_.peer_ = &info.peer();
  req_.loop_index_ = info.loop_index();
  req_.token_ = &conn_token_;
  writer_.bind(this, &req_, &stream_, &conn_token_);
}

Connection::~Connection() {
  if (timer_.armed()) loop_->cancel_timer(timer_);
}

void Connection::serve() {
  // The first request gets the head timeout from the accept on; nothing
  // arriving at all is closed silently, as an idle keep-alive connection.
  set_deadline(reactor::now_ns() + ns(limits_.header_timeout));
  while (true) {
    const ReadResult r = read_some();
    if (r != ReadResult::data) {
      on_read_end(r);
      return;
    }
    const End end = process();
    std::int64_t now = read_time_ns_;
    if (!out_.empty()) {
      now = coarse_now_ns();  // handlers may have taken long since the read
      set_deadline(now + ns(limits_.write_timeout));
      if (!flush()) return;
    }
    if (end == End::close) return;
    if (end == End::linger) {
      linger();
      return;
    }
    after_batch(now);
  }
}

Connection::ReadResult Connection::read_some() {
  prepare_buffer();
  const sys::Result<std::size_t> n = stream_.read(writable(buf_.get() + end_, cap_ - end_), io_token_);
  read_time_ns_ = coarse_now_ns();
  if (!n) return ReadResult::failed;
  if (*n == 0) return ReadResult::eof;
  end_ += *n;
  return ReadResult::data;
}

Connection::End Connection::process() {
  date_ = http_date();  // once per batch, not per response
  while (true) {
    const Parser::Step s = parser_->parse(unparsed());
    parsed_ += s.consumed;
    switch (s.event) {
      case Parser::Event::need_more:
        return End::keep;
      case Parser::Event::head:
        if (const End e = on_head(); e != End::keep) return e;
        break;
      case Parser::Event::body:
        add_body(s.body);
        break;
      case Parser::Event::message:
        if (const End e = on_message(); e != End::keep) return e;
        break;
      case Parser::Event::error:
        LoopCounters::bump(counters_.bad_requests);
        return respond_error(parser_->error().status, parser_->error().message);
    }
  }
}

Connection::End Connection::on_head() {
  head_end_ = parsed_;
  head_time_ns_ = read_time_ns_;
  if (const auto expect = parser_->header("expect")) {
    if (!iequals(*expect, "100-continue")) {
      LoopCounters::bump(counters_.bad_requests);
      return respond_error(417, "expectation failed: only \"Expect: 100-continue\" is supported");
    }
    // Only when the client waits for it: no body bytes have come yet (RFC
    // 9110 10.1.1 lets a server skip it otherwise). A body over the limit
    // never gets here: the parser failed the head with 413 already.
    if (parser_->has_body() && parsed_ == end_ && parser_->version_minor() >= 1) {
      out_.append("HTTP/1.1 100 Continue\r\n\r\n");
    }
  }
  return End::keep;
}

void Connection::add_body(std::string_view piece) {
  if (!body_copied_) {
    if (body_view_.empty()) {
      body_view_ = piece;
      return;
    }
    if (body_view_.data() + body_view_.size() == piece.data()) {
      body_view_ = {body_view_.data(), body_view_.size() + piece.size()};
      return;
    }
    detach_body();  // chunked: the pieces have chunk framing between them
  }
  body_.append(piece);
}

void Connection::detach_body() {
  if (body_copied_) return;
  body_.assign(body_view_);
  body_view_ = {};
  body_copied_ = true;
}

Connection::End Connection::on_message() {
  LoopCounters::bump(counters_.requests);
  req_.method_ = parser_->method();
  req_.target_ = parser_->target();
  const std::size_t q = req_.target_.find('?');
  req_.path_ = req_.target_.substr(0, q);
  req_.query_ = q == std::string_view::npos ? std::string_view{} : req_.target_.substr(q + 1);
  req_.headers_ = parser_->headers();
  req_.body_ = body_copied_ ? std::string_view(body_) : body_view_;
  req_.version_minor_ = parser_->version_minor();

  const bool head_only = req_.method_ == "HEAD";
  const bool keep_alive = parser_->keep_alive() && !parser_->upgrade();
  const bool http10_keep_alive = keep_alive && parser_->version_minor() == 0;
  clear_deadline();  // a handler takes as long as it takes; req.token() bounds it
  End end = keep_alive ? End::keep : End::close;
  const Router::Match m = shared_.router.match(req_.method_, req_.path_, req_.params_, &allow_);
  if (m.handler != nullptr) {
    end = run_handler(*m.handler, keep_alive, http10_keep_alive, head_only);
  } else {
    if (m.status == 404) {
      writer_.send(404, "text/plain; charset=utf-8", fmt::format("not found: no route for {}\n", req_.path_));
    } else {
      writer_.send(405, "text/plain; charset=utf-8",
                   fmt::format("method not allowed: {} {} (allowed: {})\n", req_.method_, req_.path_, allow_));
      writer_.set_header("Allow", allow_);
    }
    writer_.append_to(out_, date_, keep_alive, http10_keep_alive, head_only);
    writer_.reset();
  }

  // The message is done: its bytes may go, the next one's deadline starts
  // with its first byte.
  start_ = head_end_ = parsed_;
  body_view_ = {};
  body_copied_ = false;
  if (body_.capacity() > 64 * 1024) {
    std::string().swap(body_);
  } else {
    body_.clear();
  }
  req_.params_.clear();
  phase_ = Phase::idle;
  return end;
}

Connection::End Connection::run_handler(const Handler& handler, bool keep_alive, bool http10_keep_alive,
                                        bool head_only) {
  bool threw = false;
  try {
    handler(req_, writer_);
  } catch (const std::exception& e) {
    threw = true;
    sys::log(sys::LogLevel::error, "http: {} {} from {}: handler threw: {}", req_.method_, req_.path_,
             info_.peer().to_string(), e.what());
  } catch (...) {
    threw = true;
    sys::log(sys::LogLevel::error, "http: {} {} from {}: handler threw a non-std exception", req_.method_,
             req_.path_, info_.peer().to_string());
  }
  writer_.end_watch();
  if (writer_.hijacked()) {
    LoopCounters::bump(counters_.hijacked);
    writer_.reset();
    return End::close;  // the stream was the handler's: nothing more of ours on it
  }
  if (threw) {
    LoopCounters::bump(counters_.handler_errors);
    return respond_error(500, "internal server error: the request's handler failed");
  }
  const bool keep = keep_alive && !writer_.closing();
  writer_.append_to(out_, date_, keep, http10_keep_alive && keep, head_only);
  writer_.reset();
  return keep ? End::keep : End::close;
}

Connection::End Connection::respond_error(int status, std::string_view message) {
  date_ = http_date();  // also called outside process() (timeouts)
  writer_.reset();
  writer_.send(status, "text/plain; charset=utf-8", message);
  writer_.write("\n");
  writer_.append_to(out_, date_, false, false, false);
  writer_.reset();
  return End::linger;
}

bool Connection::flush() {
  const sys::Result<void> r = stream_.write_all(std::string_view(out_), io_token_);
  if (!r) {
    if (expired_) LoopCounters::bump(counters_.timeouts);
    return false;
  }
  if (out_.capacity() > 256 * 1024) {
    std::string().swap(out_);
  } else {
    out_.clear();
  }
  return true;
}

void Connection::after_batch(std::int64_t now) {
  if (!parser_->in_message()) {
    phase_ = Phase::idle;
    set_deadline(now + ns(limits_.idle_timeout));
  } else if (!parser_->head_complete()) {
    if (phase_ != Phase::head) {
      // The message began with this read's bytes: its head timeout runs
      // from then, and more bytes never extend it (slowloris).
      phase_ = Phase::head;
      set_deadline(read_time_ns_ + ns(limits_.header_timeout));
    }
  } else if (phase_ != Phase::body) {
    phase_ = Phase::body;
    set_deadline(head_time_ns_ + ns(limits_.body_timeout));
  }
}

void Connection::on_read_end(ReadResult r) {
  // End of stream: between requests a normal close; within one, the client
  // gave up on it and there is nobody to answer.
  if (r == ReadResult::eof || !expired_) return;
  LoopCounters::bump(counters_.timeouts);
  if (phase_ == Phase::idle) return;  // keep-alive idle: close silently
  (void)respond_error(408, phase_ == Phase::head
                               ? fmt::format("request timeout: the request head did not arrive within {} ms",
                                             limits_.header_timeout.count())
                               : fmt::format("request timeout: the request body did not arrive within {} ms",
                                             limits_.body_timeout.count()));
  // io_source_ is cancelled: the farewell uses a token of its own.
  if (stream_.write_all(std::string_view(out_), conn_token_.with_timeout(limits_.write_timeout))) linger();
}

void Connection::linger() {
  // Shut our side, then read what the client still sends until it closes:
  // closing with unread input would make the kernel send a reset, which can
  // destroy the error response in the client's receive queue (RFC 9112 9.6).
  (void)stream_.shutdown_write();
  const CancelToken token = conn_token_.with_timeout(limits_.linger_timeout);
  std::size_t drained = 0;
  while (drained < kMaxLingerBytes) {
    const sys::Result<std::size_t> n = stream_.read(writable(buf_.get(), cap_), token);
    if (!n || *n == 0) break;
    drained += *n;
  }
}

void Connection::hijack() {
  if (!out_.empty()) {
    (void)stream_.write_all(std::string_view(out_), conn_token_.with_timeout(limits_.write_timeout));
  }
  std::string().swap(out_);
  release_request_buffers();
}

void Connection::release_request_buffers() {
  if (!parser_) return;  // released already
  // Every view of the request into the buffer lies in [start_, parsed_): the
  // head, and the body when it was not copied to body_.
  const char* const lo = buf_.get() + start_;
  const std::size_t bytes = parsed_ - start_;
  const std::span<const HeaderField> headers = req_.headers_;
  const std::size_t slots = headers.size() + (bytes + sizeof(HeaderField) - 1) / sizeof(HeaderField);
  held_ = std::make_unique_for_overwrite<HeaderField[]>(slots);
  held_bytes_ = slots * sizeof(HeaderField);
  char* const text = reinterpret_cast<char*>(held_.get() + headers.size());
  if (bytes > 0) std::memcpy(text, lo, bytes);
  const auto lo_addr = reinterpret_cast<std::uintptr_t>(lo);
  auto moved = [&](std::string_view v) {
    const auto at = reinterpret_cast<std::uintptr_t>(v.data());
    if (at < lo_addr || at + v.size() > lo_addr + bytes) return v;  // not the buffer's (static, body_)
    return std::string_view(text + (at - lo_addr), v.size());
  };
  for (std::size_t i = 0; i < headers.size(); ++i) held_[i] = {moved(headers[i].name), moved(headers[i].value)};
  req_.headers_ = {held_.get(), headers.size()};
  req_.target_ = moved(req_.target_);
  req_.path_ = moved(req_.path_);
  req_.query_ = moved(req_.query_);
  req_.body_ = moved(req_.body_);
  // In place: add() writes slot i right after slot i was read.
  const std::size_t params = req_.params_.size();
  const std::span<const HeaderField> items = req_.params_.items();
  req_.params_.clear();
  for (std::size_t i = 0; i < params; ++i) {
    const HeaderField p = items.data()[i];
    req_.params_.add(p.name, moved(p.value));
  }
  body_view_ = {};
  buf_.reset();
  cap_ = 0;
  start_ = head_end_ = parsed_ = end_ = 0;
  parser_.reset();
}

Connection::Held Connection::held() const {
  return {.read_buffer = cap_, .parser = parser_ != nullptr, .request_copy = held_bytes_};
}

void Connection::prepare_buffer() {
  const std::size_t initial = std::max<std::size_t>(shared_.options.read_buffer_bytes, 1024);
  if (!parser_->in_message() && parsed_ == end_) {
    // Nothing of a request is buffered: start over at the front, and give
    // back a buffer that grew for one large head.
    start_ = head_end_ = parsed_ = end_ = 0;
    if (cap_ > initial) {
      buf_.reset(new char[initial]);
      cap_ = initial;
    }
    return;
  }
  const bool in_body = parser_->head_complete();
  if (in_body) detach_body();
  const std::size_t min_read = std::min<std::size_t>(2048, initial / 4);
  if (cap_ - end_ >= min_read) return;
  // Keep the head being parsed (and, before the head is complete, what was
  // read of it); body bytes are in body_ by now.
  const std::size_t keep_end = in_body ? head_end_ : end_;
  const std::size_t kept = keep_end - start_;
  std::size_t new_cap = cap_;
  const std::size_t max_cap = limits_.max_head_bytes + initial;
  while (new_cap < kept + min_read && new_cap < max_cap) new_cap *= 2;
  new_cap = std::min(new_cap, max_cap);
  char* old = buf_.get();
  std::unique_ptr<char[]> fresh;
  char* to = old;
  if (new_cap != cap_) {
    fresh.reset(new char[new_cap]);
    to = fresh.get();
  }
  std::memmove(to, old + start_, kept);
  parser_->rebase(old + start_, old + keep_end, to - (old + start_));
  if (fresh) {
    buf_ = std::move(fresh);
    cap_ = new_cap;
  }
  if (in_body) head_end_ -= start_;
  parsed_ = end_ = kept;
  start_ = 0;
}

void Connection::set_deadline(std::int64_t deadline_ns) {
  deadline_ns_ = deadline_ns;
  if (!timer_.armed()) {
    timer_.deadline_ns = deadline_ns;
    loop_->add_timer(timer_);
  } else if (timer_.deadline_ns > deadline_ns) {
    loop_->cancel_timer(timer_);
    timer_.deadline_ns = deadline_ns;
    loop_->add_timer(timer_);
  }
}

void Connection::on_timer(reactor::Timer& timer) {
  Connection& self = *static_cast<Connection*>(timer.user);
  if (self.deadline_ns_ == CancelToken::kNoDeadline) return;  // re-armed by the next set_deadline
  if (reactor::now_ns() < self.deadline_ns_) {
    // The deadline moved later since the timer was armed: follow it.
    timer.deadline_ns = self.deadline_ns_;
    self.loop_->add_timer(timer);
    return;
  }
  self.expired_ = true;
  self.io_source_.cancel();
}

}  // namespace ringo::net::http::internal
