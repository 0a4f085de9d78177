// Context: construction, the trampoline every context starts in, finishing,
// and the cold paths (semantics, invariants and the rejected alternatives:
// context.h; the switch itself is inline there).
//
// One switch, from A to B:
//   A: A.outbox_ = {B, value}; sanitizer "start";
//      jump_fcontext(B.fctx_, &A)            ...A is frozen inside this call
//   B: (inside its own earlier jump_fcontext call, or at the trampoline's top)
//      sanitizer "finish"; running = B (note_running); A.fctx_ = where A
//      froze; read A.outbox_
// The receiver, not the sender, says who runs: a fault on A's stack while A
// is still pushing its registers is judged against A, one on B's against B,
// with no second pointer to keep (a "previous context" pointer would dangle
// once that context is destroyed). After jump_fcontext the code may be on
// another thread (a context moved between threads), so the thread-local is
// written out of line, where no thread pointer from before the switch exists.
#include "fiber/internal/context.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "fiber/internal/overflow.h"
#include "syscall/log.h"

namespace ringo::fiber::internal {
namespace {

namespace bctx = boost::context::detail;

constinit thread_local bool t_prepared = false;

void prepare_thread() {
  t_prepared = true;
  if (sys::Result<void> r = prepare_thread_for_overflow_reports(); !r.ok()) {
    sys::log(sys::LogLevel::warn, "fiber stack overflows on this thread will crash unreported: {}",
             r.error().message());
  }
}

}  // namespace

// make_fcontext's entry point: the bottom frame of every context. It never
// returns (returning from it would exit the thread): the context's last act
// is the finishing switch.
struct Trampoline {
  static void entry(bctx::transfer_t t) {
    Context& sender = *static_cast<Context*>(t.data);
    Context& self = *sender.outbox_.to;
    Context::arrive(t, self);
    void* first = sender.outbox_.value;
    try {
      self.entry_(self.arg_, first);
    } catch (...) {
      // Handed to the resumer; the catch block ends before the last switch.
      self.exception_ = std::current_exception();
    }
    self.finish();
  }
};

Context::Context(Stack stack, Entry entry, void* arg, std::string_view name, std::size_t top_reserved)
    : entry_(entry), arg_(arg), stack_(std::move(stack)) {
  const std::size_t n = std::min(name.size(), kNameCapacity - 1);
  if (n > 0) std::memcpy(name_, name.data(), n);
  name_[n] = '\0';
  if (stack_.empty()) broken("a context needs a stack (an empty Stack was given)");
  if (entry_ == nullptr) broken("a context needs an entry function");
  if (!t_prepared) prepare_thread();
  if (top_reserved % 16 != 0 || top_reserved + 4096 > stack_.size()) {
    broken("a context's reserved stack top must be a multiple of 16 and leave a page");
  }
  fctx_ = bctx::make_fcontext(stack_.top() - top_reserved, stack_.size() - top_reserved,
                              &Trampoline::entry);
#if defined(RINGO_FIBER_ASAN)
  asan_bottom_ = stack_.bottom();
  asan_size_ = stack_.size();
#endif
#if defined(RINGO_FIBER_TSAN)
  tsan_fiber_ = __tsan_create_fiber(0);
  __tsan_set_fiber_name(tsan_fiber_, name_[0] != '\0' ? name_ : "ringo context");
#endif
}

Context::Context(RootTag) : state_(State::running), root_(true) {
  std::memcpy(name_, "(thread stack)", sizeof("(thread stack)"));
#if defined(RINGO_FIBER_TSAN)
  tsan_fiber_ = __tsan_get_current_fiber();
#endif
}

Context::~Context() {
  if (root_) return;  // its TSan fiber is the thread's own
  if (state_ == State::running || state_ == State::suspended) {
    broken("a context destroyed while running or suspended (its frames would never unwind)");
  }
#if defined(RINGO_FIBER_TSAN)
  __tsan_destroy_fiber(tsan_fiber_);
#endif
}

Context& Context::root() {
  thread_local Context record{RootTag{}};
  return record;
}

void Context::note_running(Context* c) { context_tls::running = c; }

void Context::broken(const char* what) const {
  std::fprintf(stderr, "ringo: broken invariant: %s (context '%s')\n", what,
               name_[0] != '\0' ? name_ : "(unnamed)");
  std::abort();
}

void Context::rethrow(Context& finished) {
  std::rethrow_exception(std::exchange(finished.exception_, nullptr));
}

void Context::finish() {
  state_ = State::finished;
  jump(*this, *resumer_, nullptr, true);
  broken("a finished context was switched to");
}

Stack Context::take_stack() {
  if (state_ == State::running || state_ == State::suspended) {
    broken("take_stack() of a context that is running or suspended");
  }
  state_ = State::finished;  // a fresh one can no longer start: its stack is gone
  return std::move(stack_);
}

}  // namespace ringo::fiber::internal
