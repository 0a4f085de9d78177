// Stack mapping and the per-thread StackPool (policy and costs: stack.h).
#include "fiber/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
    "cannot map a fiber stack: before Linux 6.13 each takes 2 mappings (vm.max_map_count? RLIMIT_AS?)";

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

namespace {

// MADV_GUARD_INSTALL (Linux 6.13): a guard page as a page-table marker, no
// VMA of its own; older headers do not name it.
constexpr int kMadvGuardInstall = 102;

// 0: not tried yet; 1: guard markers work; 2: the kernel refused them (EINVAL:
// before 6.13), so guards are PROT_NONE pages (a VMA each).
std::atomic<int> g_guard_mode{0};

sys::Result<void> install_guard(std::byte* page_addr, std::size_t page) {
  int mode = g_guard_mode.load(std::memory_order_relaxed);
  if (mode != 2) {
    if (::madvise(page_addr, page, kMadvGuardInstall) == 0) {
      if (mode == 0) g_guard_mode.store(1, std::memory_order_relaxed);
      return {};
    }
    if (errno != EINVAL) return sys::Error::from_errno("madvise", "fiber stack guard page");
    g_guard_mode.store(2, std::memory_order_relaxed);
  }
  // Splitting the mapping needs VMAs: at vm.max_map_count this is where
  // ENOMEM shows up.
  if (::mprotect(page_addr, page, PROT_NONE) != 0) {
    sys::Error e = sys::Error::from_errno("mprotect", "fiber stack guard page");
    return e.is(ENOMEM) ? e.with_hint(kMapHint) : e;
  }
  return {};
}

}  // namespace

bool Stack::guards_are_markers() {
  if (g_guard_mode.load(std::memory_order_relaxed) == 0) (void)Stack::map(page_size());  // decides it
  return g_guard_mode.load(std::memory_order_relaxed) == 1;
}

sys::Result<Stack> Stack::map(std::size_t usable_size) {
  sys::Result<std::vector<Stack>> one = map_many(usable_size, 1);
  if (!one.ok()) return one.error();
  return std::move(one->front());
}

sys::Result<std::vector<Stack>> Stack::map_many(std::size_t usable_size, std::size_t count) {
  const std::size_t page = page_size();
  if (usable_size == 0 || usable_size > kMaxStackSize) {
    return sys::Error("fiber stack", EINVAL, "size", "must be 1 byte to 1 GiB (rounded up to whole pages)");
  }
  if (count == 0 || count > 1024) return sys::Error("fiber stack", EINVAL, "count", "must be 1 to 1024");
  const std::size_t size = round_up(usable_size, page);
  const std::size_t each = size + page;
  void* p = ::mmap(nullptr, each * count, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    sys::Error e = sys::Error::from_errno("mmap", "fiber stack");
    return e.is(ENOMEM) ? e.with_hint(kMapHint) : e;
  }
  auto* base = static_cast<std::byte*>(p);
  std::vector<Stack> stacks;
  stacks.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::byte* b = base + i * each;
    if (sys::Result<void> g = install_guard(b, page); !g.ok()) {
      // The stacks made so far unmap their own part; the rest goes here.
      ::munmap(b, each * (count - i));
      return g.error();
    }
    refuse_huge_pages(b + page, size);
    stacks.push_back(Stack(b, page, size));
  }
  return stacks;
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
  if (free_.empty() && options_.map_batch > 1 && stack_size_ != 0 && stack_size_ <= kMaxStackSize) {
    // One mmap for a batch: one is returned, the others wait in the pool,
    // untouched (nothing resident, nothing to trim).
    sys::Result<std::vector<Stack>> batch = Stack::map_many(stack_size_, options_.map_batch);
    if (!batch.ok()) return batch.error();
    stats_.maps += batch->size();
    Stack first = std::move(batch->front());
    for (auto it = batch->rbegin(); it + 1 != batch->rend(); ++it) free_.push_back(std::move(*it));
    checked_ = free_.size();
    return first;
  }
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
}

std::size_t StackPool::trim() {
  std::size_t checked = 0;
  for (; free_.size() - checked_ > options_.keep_warm; ++checked_, ++checked) check_and_trim(free_[checked_]);
  return checked;
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
