// SseStream (see sse_stream.h for the design: coalescing, back-pressure,
// stall and hang-up).
#include "net/sse/sse_stream.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "net/http/response.h"  // ResponseWriter::hung_up(), inline
#include "reactor/clock.h"
#include "syscall/sockopt.h"

namespace ringo::net::sse {

namespace {

constexpr const char* kStalled = "the SSE reader drained nothing for StreamOptions::stall_timeout; disconnected";

}  // namespace

SseStream::SseStream(TcpStream& connection, const CancelToken& parent, StreamOptions options)
    : conn_(&connection), options_(options), source_(parent) {
  init();
}

void SseStream::init() {
  loop_ = &fiber::Scheduler::current_or_die("net::sse::SseStream").loop();
  token_ = source_.token();
  flush_.run = &SseStream::run_flush;
  flush_.stream = this;
  stall_timer_.on_fire = &SseStream::on_stall_timer;
  stall_timer_.user = this;
  if (options_.notsent_lowat > 0) {
    if (auto r = sys::set_option(conn_->fd(), sys::opt::notsent_lowat, options_.notsent_lowat); !r) {
      fail(r.error());
      return;
    }
  }
  if (options_.watch_hangup) hangup_ = std::make_unique<HangupWatch>(*conn_, source_);
}

SseStream::~SseStream() {
  // Send what is buffered while the reader is there to take it; the drain
  // ends early on hang-up, the request's cancellation or a stall.
  if (!failed_ && !source_.cancelled() && buffered() > 0) (void)drain();
  closing_ = true;
  if (waiter_ != nullptr) {
    // Another fiber parked in send()/drain() on a stream being destroyed:
    // its frame would outlive the stream. A use after free in the making.
    std::fprintf(stderr, "ringo: broken invariant: an SseStream destroyed while another fiber waits on it\n");
    std::abort();
  }
  if (sending_) loop_->cancel(op_);
  // The backend and the loop's ready list may hold op_ and flush_: wait
  // until both have let go, whatever the token says.
  (void)wait_until([](const SseStream& s) { return !s.sending_ && !s.flush_scheduled_; }, CancelToken(),
                   "sse close");
  if (stall_timer_.armed()) loop_->cancel_timer(stall_timer_);
  hangup_.reset();  // parks until its poll operation is done
}

bool SseStream::hung_up() const {
  return (hangup_ && hangup_->fired()) || (writer_ != nullptr && writer_->hung_up());
}

sys::Result<void> SseStream::error() const {
  if (failed_) return error_;
  return {};
}

sys::Result<void> SseStream::check(const char* op) const {
  if (failed_) [[unlikely]] return error_;
  if (source_.cancelled()) [[unlikely]] {
    return sys::Error(op, ECANCELED, nullptr,
                      hung_up() ? "the peer hung up" : "the stream's token was cancelled (the request ended)");
  }
  return {};
}

sys::Result<void> SseStream::wait_for_room(const char* op, bool may_park) {
  if (buffered() < options_.max_buffered) [[likely]] return {};
  if (!may_park) return sys::Error(op, EAGAIN, nullptr, "the stream's buffer is full (a slow reader)");
  ++stats_.parks;
  if (auto r = wait_until([](const SseStream& s) { return s.failed_ || s.buffered() < s.options_.max_buffered; },
                          token_, "sse send");
      !r) {
    return sys::Error(op, r.error().errnum(), nullptr,
                      hung_up() ? "the peer hung up" : "the stream's token ended the wait for room");
  }
  return check(op);
}

sys::Result<void> SseStream::wait_until(bool (*done)(const SseStream&), const CancelToken& token,
                                        const char* reason) {
  while (!done(*this)) {
    if (waiter_ != nullptr) {
      return sys::Error("sse::SseStream", EBUSY, nullptr, "another fiber already waits on this stream");
    }
    fiber::Waiter w(reason);
    waiter_ = &w;
    const int err = w.wait(token);
    if (waiter_ == &w) waiter_ = nullptr;  // not woken by notify() (which clears it)
    if (err != 0) return sys::Error("sse::SseStream wait", err);
  }
  return {};
}

void SseStream::notify() {
  if (waiter_ != nullptr) std::exchange(waiter_, nullptr)->try_wake();
}

template <class Append>
sys::Result<void> SseStream::put(const char* op, bool may_park, Append&& append) {
  if (auto r = check(op); !r) [[unlikely]] return r;
  if (auto r = wait_for_room(op, may_park); !r) [[unlikely]] return r;
  if (auto r = append(next_); !r) [[unlikely]] return r;
  stats_.max_buffered = std::max(stats_.max_buffered, buffered());
  if (!sending_ && !flush_scheduled_) {
    flush_scheduled_ = true;
    loop_->schedule(flush_);
  }
  return {};
}

sys::Result<void> SseStream::send(const Event& event) {
  auto r = put("sse::SseStream::send", true, [&](std::string& b) { return append_event(b, event); });
  if (r) ++stats_.events;
  return r;
}

sys::Result<void> SseStream::try_send(const Event& event) {
  auto r = put("sse::SseStream::try_send", false, [&](std::string& b) { return append_event(b, event); });
  if (r) ++stats_.events;
  return r;
}

sys::Result<void> SseStream::send_comment(std::string_view text) {
  return put("sse::SseStream::send_comment", true, [&](std::string& b) {
    append_comment(b, text);
    return sys::ok();
  });
}

sys::Result<void> SseStream::send_retry(std::chrono::milliseconds retry) {
  return put("sse::SseStream::send_retry", true, [&](std::string& b) {
    append_retry(b, retry);
    return sys::ok();
  });
}

sys::Result<void> SseStream::drain() {
  if (auto r = check("sse::SseStream::drain"); !r) return r;
  start_send();  // now rather than at the flush runnable's turn
  if (auto r = wait_until([](const SseStream& s) { return s.failed_ || s.buffered() == 0; }, token_, "sse drain");
      !r) {
    return sys::Error("sse::SseStream::drain", r.error().errnum(), nullptr,
                      hung_up() ? "the peer hung up" : "the stream's token ended the drain");
  }
  return check("sse::SseStream::drain");
}

void SseStream::run_flush(reactor::Runnable& r) {
  SseStream& s = *static_cast<FlushRunnable&>(r).stream;
  s.flush_scheduled_ = false;
  s.start_send();
  s.notify();
}

void SseStream::start_send() {
  if (sending_ || failed_ || closing_) return;
  if (out_off_ == out_.size()) {
    if (next_.empty()) return;
    out_.clear();
    out_off_ = 0;
    out_.swap(next_);
  } else if (!next_.empty()) {
    // A partial send left a tail: one send for the tail and what came since.
    out_.erase(0, out_off_);
    out_off_ = 0;
    out_.append(next_);
    next_.clear();
  }
  reactor::prepare_send(op_, conn_->fd(), out_.data() + out_off_, out_.size() - out_off_);
  op_.on_complete = &SseStream::on_sent;
  op_.user = this;
  sending_ = true;
  ++stats_.sends;
  loop_->submit(op_);
  if (options_.stall_timeout.count() > 0 && !stall_timer_.armed()) {
    stall_mark_ = stats_.sends;
    stall_timer_.deadline_ns = reactor::now_ns() + std::chrono::nanoseconds(options_.stall_timeout).count();
    loop_->add_timer(stall_timer_);
  }
}

// The stall check, at most once per stall_timeout while sends are in flight
// (see the head comment): the send in flight now was in flight at the last
// check (or is the one that armed the timer) and took nothing since.
void SseStream::on_stall_timer(reactor::Timer& t) {
  SseStream& s = *static_cast<SseStream*>(t.user);
  if (!s.sending_ || s.closing_) return;  // idle: the next send re-arms
  if (s.stats_.sends == s.stall_mark_) {
    s.stalled_ = true;
    s.loop_->cancel(s.op_);  // completes with ECANCELED: on_sent reports the stall
    return;
  }
  s.stall_mark_ = s.stats_.sends;
  t.deadline_ns = reactor::now_ns() + std::chrono::nanoseconds(s.options_.stall_timeout).count();
  s.loop_->add_timer(t);
}

void SseStream::on_sent(reactor::Operation& op, reactor::Completion& c) {
  SseStream& s = *static_cast<SseStream*>(op.user);
  s.sending_ = false;
  if (c.result > 0) {
    s.stalled_ = false;  // a completion that won the race with the stall's cancel
    s.out_off_ += static_cast<std::size_t>(c.result);
    s.stats_.bytes_sent += static_cast<std::uint64_t>(c.result);
    if (s.out_off_ == s.out_.size()) {
      s.out_.clear();
      s.out_off_ = 0;
      if (s.release_sent_buffer_) {  // the head's (see the member); on the loop's stack, not a fiber's
        std::string().swap(s.out_);
        s.release_sent_buffer_ = false;
      }
    }
    s.start_send();  // the rest, and whatever was appended meanwhile
  } else if (s.stalled_) {
    // Past the deadline with nothing taken: a reset on close frees the
    // kernel's unsent bytes at once (no orphaned socket retrying for minutes).
    const linger reset{1, 0};
    (void)::setsockopt(s.conn_->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    s.fail(sys::Error("sse::SseStream send", ETIMEDOUT, nullptr, kStalled));
  } else if (c.result == -ECANCELED && s.closing_) {
    s.fail(sys::Error("sse::SseStream send", ECANCELED, nullptr, "the stream was closed with bytes unsent"));
  } else {
    s.fail(sys::Error("sse::SseStream send", c.result < 0 ? -c.result : EIO));
  }
  s.notify();
}

void SseStream::fail(sys::Error error) {
  if (failed_) return;
  failed_ = true;
  error_ = error;
  if (!sending_) {
    out_.clear();
    out_off_ = 0;
  }
  next_.clear();
  source_.cancel();  // the handler's waits on token() end now
}

}  // namespace ringo::net::sse
