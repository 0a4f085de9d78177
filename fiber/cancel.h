// CancelToken: cancellation and a deadline that travel with a request to every
// blocking call made for it, like Go's context.Context.
//
//   CancelSource request;                          // the owner: request.cancel()
//   CancelToken t = request.token().with_timeout(2s);
//   sys::Result<std::size_t> n = io::recv(fd, buf, t);   // ECANCELED / ETIMEDOUT
//   ringo::go(fn, {.token = t});                   // the child fiber inherits it
//
// A token is a value: copies share the cancellation state. It says two things:
//  - cancelled(): cancel() was called on its source or on any ancestor source.
//  - deadline_ns(): when calls made with it time out (reactor clock,
//    CLOCK_MONOTONIC ns; kNoDeadline for none). A deadline is not an event:
//    nothing fires when it passes; every blocking call arms its own timer (or
//    the reactor operation's deadline) for it and returns ETIMEDOUT.
// error() folds both into what a blocking call returns: ECANCELED before
// ETIMEDOUT (a cancelled request is reported as cancelled even if late).
//
// Invariants:
//  - Cancellation is monotonic and flows downwards only: a source made from a
//    parent token is cancelled when the parent is; cancelling the child never
//    touches the parent. A derived token's deadline is never later than its
//    parent's (with_deadline takes the earlier one).
//  - The chain stays alive as long as any token of it does: a token keeps its
//    source's state (and through it the link to the parent) alive, so a token
//    outliving its CancelSource object still sees the parent's cancellation
//    (but can no longer be cancelled by anyone else).
//  - CancelCallback runs its function exactly once if the token is cancelled
//    while the callback is registered: on the cancelling thread, or at once in
//    the constructor when already cancelled. Its destructor deregisters and,
//    if the function is running on another thread at that moment, waits for it
//    to return (so what the function touches may be destroyed right after).
//    The function must be short and must not block: it typically wakes a
//    fiber through its loop's inbox (fiber/waiter.h).
//
// Built on std::stop_source / std::stop_callback (C++20): the same lock-free
// registration and the same "destructor waits for a running callback" rule;
// the shared state is the library's, one allocation per CancelSource.
//
// Rejected alternatives:
//  - Deadlines as cancellation (a timer per token that cancels it, Go's
//    WithDeadline): a timer per request even when no call ever waits, on a
//    loop the token does not belong to. Each wait arms its own timer instead,
//    on its own loop, only while it waits.
//  - Checking the token only when a call starts: a fiber parked in recv must
//    wake when the client goes away, not at its next call.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stop_token>

namespace ringo {

class CancelSource;

class CancelToken {
 public:
  static constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();

  // Never cancelled, no deadline.
  CancelToken() = default;

  bool cancelled() const;
  // Whether it can ever be cancelled (it came from a CancelSource).
  bool cancellable() const { return state_ != nullptr; }
  std::int64_t deadline_ns() const { return deadline_ns_; }
  bool has_deadline() const { return deadline_ns_ != kNoDeadline; }
  // 0, ECANCELED (cancelled) or ETIMEDOUT (the deadline has passed at `now_ns`).
  int error(std::int64_t now_ns) const;
  // As error(now) with the reactor clock read here.
  int error() const;

  // The same cancellation with a deadline at `deadline_ns` or this token's,
  // whichever is earlier.
  CancelToken with_deadline_ns(std::int64_t deadline_ns) const;
  CancelToken with_deadline(std::chrono::steady_clock::time_point t) const;
  // Deadline `d` from now (reactor clock), or this token's if earlier.
  CancelToken with_timeout(std::chrono::nanoseconds d) const;

 private:
  friend class CancelSource;
  friend class CancelCallback;
  struct State;
  CancelToken(std::shared_ptr<const State> state, std::int64_t deadline_ns)
      : state_(std::move(state)), deadline_ns_(deadline_ns) {}

  std::shared_ptr<const State> state_;
  std::int64_t deadline_ns_ = kNoDeadline;
};

// The owner's side: cancel() cancels every token made from it, and every
// source made from those tokens. Copies share the state (cancel either).
class CancelSource {
 public:
  // A root source: nothing cancels it but cancel().
  CancelSource();
  // A child: cancelled when `parent` is (at once if it already is); its
  // tokens carry the parent's deadline.
  explicit CancelSource(const CancelToken& parent);

  // Any thread, any number of times; the first call runs the registered
  // callbacks (on this thread) before it returns. Returns whether this call
  // was the first.
  bool cancel();
  bool cancelled() const;
  CancelToken token() const;

 private:
  std::shared_ptr<CancelToken::State> state_;
  std::int64_t deadline_ns_ = CancelToken::kNoDeadline;
};

// Runs fn(arg) once if `token` is cancelled while this object lives (see the
// head comment for the thread it runs on and the destructor's wait). A token
// that can never be cancelled registers nothing.
class CancelCallback {
 public:
  using Fn = void (*)(void* arg);
  CancelCallback(const CancelToken& token, Fn fn, void* arg);
  ~CancelCallback() = default;
  CancelCallback(const CancelCallback&) = delete;
  CancelCallback& operator=(const CancelCallback&) = delete;

 private:
  struct Thunk {
    Fn fn;
    void* arg;
    void operator()() const noexcept { fn(arg); }
  };
  std::optional<std::stop_callback<Thunk>> callback_;
};

struct CancelToken::State {
  std::stop_source source;
  // A child's link: forwards the parent's cancellation to `source`.
  struct Forward {
    std::stop_source* child;
    void operator()() const noexcept { child->request_stop(); }
  };
  std::optional<std::stop_callback<Forward>> link;
};

inline bool CancelToken::cancelled() const { return state_ != nullptr && state_->source.stop_requested(); }

}  // namespace ringo
