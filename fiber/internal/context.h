// Context: one execution context (registers + a Stack) that a thread can
// switch into and out of: the brick fibers are made of. It knows nothing of
// schedulers, loops or parking; it only switches.
//
//   Context c(std::move(stack), entry, arg, "conn-42");
//   void* v = c.resume(x);     // runs entry(arg, x) until it suspends or returns
//   ...inside entry: void* y = Context::current()->suspend(v);  // back to the resumer
//   c.resume(y2);              // continues after suspend(), which returns y2
//
// Semantics:
//  - resume() is asymmetric, like a call: the context runs until it
//    suspend()s (resume returns the value given to suspend) or its entry
//    returns (the context is finished; resume returns nullptr). Whoever called
//    resume() is the context's *resumer*; suspend() goes back to it. A context
//    may resume another (nesting): each suspend goes back one level.
//  - switch_to(next) is symmetric: the running context suspends and `next`
//    runs in its place, inheriting its resumer (when `next` suspends or
//    finishes, the value arrives at that resumer, as if it had resumed `next`).
//    A scheduler can thus go from fiber to fiber without passing through its
//    own stack.
//  - Exceptions never cross a switch: the entry runs inside a catch-all in the
//    trampoline; an exception that escapes the entry finishes the context and
//    is rethrown (std::rethrow_exception) by the resume() (or, after
//    switch_to, the resume() of the resumer) that sees it finish.
//  - Values passed are raw pointers; what they point to must outlive the
//    switch (typically: a local of the suspended side, or a scheduler field).
//
// Invariants (each is checked; breaking one aborts with a message naming it):
//  - Only a fresh or suspended context may be resumed or switched to; only the
//    running context may suspend() or switch_to().
//  - A context is destroyed only fresh or finished. Destroying a suspended one
//    would leave its frames never unwound (no destructors, leaked locks);
//    the layer above must run every fiber to its end (cancellation makes
//    parked calls return).
//  - No switch from inside a catch block: the C++ runtime's per-thread record
//    of "exceptions being handled" is not per context.
//  - A context runs on the thread that resumes it. Moving a suspended context
//    to another thread is allowed (the next resume() there makes that thread
//    its resumer), but code must not keep a thread_local's address across a
//    switch: the compiler may cache the thread pointer (aarch64 does). The
//    inline code here reads thread-locals only before a switch; after one, the
//    receiving side records itself as running through an out-of-line function.
//  - context_tls::running always names the context whose stack the thread is
//    on (or the thread's root record): the receiver of a switch sets it first
//    thing, before it can touch new stack. The overflow handler relies on it.
//  - Sanitizers: under ASan every switch is wrapped in
//    __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber (the
//    finishing switch passes no fake-stack slot, so ASan frees the finished
//    context's fake stack); under TSan each context has its own TSan fiber
//    (__tsan_create_fiber / __tsan_switch_to_fiber / __tsan_destroy_fiber).
//
// Implementation: Boost.Context's fcontext layer (make_fcontext /
// jump_fcontext, a few instructions of assembly). resume(), suspend() and
// switch_to() are inline, so that jump_fcontext is called straight from the
// caller's frame: jump_fcontext leaves through an indirect jump (jmp *%r8 on
// x86-64), so after each switch the return of every frame between the caller
// and it mispredicts (the return-stack buffer holds the other context's
// addresses). Measured: one such frame on each side more than doubles the
// round trip (11 -> 25 ns). Hence
// this header, not only context.cc, includes Boost's fcontext declarations
// (DESIGN.md allows fiber/internal/context.*; nothing else may).
//
// Rejected alternatives:
//  - ucontext (makecontext/swapcontext): swapcontext saves and restores the
//    signal mask, a sigprocmask syscall per switch: 442 ns per round trip on
//    the same machine, against 12 ns here.
//  - boost::context::fiber (the class over fcontext): the switch costs the
//    same (measured 10.6-11.3 ns vs 10.9-12.0 ns per round trip, g++ 12 -O2),
//    but create+run+finish costs twice as much (15 vs 28 ns: it jumps into the
//    new stack once at creation to place its record, and leaves through
//    ontop_fcontext); Boost 1.74's fcontext fiber has no ASan hooks, so the
//    switches would need wrapping anyway; it owns its stack through a
//    StackAllocator, where ours come from a StackPool; and it unwinds a
//    destroyed suspended fiber by throwing forced_unwind through user frames,
//    which a user's catch (...) can swallow.
//  - Our own assembly: Boost's is correct on x86-64 and aarch64 and
//    maintained; the switch is already a handful of ns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

