// Stack mapping and the per-thread StackPool (policy and costs: stack.h).
#include "fiber/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

// ASan keeps shadow bytes for stack memory: frames that never returned (a
// finished fiber's trampoline) leave their redzones poisoned. A stack handed
// to another fiber, or unmapped and mapped again at the same address, must
// start clean.
#if defined(__SANITIZE_ADDRESS__)
#define RINGO_STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGO_STACK_ASAN 1
#endif
#endif
#if defined(RINGO_STACK_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace ringo::fiber {
namespace {

constexpr const char* kMapHint =
    "cannot map a fiber stack: each takes 2 mappings (vm.max_map_count? RLIMIT_AS?)";

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

void unpoison(std::byte* from, std::size_t size) {
#if defined(RINGO_STACK_ASAN)
  __asan_unpoison_memory_region(from, size);
#else
  (void)from;
  (void)size;
#endif
}

// Huge pages would turn "one touched page" into 2 MiB resident; only a usable
// area of 2 MiB or more can hold one, so only those pay the extra syscall.
void refuse_huge_pages(std::byte* from, std::size_t size) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  if (size >= kHugePage) (void)::madvise(from, size, MADV_NOHUGEPAGE);  // advice only
}

}  // namespace

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

sys::Result<Stack> Stack::map(std::size_t usable_size) {
  const std::size_t page = page_size();
  if (usable_size == 0 || usable_size > kMaxStackSize) {
    return sys::Error("fiber stack", EINVAL, "size", "must be 1 byte to 1 GiB (rounded up to whole pages)");
  }
  const std::size_t size = round_up(usable_size, page);
  const std::size_t mapped = size + page;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    sys::Error e = sys::Error::from_errno("mmap", "fiber stack");
    return e.is(ENOMEM) ? e.with_hint(kMapHint) : e;
  }
  auto* base = static_cast<std::byte*>(p);
  if (::mprotect(base, page, PROT_NONE) != 0) {
    // Splitting the mapping in two needs a second VMA: at vm.max_map_count
    // this is where ENOMEM shows up.
    sys::Error e = sys::Error::from_errno("mprotect", "fiber stack guard page");
    ::munmap(base, mapped);
    return e.is(ENOMEM) ? e.with_hint(kMapHint) : e;
  }
  refuse_huge_pages(base + page, size);
  return Stack(base, page, size);
}

void Stack::unmap() {
  unpoison(bottom(), size_);
  ::munmap(base_, guard_size_ + size_);  // fails only for bad arguments: ours are not
  base_ = nullptr;
  guard_size_ = size_ = 0;
}

namespace {

// Calls visit(resident) for each page of [bottom, bottom + len) until it
// returns false; one mincore per 256 pages.
template <class Visit>
sys::Result<void> for_each_page(const std::byte* bottom, std::size_t len, Visit&& visit) {
  const std::size_t page = page_size();
  unsigned char vec[256];
  for (std::size_t off = 0; off < len; off += sizeof(vec) * page) {
    const std::size_t chunk = std::min(len - off, sizeof(vec) * page);
    if (::mincore(const_cast<std::byte*>(bottom) + off, chunk, vec) != 0) {
      return sys::Error::from_errno("mincore", "fiber stack");
    }
    for (std::size_t i = 0; i < (chunk + page - 1) / page; ++i) {
      if (!visit((vec[i] & 1) != 0)) return sys::ok();
    }
  }
  return sys::ok();
}

}  // namespace

sys::Result<std::size_t> Stack::resident_bytes() const {
  std::size_t resident = 0;
  sys::Result<void> r = for_each_page(bottom(), size_, [&](bool in) {
    resident += in ? page_size() : 0;
    return true;
  });
  if (!r.ok()) return r.error();
  return resident;
}

sys::Result<bool> Stack::resident_below(std::size_t from_top) const {
  if (from_top >= size_) return false;
  bool found = false;
  sys::Result<void> r = for_each_page(bottom(), size_ - from_top, [&](bool in) {
    found = in;
    return !in;
  });
  if (!r.ok()) return r.error();
  return found;
}

sys::Result<void> Stack::discard_below(std::size_t keep) {
  if (keep >= size_) return sys::ok();
  const std::size_t len = (size_ - keep) / page_size() * page_size();
  if (len == 0) return sys::ok();
  if (::madvise(bottom(), len, MADV_DONTNEED) != 0) return sys::Error::from_errno("madvise", "fiber stack");
  return sys::ok();
}

StackPool::StackPool(const Options& options)
    : options_(options), stack_size_(options.stack_size) {
  // An invalid size stays as it is: acquire() reports it (Stack::map's Error).
  if (stack_size_ != 0 && stack_size_ <= kMaxStackSize) stack_size_ = round_up(stack_size_, page_size());
  free_.reserve(std::min<std::size_t>(options_.max_pooled, 1024));
}

sys::Result<Stack> StackPool::acquire() {
  if (!free_.empty()) {
    Stack s = std::move(free_.back());
    free_.pop_back();
    checked_ = std::min(checked_, free_.size());
    ++stats_.reuses;
    return s;
  }
  sys::Result<Stack> s = Stack::map(stack_size_);
  if (s.ok()) ++stats_.maps;
  return s;
}

void StackPool::release(Stack stack) {
  if (stack.empty()) return;
  if (stack.size() != stack_size_ || free_.size() >= options_.max_pooled) {
    ++stats_.unmaps;
    return;  // `stack` unmaps itself
  }
  unpoison(stack.bottom(), stack.size());
  free_.push_back(std::move(stack));
  if (free_.size() - checked_ > options_.keep_warm) {
    check_and_trim(free_[checked_]);
    ++checked_;
  }
}

// The oldest warm stack sinks into the checked part: give back what it used
// beyond trim_threshold. Failures only cost memory, so they are not reported.
void StackPool::check_and_trim(Stack& stack) {
  ++stats_.trim_checks;
  sys::Result<bool> deep = stack.resident_below(options_.trim_threshold);
  if (!deep.ok() || !*deep) return;
  ++stats_.trims;
  (void)stack.discard_below(options_.trim_keep);
}

void StackPool::clear() {
  stats_.unmaps += free_.size();
  free_.clear();
  checked_ = 0;
}

StackPool::Stats StackPool::stats() const {
  Stats s = stats_;
  s.pooled = free_.size();
  return s;
}

StackPool& StackPool::this_thread() {
  thread_local StackPool pool;
  return pool;
}

}  // namespace ringo::fiber
