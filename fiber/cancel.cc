// See cancel.h for the semantics and invariants.
#include "fiber/cancel.h"

#include <cerrno>

#include "reactor/clock.h"

namespace ringo {

int CancelToken::error(std::int64_t now_ns) const {
  if (cancelled()) return ECANCELED;
  if (deadline_ns_ != kNoDeadline && now_ns >= deadline_ns_) return ETIMEDOUT;
  return 0;
}

int CancelToken::error() const {
  if (cancelled()) return ECANCELED;
  return deadline_ns_ == kNoDeadline ? 0 : error(reactor::now_ns());
}

CancelToken CancelToken::with_deadline_ns(std::int64_t deadline_ns) const {
  return CancelToken(state_, deadline_ns < deadline_ns_ ? deadline_ns : deadline_ns_);
}

CancelToken CancelToken::with_deadline(std::chrono::steady_clock::time_point t) const {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the reactor clock.
  return with_deadline_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

CancelToken CancelToken::with_timeout(std::chrono::nanoseconds d) const {
  const std::int64_t now = reactor::now_ns();
  // Saturate: a huge timeout means no deadline, not an overflow into the past.
  const std::int64_t deadline = d.count() >= kNoDeadline - now ? kNoDeadline : now + d.count();
  return with_deadline_ns(deadline);
}

CancelSource::CancelSource() : state_(std::make_shared<CancelToken::State>()) {}

CancelSource::CancelSource(const CancelToken& parent)
    : state_(std::make_shared<CancelToken::State>()), deadline_ns_(parent.deadline_ns()) {
  if (parent.state_ != nullptr) {
    // Runs at once (here) when the parent is already cancelled.
    state_->link.emplace(parent.state_->source.get_token(), CancelToken::State::Forward{&state_->source});
  }
}

bool CancelSource::cancel() { return state_->source.request_stop(); }

bool CancelSource::cancelled() const { return state_->source.stop_requested(); }

CancelToken CancelSource::token() const { return CancelToken(state_, deadline_ns_); }

CancelCallback::CancelCallback(const CancelToken& token, Fn fn, void* arg) {
  if (token.state_ != nullptr) callback_.emplace(token.state_->source.get_token(), Thunk{fn, arg});
}

}  // namespace ringo