#include <boost/context/detail/fcontext.hpp>

#include "fiber/stack.h"

#if defined(__SANITIZE_ADDRESS__)
#define RINGO_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGO_FIBER_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define RINGO_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGO_FIBER_TSAN 1
#endif
#endif

#if defined(RINGO_FIBER_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(RINGO_FIBER_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace ringo::fiber::internal {

class Context;

namespace context_tls {
// Trivial and constant-initialized: a signal handler can read it on any
// thread at any time without triggering lazy TLS set-up. Null until the
// thread's first switch; then the running context or the thread's root record.
inline constinit thread_local Context* running = nullptr;
}  // namespace context_tls

class Context {
 public:
  // Runs in the context: `arg` is the one given at construction, `first` the
  // value of the resume() that started it.
  using Entry = void (*)(void* arg, void* first);
  // The name, with its terminating NUL, is kept in a fixed array so that the
  // overflow handler can print it without following a pointer into the heap.
  static constexpr std::size_t kNameCapacity = 32;

  // A fresh context that will run entry(arg, first) on `stack` (which must not
  // be empty). Nothing runs until the first resume(). A name longer than
  // kNameCapacity - 1 bytes is cut. The first context a thread creates
  // prepares it for overflow reports (overflow.h). The top `top_reserved`
  // bytes of the stack (a multiple of 16) are left to the caller (a fiber
  // keeps its function object there); the context's frames start below.
  Context(Stack stack, Entry entry, void* arg, std::string_view name = {}, std::size_t top_reserved = 0);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs this (fresh or suspended) context until it suspends (returns the
  // value given to suspend()) or finishes (returns nullptr, or rethrows the
  // exception that escaped its entry).
  void* resume(void* value = nullptr);
  // The running context only: back to the resumer, whose resume() returns
  // `value`. Returns the value of the resume() that continues this context.
  void* suspend(void* value = nullptr);
  // The running context only: suspends, and `next` (fresh or suspended) runs
  // with this context's resumer. Returns the value of the resume() or
  // switch_to() that continues this context.
  void* switch_to(Context& next, void* value = nullptr);

  // The context running on this thread, or nullptr on the thread's own stack.
  // A thread-local load: code that knows its context (a scheduler's fiber)
  // should not ask, since just after a switch this load sits on the critical
  // path (measured: a symmetric switch costs 11 ns with it, 6 ns without).
  static Context* current();

  bool started() const { return state_ != State::fresh; }
  bool finished() const { return state_ == State::finished; }
  bool suspended() const { return state_ == State::suspended; }
  const char* name() const { return name_; }
  const Stack& stack() const { return stack_; }
  // Takes the stack out of a fresh or finished context (to return it to a
  // pool); the context cannot run afterwards.
  Stack take_stack();

  // For the overflow handler: a plain thread-local load, async-signal-safe.
  // The context (or root record, whose stack is empty) whose stack this thread
  // is on, or null.
  static const Context* running_for_signal() { return context_tls::running; }

 private:
  friend struct Trampoline;
  enum class State : std::uint8_t { fresh, running, suspended, finished };
  // What a switch carries; it lives in the sender, never on a stack (the
  // finishing switch frees the sender's ASan fake stack before the receiver
  // reads it).
  struct Transfer {
    Context* to = nullptr;
    void* value = nullptr;
  };

  struct RootTag {};
  explicit Context(RootTag);  // the record of a thread's own stack
  static Context& root();

  bool resumable() const { return !root_ && (state_ == State::fresh || state_ == State::suspended); }
  [[noreturn]] void broken(const char* what) const;
  // The context running on this thread, or its root record.
  static Context& running();
  void* jump_into(Context& from, void* value);
  // Switches from `from` (running here) to `to`; returns the sender of the
  // switch that eventually comes back to `from`.
  static Context& jump(Context& from, Context& to, void* value, bool from_finished);
  // The receiving half of every switch; returns the sender.
  static Context& arrive(boost::context::detail::transfer_t t, Context& self);
  // context_tls::running = c, out of line: see the head comment.
  [[gnu::noinline]] static void note_running(Context* c);
  [[noreturn]] static void rethrow(Context& finished);
  [[noreturn]] void finish();

  boost::context::detail::fcontext_t fctx_ = nullptr;  // where to jump to continue this context
  Context* resumer_ = nullptr;  // where suspend() goes
  Entry entry_ = nullptr;
  void* arg_ = nullptr;
  State state_ = State::fresh;
  bool root_ = false;
  Transfer outbox_;
  std::exception_ptr exception_;  // escaped the entry; rethrown by the resumer
  Stack stack_;
  char name_[kNameCapacity] = {};
#if defined(RINGO_FIBER_ASAN)
  void* asan_fake_stack_ = nullptr;
  const void* asan_bottom_ = nullptr;
  std::size_t asan_size_ = 0;
#endif
#if defined(RINGO_FIBER_TSAN)
  void* tsan_fiber_ = nullptr;
#endif
};

// ---- the switch, inline (see "Implementation" above) ----

#define RINGO_CONTEXT_INLINE [[gnu::always_inline]] inline

RINGO_CONTEXT_INLINE Context* Context::current() {
  Context* c = context_tls::running;
  return c != nullptr && !c->root_ ? c : nullptr;
}

RINGO_CONTEXT_INLINE Context& Context::running() {
  Context* c = context_tls::running;
  return c != nullptr ? *c : root();
}

RINGO_CONTEXT_INLINE void* Context::resume(void* value) {
  if (!resumable()) [[unlikely]] broken("resume() of a context that is running or finished");
  Context& from = running();
  resumer_ = &from;
  return jump_into(from, value);
}

RINGO_CONTEXT_INLINE void* Context::suspend(void* value) {
  if (context_tls::running != this) [[unlikely]] {
    broken("suspend() called outside the context (only the running context may suspend)");
  }
  state_ = State::suspended;
  return jump(*this, *resumer_, value, false).outbox_.value;
}

RINGO_CONTEXT_INLINE void* Context::switch_to(Context& next, void* value) {
  if (context_tls::running != this) [[unlikely]] {
    broken("switch_to() called outside the context (only the running context may switch)");
  }
  if (!next.resumable()) [[unlikely]] next.broken("switch_to() a context that is running or finished");
  next.resumer_ = resumer_;
  state_ = State::suspended;
  return next.jump_into(*this, value);
}

// `from` (running) hands the thread to this context; returns what comes back
// to `from`: a value, or a finished context's exception.
RINGO_CONTEXT_INLINE void* Context::jump_into(Context& from, void* value) {
  state_ = State::running;
  Context& sender = jump(from, *this, value, false);
  if (sender.state_ == State::finished && sender.exception_) [[unlikely]] rethrow(sender);
  return sender.outbox_.value;
}

RINGO_CONTEXT_INLINE Context& Context::jump(Context& from, Context& to, void* value, bool from_finished) {
  from.outbox_ = Transfer{&to, value};
#if defined(RINGO_FIBER_ASAN)
  // A finishing context passes no slot: ASan frees its fake stack.
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.asan_fake_stack_, to.asan_bottom_,
                                 to.asan_size_);
#else
  (void)from_finished;
#endif
#if defined(RINGO_FIBER_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber_, 0);
#endif
  // No thread-local is touched inline below this line: we may wake on another
  // thread (arrive() records us as running out of line).
  return arrive(boost::context::detail::jump_fcontext(to.fctx_, &from), from);
}

RINGO_CONTEXT_INLINE Context& Context::arrive(boost::context::detail::transfer_t t, Context& self) {
#if defined(RINGO_FIBER_ASAN)
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(self.asan_fake_stack_, &bottom, &size);
#endif
  note_running(&self);
  Context& sender = *static_cast<Context*>(t.data);
  sender.fctx_ = t.fctx;
#if defined(RINGO_FIBER_ASAN)
  // How a thread's own stack gets known bounds: ASan reports them here.
  sender.asan_bottom_ = bottom;
  sender.asan_size_ = size;
#endif
  return sender;
}

#undef RINGO_CONTEXT_INLINE

}  // namespace ringo::fiber::internal
