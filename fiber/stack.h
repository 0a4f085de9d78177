// Stack and StackPool: the memory a fiber runs on.
//
// A Stack is one private anonymous mapping: a PROT_NONE guard page at the low
// end, then the usable area; the fiber's stack pointer starts at top() and
// grows down towards the guard. Running off the bottom faults in the guard
// page, which the overflow handler (fiber/internal/overflow.h) reports by the
// fiber's name before aborting.
//
// Invariants:
//  - Lazily touched: nothing writes to stack memory when it is mapped
//    (MAP_NORESERVE, no memset, no "stack painting"), so a fiber's resident
//    memory is the pages it really used, normally one or two.
//  - Sizes are whole pages: the usable size is rounded up; the guard is one
//    page. A size of 0 or above 1 GiB is an EINVAL Error, not a mapping.
//  - A Stack is move-only and unmaps once (on destruction).
//  - Guards are page-table markers (MADV_GUARD_INSTALL, Linux 6.13+) where
//    the kernel has them: a stack then needs no mapping of its own, and the
//    pool maps map_batch (32) stacks with one mmap, so a burst of spawns pays
//    one madvise per stack instead of an mmap and an mprotect (and 100,000
//    fibers stay far below vm.max_map_count). On older kernels each guard is
//    a PROT_NONE page: two kernel VMAs per stack (their protections differ,
//    so neighbours never merge), and 100,000 stacks need vm.max_map_count
//    above ~200,000 (Debian's default is 65,530); the ENOMEM Error says so.
//  - A StackPool belongs to one thread (no locking). It keeps at most
//    max_pooled freed stacks, LIFO (the most recently used stack is the one
//    most likely still in cache and TLB), all of the pool's one size.
//
// Giving memory back (the pool's trim policy), and its cost:
//  - The pool is a LIFO whose top keep_warm (16) stacks are "warm": pushed as
//    they are, touched pages and all, with no syscall. Spawn/finish in the
//    steady state (the pool's size moving up and down by a few) only ever
//    touches the warm top: a release costs a vector push, nothing more.
//  - trim() (the fiber scheduler calls it at most every 100 ms, off the
//    spawn path) lets every warm stack beyond the top keep_warm sink into the
//    "checked" part below them, checking each once on the way: one mincore()
//    over the part deeper than trim_threshold (32 KiB below its top; ~1 us on
//    our test VM); only if some page there is resident, one
//    madvise(MADV_DONTNEED) of everything below the top trim_keep bytes
//    (16 KiB; ~3 us with 12 pages to drop, plus a TLB flush, plus the page
//    faults when a fiber touches them again). Only bursts (many fibers
//    finishing together) leave stacks to sink, and each is checked once per
//    trim() at most: a workload that spawns and joins 100 fibers at a time
//    would otherwise re-check 84 stacks per round (measured: 1.1 us per
//    spawn+join when release itself checked, against ~0.2 us).
//  - So after a trim() at most keep_warm pooled stacks hold more than
//    trim_threshold each: with the defaults a pool pins at most
//    16 x 128 KiB + 112 x 32 KiB = 5.5 MiB between trims, and typically
//    (fibers that used a page or two) under 1 MiB.
//    "Deeper than 32 KiB" reads residency, not the deepest frame: a frame that
//    skipped pages it never touched costs nothing and is not counted.
//  - Beyond max_pooled, a released stack is unmapped. (Mapping a stack and
//    unmapping it again, mmap + mprotect + munmap, costs ~9.6 us here: the
//    300x that the pool saves a spawn.)
//
// Rejected alternatives:
//  - malloc'd stacks: no guard page (overflow silently corrupts the heap) and
//    the allocator's memory is touched and not given back page by page.
//  - MAP_GROWSDOWN: the kernel's stack-guard-gap rules make it fragile, and it
//    grows only on faults near the stack pointer.
//  - madvise(MADV_DONTNEED) on every release: a syscall and page-table walk per
//    fiber exit (0.6 us with nothing to give back, 3 us with 12 pages, plus
//    TLB shootdown IPIs in a threaded process) for stacks that mostly used one
//    page: 20-100x the 33 ns that create + run + finish costs with the pool.
//  - Painting stacks with a pattern to measure their depth: touches every page,
//    the opposite of lazy.
//  - One shared pool with a lock: fibers are spawned and finish on their own
//    loop's thread; a lock (and cache-line bouncing) would buy nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "syscall/result.h"

