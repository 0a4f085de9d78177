// See inbox.h. The algorithm is Dmitry Vyukov's intrusive MPSC node-based queue.
#include "reactor/inbox.h"

namespace ringo::reactor {

Inbox::Inbox() : head_(&stub_), tail_(&stub_) {}

Inbox::~Inbox() {
  while (InboxTask* t = pop()) delete t;
}

void Inbox::push(InboxTask* task) {
  task->next.store(nullptr, std::memory_order_relaxed);
  // seq_cst: pairs with the loop's store to its sleeping flag (Loop::post).
  InboxTask* prev = head_.exchange(task, std::memory_order_seq_cst);
  prev->next.store(task, std::memory_order_release);
}

InboxTask* Inbox::pop() {
  InboxTask* tail = tail_;
  InboxTask* next = tail->next.load(std::memory_order_acquire);
  if (tail == &stub_) {
    if (!next) return nullptr;
    tail_ = next;
    tail = next;
    next = next->next.load(std::memory_order_acquire);
  }
  if (next) {
    tail_ = next;
    return tail;
  }
  if (tail != head_.load(std::memory_order_acquire)) return nullptr;  // a push is half done
  push(&stub_);
  next = tail->next.load(std::memory_order_acquire);
  if (next) {
    tail_ = next;
    return tail;
  }
  return nullptr;
}

bool Inbox::empty() const {
  return tail_ == head_.load(std::memory_order_seq_cst) && !tail_->next.load(std::memory_order_acquire) &&
         tail_ == &stub_;
}

}  // namespace ringo::reactor
