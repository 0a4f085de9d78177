// The remote inbox: the one way into a loop for every other thread, loops and
// plain threads (GPU workers) alike, in the spirit of Seastar's alien:: and
// libuv's uv_async_send.
//
// A lock-free intrusive multi-producer single-consumer queue (Vyukov's): a
// push is one atomic exchange and one store, wait-free for producers; the
// loop pops without any atomic read-modify-write. Tasks run in the order their
// pushes linearised, on the loop's thread.
//
// Invariants:
//  - Only the owning loop pops; any thread pushes.
//  - empty() may answer "not empty" while a push is half done (the producer
//    swapped head_ but has not linked it yet); pop() then returns null and the
//    loop retries on its next turn instead of sleeping, so no task is lost
//    and none waits for an unrelated wake-up.
//
// Rejected: a mutex + std::deque (a lock convoy when many GPU workers post
// tokens at once); a bounded ring (a full inbox would make a GPU worker block
// or drop a token; the unbounded queue's memory is bounded by its producers).
#pragma once

#include <atomic>
#include <utility>

namespace ringo::reactor {

struct InboxTask {
  virtual ~InboxTask() = default;
  virtual void run() = 0;
  std::atomic<InboxTask*> next{nullptr};
};

template <class F>
struct InboxFn final : InboxTask {
  explicit InboxFn(F&& f) : fn(std::move(f)) {}
  void run() override { fn(); }
  F fn;
};

class Inbox {
 public:
  Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;
  // Deletes tasks never run (a loop destroyed with posts pending).
  ~Inbox();

  // Any thread. Takes ownership of `task`.
  void push(InboxTask* task);
  // Owner only. The oldest task, or null when empty (or a push is half done).
  InboxTask* pop();
  // Owner only; see the invariant on half-done pushes.
  bool empty() const;

 private:
  struct Stub final : InboxTask {
    void run() override {}
  };
  std::atomic<InboxTask*> head_;  // producers push here
  InboxTask* tail_;               // the consumer pops here
  Stub stub_;
};

}  // namespace ringo::reactor
