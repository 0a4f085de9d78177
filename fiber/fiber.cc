// See fiber.h for the API's invariants and scheduler.h for the states.
#include "fiber/fiber.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "reactor/clock.h"
#include "syscall/log.h"

namespace ringo {
namespace fiber::detail {
namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ringo: broken invariant: %s\n", what);
  std::abort();
}

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

std::string fiber_name(std::uint64_t id, const std::string& name) {
  return name.empty() ? fmt::format("fiber-{}", id) : name;
}

JoinStateBase::JoinStateBase(std::uint64_t id, std::string name) : id_(id), name_(std::move(name)) {}

JoinStateBase::~JoinStateBase() {
  if (error_ && !joined_) {
    sys::log(sys::LogLevel::error, "fiber {} '{}' ended with an exception nobody joined: {}", id_, name_,
             describe(error_));
  }
}

bool JoinStateBase::done() const {
  std::lock_guard lock(mu_);
  return done_;
}

void JoinStateBase::finish(std::exception_ptr error) {
  reactor::Loop* waiter_loop = nullptr;
  std::uint64_t waiter_id = 0;
  bool notify = false;
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    error_ = std::move(error);
    done_ = true;
    waiter_loop = waiter_loop_;
    waiter_id = waiter_id_;
    notify = thread_waiters_ > 0;
  }
  // Both after unlocking: the woken side takes the lock first thing. The
  // joiner's shared_ptr and the fiber's keep this state alive meanwhile.
  if (notify) cv_.notify_all();
  if (waiter_loop != nullptr) unpark(*waiter_loop, waiter_id);
}

void JoinStateBase::abandon(const char* why) {
  finish(std::make_exception_ptr(std::runtime_error(fmt::format("fiber '{}' never ran: {}", name_, why))));
}

std::exception_ptr JoinStateBase::wait() {
  std::unique_lock lock(mu_);
  if (!done_) {
    Scheduler* s = Scheduler::current();
    if (s != nullptr && s->running() != nullptr) {
      wait_in_fiber(*s, lock);
    } else if (s != nullptr) {
      die("JoinHandle::join() on a loop's thread outside a fiber (it would block the loop)");
    } else {
      ++thread_waiters_;
      cv_.wait(lock, [this] { return done_; });
      --thread_waiters_;
    }
  }
  joined_ = true;
  return error_;
}

void JoinStateBase::wait_in_fiber(Scheduler& s, std::unique_lock<std::mutex>& lock) {
  Fiber& me = *s.running();
  if (me.id() == id_) die("a fiber joined itself");
  waiter_loop_ = &s.loop();
  waiter_id_ = me.id();
  while (!done_) {
    lock.unlock();  // never hold a lock across a switch
    s.park("join");
    lock.lock();
  }
  waiter_loop_ = nullptr;
}

}  // namespace fiber::detail

void unpark(fiber::Fiber& f) {
  reactor::Loop& loop = f.loop();
  if (reactor::Loop::current() == &loop) {
    fiber::Scheduler::of(loop).unpark(f);
  } else {
    unpark(loop, f.id());
  }
}

void unpark(reactor::Loop& loop, std::uint64_t fiber_id) {
  if (reactor::Loop::current() == &loop) {
    fiber::Scheduler::of(loop).unpark(fiber_id);
  } else {
    loop.post([&loop, fiber_id] { fiber::Scheduler::of(loop).unpark(fiber_id); });
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

void yield() {
  if (fiber::Scheduler* s = scheduler_in_fiber()) {
    s->yield();
  } else {
    std::this_thread::yield();
  }
}

void park(const char* reason) { fiber::Scheduler::current_or_die("this_fiber::park()").park(reason); }

void sleep_until_ns(std::int64_t deadline_ns) {
  fiber::Scheduler* s = scheduler_in_fiber();
  if (s == nullptr) {
    for (std::int64_t now = reactor::now_ns(); now < deadline_ns; now = reactor::now_ns()) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(deadline_ns - now));
    }
    return;
  }
  if (deadline_ns <= reactor::now_ns()) return;
  reactor::Timer timer;
  timer.user = s->running();
  timer.deadline_ns = deadline_ns;
  timer.on_fire = [](reactor::Timer& t) {
    auto* f = static_cast<fiber::Fiber*>(t.user);
    fiber::Scheduler::of(f->loop()).unpark(*f);
  };
  s->loop().add_timer(timer);
  while (timer.armed()) s->park("sleep");  // a stale wake-up parks again
}

void sleep_for(std::chrono::nanoseconds d) { sleep_until_ns(reactor::now_ns() + d.count()); }

}  // namespace this_fiber
}  // namespace ringo