namespace ringo::fiber {

// Default usable stack size: large enough for ordinary code (a 16 KiB
// fmt::memory_buffer on the stack, a few levels of parser recursion).
inline constexpr std::size_t kDefaultStackSize = 128 * 1024;
// The largest stack size accepted: more is address space nobody means to ask for.
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;

// The system page size (cached).
std::size_t page_size();

class Stack {
 public:
  // Maps a stack with at least `usable_size` usable bytes (rounded up to whole
  // pages) above one guard page.
  static sys::Result<Stack> map(std::size_t usable_size = kDefaultStackSize);
  // `count` (1 to 1024) such stacks from one mmap, each with its own guard
  // and unmapped on its own (the kernel splits the mapping).
  static sys::Result<std::vector<Stack>> map_many(std::size_t usable_size, std::size_t count);
  // Whether guards are page-table markers (MADV_GUARD_INSTALL, Linux 6.13+;
  // a stack is then part of one mapping with its neighbours) rather than
  // PROT_NONE pages (two mappings per stack).
  static bool guards_are_markers();

  Stack() = default;  // empty: no mapping
  // Moves are inline: a pooled spawn moves a Stack four or five times.
  Stack(Stack&& other) noexcept
      : base_(std::exchange(other.base_, nullptr)),
        guard_size_(std::exchange(other.guard_size_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  Stack& operator=(Stack&& other) noexcept {
    if (this != &other) {
      if (base_ != nullptr) unmap();
      base_ = std::exchange(other.base_, nullptr);
      guard_size_ = std::exchange(other.guard_size_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  ~Stack() {
    if (base_ != nullptr) unmap();
  }

  bool empty() const { return base_ == nullptr; }
  // The usable area is [bottom(), top()); the stack grows down from top().
  std::byte* top() const { return base_ + guard_size_ + size_; }
  std::byte* bottom() const { return base_ + guard_size_; }
  std::size_t size() const { return size_; }
  // The guard page(s): [guard(), guard() + guard_size()) == [.., bottom()).
  std::byte* guard() const { return base_; }
  std::size_t guard_size() const { return guard_size_; }

  // Usable bytes resident in memory now (mincore: one syscall; for tests,
  // dumps and the pool's trim check, not for hot paths).
  sys::Result<std::size_t> resident_bytes() const;
  // Whether any page of [bottom(), top() - from_top) is resident.
  sys::Result<bool> resident_below(std::size_t from_top) const;
  // Gives back to the kernel every page of [bottom(), top() - keep) (MADV_DONTNEED:
  // the next touch maps a fresh zero page).
  sys::Result<void> discard_below(std::size_t keep);

 private:
  Stack(std::byte* base, std::size_t guard_size, std::size_t size)
      : base_(base), guard_size_(guard_size), size_(size) {}
  void unmap();

  std::byte* base_ = nullptr;
  std::size_t guard_size_ = 0;
  std::size_t size_ = 0;
};

class StackPool {
 public:
  struct Options {
    std::size_t stack_size = kDefaultStackSize;  // usable bytes, rounded up to pages
    std::size_t max_pooled = 128;                // freed stacks kept; beyond, unmapped
    std::size_t keep_warm = 16;                  // pooled stacks left unchecked (the LIFO's top)
    std::size_t trim_threshold = 32 * 1024;      // a stack deeper than this gets trimmed...
    std::size_t trim_keep = 16 * 1024;           // ...down to this many bytes below its top
    std::size_t map_batch = 32;                  // stacks mapped at once when the pool is empty
  };
  struct Stats {
    std::uint64_t maps = 0;         // stacks mapped (mmap + mprotect)
    std::uint64_t unmaps = 0;       // stacks unmapped (pool full, wrong size, or clear())
    std::uint64_t reuses = 0;       // acquire() served from the pool
    std::uint64_t trim_checks = 0;  // mincore calls on release
    std::uint64_t trims = 0;        // madvise(MADV_DONTNEED) calls on release
    std::size_t pooled = 0;         // stacks in the pool now
  };

  StackPool() : StackPool(Options{}) {}
  explicit StackPool(const Options& options);
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() = default;  // the pooled Stacks unmap themselves

  // A stack of stack_size(): the most recently released one, else a new one
  // (with map_batch - 1 more put in the pool).
  sys::Result<Stack> acquire();
  // Takes a stack back: pooled (warm, unchecked) or unmapped.
  void release(Stack stack);
  // Checks the warm stacks beyond the top keep_warm and trims the deep ones
  // (see the head comment); returns how many were checked.
  std::size_t trim();
  // Unmaps every pooled stack.
  void clear();

  std::size_t stack_size() const { return stack_size_; }
  const Options& options() const { return options_; }
  Stats stats() const;

  // The calling thread's pool (default options), destroyed at thread exit.
  static StackPool& this_thread();

 private:
  void check_and_trim(Stack& stack);

  Options options_;
  std::size_t stack_size_;  // options_.stack_size rounded up to pages
  std::vector<Stack> free_;  // LIFO: back() is the next acquire()
  std::size_t checked_ = 0;  // free_[0, checked_) were trim-checked (trim())
  Stats stats_;
};

}  // namespace ringo::fiber
