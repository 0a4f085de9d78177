// See fiber.h for the API's invariants and scheduler.h for the states.
#include "fiber/fiber.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "fiber/internal/invariant.h"
#include "fiber/waiter.h"
#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/log.h"

namespace ringo {
namespace fiber::detail {
namespace {

using internal::die;

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

}  // namespace

FiberSpec make_spec(std::uint64_t id, GoOptions&& options, sys::Site site) {
  FiberSpec spec{id, std::move(options.name), options.stack_size, site, {}};
  if (options.token) {
    spec.token = std::move(*options.token);
  } else if (Scheduler* s = Scheduler::current(); s != nullptr && s->running() != nullptr) {
    spec.token = s->running()->token();
  }
  return spec;
}

reactor::Loop& group_loop(std::size_t index) {
  reactor::LoopGroup* group = reactor::LoopGroup::current();
  if (group == nullptr) throw std::logic_error("go_on(loop index): this thread runs no loop of a LoopGroup");
  if (index >= group->size()) {
    throw std::out_of_range(fmt::format("go_on(loop index {}): the group has {} loops", index, group->size()));
  }
  return group->loop(index);
}

JoinStateBase::~JoinStateBase() {
  if (error_ && !joined_) {
    sys::log(sys::LogLevel::error, "fiber {} '{}' ended with an exception nobody joined: {}", id_,
             error_where_, describe(error_));
  }
}

void JoinStateBase::finish(std::exception_ptr error) {
  if (error) {
    Scheduler* s = Scheduler::current();
    error_where_ = s != nullptr && s->running() != nullptr ? s->running()->name() : fmt::format("fiber-{}", id_);
  }
  error_ = std::move(error);
  // Publishes error_ (and a value set before); acquires waiter_ if a fiber waits.
  const std::uint32_t was = state_.exchange(kDone, std::memory_order_acq_rel);
  if (was == kDone) die("a fiber's join state finished twice");
  // This state stays alive meanwhile: the fiber's shared_ptr holds it.
  if (was == kFiberWaits) unpark(waiter_);
  state_.notify_all();  // a joining thread
}

void JoinStateBase::abandon(const std::string& name, const char* why) {
  if (done()) return;
  finish(std::make_exception_ptr(std::runtime_error(fmt::format("fiber '{}' never ran: {}", name, why))));
}

std::exception_ptr JoinStateBase::wait() {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  if (s != kDone) {
    Scheduler* sched = Scheduler::current();
    if (sched != nullptr && sched->running() != nullptr) {
      Fiber& me = *sched->running();
      if (me.id() == id_) die("a fiber joined itself");
      waiter_ = me.ref();
      if (state_.compare_exchange_strong(s, kFiberWaits, std::memory_order_release, std::memory_order_acquire)) {
        // A stale wake-up resumes us early: park again until done.
        while (state_.load(std::memory_order_acquire) != kDone) sched->park("join");
      }
    } else if (sched != nullptr) {
      die("JoinHandle::join() on a loop's thread outside a fiber (it would block the loop)");
    } else {
      for (; s != kDone; s = state_.load(std::memory_order_acquire)) state_.wait(s, std::memory_order_acquire);
    }
  }
  joined_ = true;
  return error_;
}

}  // namespace fiber::detail

void unpark(fiber::Fiber& f) {
  reactor::Loop& loop = f.loop();
  if (reactor::Loop::current() == &loop) {
    fiber::Scheduler::of(loop).unpark(f);
  } else {
    unpark(f.ref());
  }
}

void unpark(const fiber::FiberRef& ref) {
  reactor::Loop& loop = *ref.loop;
  if (reactor::Loop::current() == &loop) {
    fiber::Scheduler::of(loop).unpark(ref);
  } else {
    loop.post([ref] { fiber::Scheduler::of(*ref.loop).unpark(ref); });
  }
}

void unpark(reactor::Loop& loop, std::uint64_t fiber_id) {
  if (reactor::Loop::current() == &loop) {
    fiber::Scheduler::of(loop).unpark_id(fiber_id);
  } else {
    loop.post([&loop, fiber_id] { fiber::Scheduler::of(loop).unpark_id(fiber_id); });
  }
}

std::string fiber_dump() {
  fiber::Scheduler* s = fiber::Scheduler::current();
  return s != nullptr ? s->dump() : std::string();
}

namespace this_fiber {
namespace {

fiber::Scheduler* scheduler_in_fiber() {
  fiber::Scheduler* s = fiber::Scheduler::current();
  return s != nullptr && s->running() != nullptr ? s : nullptr;
}

}  // namespace

bool in_fiber() { return scheduler_in_fiber() != nullptr; }

fiber::Fiber& current() {
  fiber::Scheduler* s = scheduler_in_fiber();
  if (s == nullptr) fiber::detail::die("this_fiber::current() called outside a fiber");
  return *s->running();
}

const CancelToken& token() {
  static const CancelToken none;
  fiber::Scheduler* s = scheduler_in_fiber();
  return s != nullptr ? s->running()->token() : none;
}

void set_token(CancelToken t) { current().set_token(std::move(t)); }

void yield() {
  if (fiber::Scheduler* s = scheduler_in_fiber()) {
    s->yield();
  } else {
    std::this_thread::yield();
  }
}

void park(const char* reason) { fiber::Scheduler::current_or_die("this_fiber::park()").park(reason); }

void sleep_until_ns(std::int64_t deadline_ns) {
  // A token that is never cancelled: only the wake-up time ends the wait
  // (a Waiter never returns before its deadline), in a fiber or a thread.
  (void)sleep_until_ns(deadline_ns, CancelToken());
}

void sleep_for(std::chrono::nanoseconds d) { sleep_until_ns(reactor::now_ns() + d.count()); }

sys::Result<void> sleep_until_ns(std::int64_t deadline_ns, const CancelToken& token) {
  // Nobody wakes this waiter: it returns when the combined token fires, with
  // ECANCELED (cancelled) or ETIMEDOUT (the earlier of the two deadlines).
  fiber::Waiter w("sleep");
  const int err = w.wait(token.with_deadline_ns(deadline_ns));
  if (err == ECANCELED) return sys::Error("sleep", ECANCELED, nullptr, "cancelled by its token");
  if (token.has_deadline() && token.deadline_ns() < deadline_ns) {
    return sys::Error("sleep", ETIMEDOUT, nullptr, "its token's deadline came before the wake-up time");
  }
  return {};
}

sys::Result<void> sleep_for(std::chrono::nanoseconds d, const CancelToken& token) {
  const std::int64_t now = reactor::now_ns();
  const std::int64_t deadline = d.count() >= CancelToken::kNoDeadline - now ? CancelToken::kNoDeadline : now + d.count();
  return sleep_until_ns(deadline, token);
}

}  // namespace this_fiber
}  // namespace ringo
