// The blocking() pool; see blocking.h for its semantics and sizing.
//
// Pool state is guarded by one std::mutex: the pool's threads are plain
// threads that sleep on a condition variable, and the lock is taken once per
// job on each side (submit, take), next to a thread hand-off that costs
// microseconds anyway. The pool object is never destroyed (a leaked
// singleton): an atexit handler stops and joins its threads, so no static
// destructor can pull it from under a thread still inside a job.
#include "fiber/blocking.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "syscall/log.h"

namespace ringo {
namespace fiber::detail {
namespace {

constexpr std::size_t kDefaultThreads = 4;
constexpr std::size_t kMaxThreads = 1024;
constexpr auto kExitGrace = std::chrono::seconds(2);

std::atomic<std::size_t> g_cap_override{0};  // set_blocking_threads(); 0: none

std::size_t default_cap() {
  static const std::size_t cap = [] {
    const char* env = std::getenv("RINGO_BLOCKING_THREADS");
    if (env == nullptr || *env == '\0') return kDefaultThreads;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (*end != '\0' || v == 0 || v > kMaxThreads) {
      sys::log(sys::LogLevel::warn, "RINGO_BLOCKING_THREADS={} is not a number in 1..{}; using {}", env,
               kMaxThreads, kDefaultThreads);
      return kDefaultThreads;
    }
    return static_cast<std::size_t>(v);
  }();
  return cap;
}

std::size_t cap() {
  const std::size_t n = g_cap_override.load(std::memory_order_relaxed);
  return n != 0 ? n : default_cap();
}

thread_local bool t_pool_thread = false;

class Pool {
 public:
  static Pool& get() {
    static Pool* const pool = new Pool;  // never destroyed: see the head comment
    return *pool;
  }

  // False once the pool has shut down (the caller runs the job itself).
  bool submit(BlockingJob& job) {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (queued_ + 1 > idle_ && live_ < cap()) start_thread_locked();
    job.next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = &job;
    tail_ = &job;
    ++queued_;
    if (idle_ > 0) cv_.notify_one();
    return true;
  }

  BlockingStats stats() {
    std::lock_guard lock(mu_);
    return BlockingStats{live_, idle_, queued_, cap(), completed_};
  }

  static void shutdown_at_exit() { get().shutdown(); }

 private:
  // Throws only when the pool has no thread at all to run the job.
  void start_thread_locked() {
    if (!atexit_registered_) {
      if (std::atexit(&Pool::shutdown_at_exit) != 0) {
        sys::log(sys::LogLevel::warn, "blocking pool: atexit failed; its threads are not joined at exit");
      }
      atexit_registered_ = true;
    }
    // The new thread inherits this mask: every signal but the synchronous
    // faults blocked, so process signals never land on a pool thread.
    sigset_t all, old;
    ::sigfillset(&all);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) ::sigdelset(&all, sig);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    ++live_;
    try {
      threads_.emplace_back([this] { work(); });
    } catch (const std::system_error& e) {
      --live_;
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
      if (live_ == 0) throw;
      sys::log(sys::LogLevel::warn, "blocking pool: cannot start a thread ({}); {} running", e.what(), live_);
      return;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  void work() {
    ::pthread_setname_np(::pthread_self(), "ringo-blocking");
    t_pool_thread = true;
    std::unique_lock lock(mu_);
    for (;;) {
      while (head_ == nullptr && !stopping_) {
        ++idle_;
        cv_.wait(lock);
        --idle_;
      }
      if (stopping_) break;  // queued jobs stay: no loop will resume their fibers
      BlockingJob* job = head_;
      head_ = job->next;
      if (head_ == nullptr) tail_ = nullptr;
      --queued_;
      lock.unlock();
      job->run(*job);
      job->waiter->try_wake();  // the last touch of the job (see blocking.h)
      lock.lock();
      ++completed_;
    }
    --live_;
    exited_.notify_all();
  }

  void shutdown() {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    // exit() called from a pool thread (inside a job) cannot wait for itself.
    const std::size_t self = t_pool_thread ? 1 : 0;
    const bool all_ended = exited_.wait_for(lock, kExitGrace, [&] { return live_ == self; });
    std::vector<std::thread> threads = std::move(threads_);
    lock.unlock();
    if (!all_ended) {
      sys::log(sys::LogLevel::warn, "blocking pool: a thread is still inside a job at exit; detaching it");
    }
    for (std::thread& t : threads) {
      if (all_ended && t.get_id() != std::this_thread::get_id()) {
        t.join();
      } else {
        t.detach();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;      // workers: a job arrived, or stop
  std::condition_variable exited_;  // shutdown: a worker ended
  BlockingJob* head_ = nullptr;
  BlockingJob* tail_ = nullptr;
  std::size_t queued_ = 0;
  std::size_t idle_ = 0;
  std::size_t live_ = 0;
  std::uint64_t completed_ = 0;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
  bool atexit_registered_ = false;
};

}  // namespace

void run_on_pool(BlockingJob& job) {
  Waiter waiter("blocking");
  job.waiter = &waiter;
  if (!Pool::get().submit(job)) {
    job.run(job);  // after shutdown: inline
    return;
  }
  // A never-cancelled token: nothing but the pool thread's wake ends this.
  const int err = waiter.wait();
  if (err != 0) std::abort();  // unreachable: only a token can make wait() fail
}

}  // namespace fiber::detail

void set_blocking_threads(std::size_t n) {
  fiber::detail::g_cap_override.store(n > fiber::detail::kMaxThreads ? fiber::detail::kMaxThreads : n,
                                      std::memory_order_relaxed);
}

std::size_t blocking_threads() { return fiber::detail::cap(); }

BlockingStats blocking_stats() { return fiber::detail::Pool::get().stats(); }

}  // namespace ringo
