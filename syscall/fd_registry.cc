// See fd_registry.h for the design and its invariants.
#include "syscall/fd_registry.h"

#include <execinfo.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "syscall/log.h"

namespace ringo::sys::fd_registry {
namespace {

constexpr int kChunkBits = 10;
constexpr int kChunkSize = 1 << kChunkBits;
// fs.nr_open tops out at 2^30 on Linux, so no fd number reaches kMaxFd.
constexpr int kMaxFd = 1 << 30;
constexpr int kMaxChunks = kMaxFd / kChunkSize;
constexpr int kStackDepth = 16;
constexpr OwnerTag kTagBlock = 1024;

// Every field is an atomic read by snapshot() while its owner may rewrite it;
// all are relaxed, ordered by the tag (see the seqlock note in fd_registry.h).
// One cache line each: the kernel hands neighbouring numbers to threads that
// create at the same time, and 48-byte records made them share lines (false
// sharing measured at 28 -> 90 ns per pair on two threads).
struct alignas(64) Record {
  std::atomic<OwnerTag> tag{0};
  std::atomic<const char*> file{nullptr};
  std::atomic<const char*> function{nullptr};
  std::atomic<const char*> owner{nullptr};
  std::atomic<std::int64_t> created_ns{0};
  std::atomic<std::uint32_t> line{0};
  std::atomic<std::uint8_t> kind{0};
  std::atomic<std::uint8_t> stack_depth{0};
};

struct Stacks {
  std::atomic<void*> frames[kChunkSize][kStackDepth];
};

struct Chunk {
  Record records[kChunkSize];
  std::atomic<Stacks*> stacks{nullptr};
};

std::atomic<Chunk*> g_chunks[kMaxChunks];
std::atomic<int> g_chunk_high{0};  // chunks [0, g_chunk_high) may be allocated
std::atomic<OwnerTag> g_next_tag_block{1};
std::atomic<std::uint64_t> g_double_closes{0};
std::atomic<std::uint64_t> g_foreign_closes{0};
std::atomic<std::uint64_t> g_releases{0};
std::atomic<bool> g_capture_stacks{false};

FdViolationPolicy initial_policy() {
  if (const char* v = std::getenv("RINGO_FD_POLICY")) {
    if (std::strcmp(v, "abort") == 0) return FdViolationPolicy::abort;
    if (std::strcmp(v, "count") == 0) return FdViolationPolicy::count;
  }
#ifdef NDEBUG
  return FdViolationPolicy::count;
#else
  return FdViolationPolicy::abort;
#endif
}
std::atomic<FdViolationPolicy> g_policy{initial_policy()};

struct TagBlock {
  OwnerTag next = 0;
  OwnerTag end = 0;
};
thread_local TagBlock t_tags;

OwnerTag next_tag() {
  if (t_tags.next == t_tags.end) {
    t_tags.next = g_next_tag_block.fetch_add(kTagBlock, std::memory_order_relaxed);
    t_tags.end = t_tags.next + kTagBlock;
  }
  return t_tags.next++;
}

std::int64_t now_ns() {
  // The coarse clock is a vDSO read of the last tick: ~4 ms resolution is
  // plenty for an fd's age and it is several times cheaper than the fine one.
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Chunk* chunk_for(int fd, bool create) {
  const int index = fd >> kChunkBits;
  Chunk* c = g_chunks[index].load(std::memory_order_acquire);
  if (c || !create) return c;
  auto* fresh = new Chunk;
  if (g_chunks[index].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
    c = fresh;
    int high = g_chunk_high.load(std::memory_order_relaxed);
    while (high <= index &&
           !g_chunk_high.compare_exchange_weak(high, index + 1, std::memory_order_release)) {
    }
  } else {
    delete fresh;  // another thread won the race; `c` holds its chunk
  }
  return c;
}

Record* record_for(int fd, bool create) {
  if (fd < 0 || fd >= kMaxFd) return nullptr;
  Chunk* c = chunk_for(fd, create);
  return c ? &c->records[fd & (kChunkSize - 1)] : nullptr;
}

void capture_stack(Chunk* c, int slot, Record& r) {
  Stacks* s = c->stacks.load(std::memory_order_acquire);
  if (!s) {
    auto* fresh = new Stacks;
    if (c->stacks.compare_exchange_strong(s, fresh, std::memory_order_acq_rel)) {
      s = fresh;
    } else {
      delete fresh;
    }
  }
  void* frames[kStackDepth + 2];
  int n = ::backtrace(frames, kStackDepth + 2);
  // Drop on_create and its caller in syscall/ (the wrapper): start at the user.
  const int skip = std::min(n, 2);
  const int depth = n - skip;
  for (int i = 0; i < depth; ++i) s->frames[slot][i].store(frames[skip + i], std::memory_order_relaxed);
  r.stack_depth.store(static_cast<std::uint8_t>(depth), std::memory_order_relaxed);
}

std::string site_text(const char* file, const char* function, std::uint64_t line) {
  return fmt::format("{}:{} ({})", file ? file : "?", line, function ? function : "?");
}

// Reports a violation and applies the policy. Never closes anything.
void violation(const char* what, int fd, OwnerTag tag, OwnerTag current, Site site) {
  std::string msg;
  if (current == 0) {
    g_double_closes.fetch_add(1, std::memory_order_relaxed);
    msg = fmt::format("fd registry: {} of fd {} at {}: the fd has no live owner "
                      "(double close, or a descriptor the framework never owned); not closed",
                      what, fd, site_text(site.file, site.function, site.line));
  } else {
    g_foreign_closes.fetch_add(1, std::memory_order_relaxed);
    std::string owner = "?";
    for (const FdInfo& info : snapshot()) {
      if (info.fd == fd) owner = describe(info);
    }
    msg = fmt::format("fd registry: {} of fd {} at {} by tag {:#x}, which does not own it; "
                      "owner is [{}]; not closed",
                      what, fd, site_text(site.file, site.function, site.line), tag, owner);
  }
  if (g_policy.load(std::memory_order_relaxed) == FdViolationPolicy::abort) {
    std::fprintf(stderr, "ringo: broken invariant: %s\n", msg.c_str());
    std::abort();
  }
  log(LogLevel::error, "{}", msg);
}

bool unregister(const char* what, int fd, OwnerTag tag, Site site) {
  Record* r = record_for(fd, false);
  OwnerTag expected = tag;
  if (r && tag != 0 && r->tag.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
    return true;
  }
  violation(what, fd, tag, r ? expected : 0, site);
  return false;
}

}  // namespace

OwnerTag on_create_impl(int fd, FdKind kind, Site site, const char* owner) noexcept {
  Record* r = record_for(fd, true);
  if (!r) {
    std::fprintf(stderr, "ringo: broken invariant: fd %d outside the registry's range\n", fd);
    std::abort();
  }
  const OwnerTag tag = next_tag();
  // Seqlock-style: snapshot() rereads the tag after the fields; the fence
  // keeps these stores from being seen before the old tag's removal.
  std::atomic_thread_fence(std::memory_order_release);
  r->kind.store(static_cast<std::uint8_t>(kind), std::memory_order_relaxed);
  r->file.store(site.file, std::memory_order_relaxed);
  r->function.store(site.function, std::memory_order_relaxed);
  r->line.store(static_cast<std::uint32_t>(site.line), std::memory_order_relaxed);
  r->owner.store(owner, std::memory_order_relaxed);
  r->created_ns.store(now_ns(), std::memory_order_relaxed);
  if (g_capture_stacks.load(std::memory_order_relaxed)) {
    capture_stack(chunk_for(fd, false), fd & (kChunkSize - 1), *r);
  } else {
    r->stack_depth.store(0, std::memory_order_relaxed);
  }
  const OwnerTag old = r->tag.exchange(tag, std::memory_order_release);
  if (old != 0) {
    // The previous owner's descriptor was closed without the registry (a raw
    // close(2) somewhere) and the kernel reused the number.
    g_foreign_closes.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::error,
        "fd registry: fd {} created at {} was still registered to tag {:#x}: "
        "its previous owner's descriptor was closed behind the registry's back",
        fd, site_text(site.file, site.function, site.line), old);
  }
  return tag;
}

bool on_close_impl(int fd, OwnerTag tag, Site site) noexcept {
  return unregister("close", fd, tag, site);
}

bool on_release_impl(int fd, OwnerTag tag, Site site) noexcept {
  if (!unregister("release", fd, tag, site)) return false;
  g_releases.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void set_kind(int fd, OwnerTag tag, FdKind kind) noexcept {
  Record* r = record_for(fd, false);
  if (r && r->tag.load(std::memory_order_acquire) == tag) {
    r->kind.store(static_cast<std::uint8_t>(kind), std::memory_order_relaxed);
  }
}

void set_owner(int fd, OwnerTag tag, const char* owner) noexcept {
  Record* r = record_for(fd, false);
  if (r && r->tag.load(std::memory_order_acquire) == tag) {
    r->owner.store(owner, std::memory_order_relaxed);
  }
}

OwnerTag tag_of(int fd) noexcept {
  Record* r = record_for(fd, false);
  return r ? r->tag.load(std::memory_order_acquire) : 0;
}

std::vector<FdInfo> snapshot() {
  std::vector<FdInfo> out;
  const std::int64_t now = now_ns();
  const int chunks = g_chunk_high.load(std::memory_order_acquire);
  for (int ci = 0; ci < chunks; ++ci) {
    Chunk* c = g_chunks[ci].load(std::memory_order_acquire);
    if (!c) continue;
    for (int i = 0; i < kChunkSize; ++i) {
      Record& r = c->records[i];
      for (int attempt = 0; attempt < 4; ++attempt) {
        const OwnerTag before = r.tag.load(std::memory_order_acquire);
        if (before == 0) break;
        FdInfo info;
        info.fd = ci * kChunkSize + i;
        info.tag = before;
        info.kind = static_cast<FdKind>(r.kind.load(std::memory_order_relaxed));
        info.site = {r.file.load(std::memory_order_relaxed), r.function.load(std::memory_order_relaxed),
                     r.line.load(std::memory_order_relaxed)};
        info.owner = r.owner.load(std::memory_order_relaxed);
        info.age = std::chrono::nanoseconds(now - r.created_ns.load(std::memory_order_relaxed));
        const int depth = r.stack_depth.load(std::memory_order_relaxed);
        if (Stacks* s = c->stacks.load(std::memory_order_acquire); s && depth > 0) {
          for (int f = 0; f < depth; ++f) info.stack.push_back(s->frames[i][f].load(std::memory_order_relaxed));
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (r.tag.load(std::memory_order_relaxed) == before) {
          out.push_back(std::move(info));
          break;
        }
      }
    }
  }
  return out;
}

FdKindCounts counts() {
  FdKindCounts out;
  for (const FdInfo& info : snapshot()) {
    ++out.by_kind[static_cast<std::size_t>(info.kind)];
    ++out.total;
  }
  return out;
}

FdRegistryStats stats() {
  return {g_double_closes.load(std::memory_order_relaxed), g_foreign_closes.load(std::memory_order_relaxed),
          g_releases.load(std::memory_order_relaxed)};
}

std::string describe(const FdInfo& info) {
  std::string out = fmt::format("fd {} {} age {:.3f}s", info.fd, to_string(info.kind),
                                std::chrono::duration<double>(info.age).count());
  if (info.owner) fmt::format_to(std::back_inserter(out), " owner {}", info.owner);
  fmt::format_to(std::back_inserter(out), " created at {}",
                 site_text(info.site.file, info.site.function, info.site.line));
  if (!info.stack.empty()) {
    char** symbols = ::backtrace_symbols(info.stack.data(), static_cast<int>(info.stack.size()));
    for (std::size_t i = 0; i < info.stack.size(); ++i) {
      fmt::format_to(std::back_inserter(out), "\n    #{} {}", i, symbols ? symbols[i] : "?");
    }
    std::free(symbols);
  }
  return out;
}

std::string format(const std::vector<FdInfo>& fds) {
  std::vector<const FdInfo*> sorted;
  for (const FdInfo& f : fds) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(), [](const FdInfo* a, const FdInfo* b) { return a->age > b->age; });
  std::string out;
  for (const FdInfo* f : sorted) {
    out += describe(*f);
    out += '\n';
  }
  return out;
}

void set_policy(FdViolationPolicy p) { g_policy.store(p, std::memory_order_relaxed); }
FdViolationPolicy policy() { return g_policy.load(std::memory_order_relaxed); }
void set_capture_stacks(bool on) { g_capture_stacks.store(on, std::memory_order_relaxed); }
bool capture_stacks() { return g_capture_stacks.load(std::memory_order_relaxed); }

}  // namespace ringo::sys::fd_registry

namespace ringo::sys {

std::string_view to_string(FdKind kind) {
  static constexpr std::string_view kNames[kFdKindCount] = {
      "socket", "listener", "epoll", "eventfd", "timerfd", "signalfd", "pipe", "file", "io_uring", "other"};
  const auto i = static_cast<std::size_t>(kind);
  return i < kFdKindCount ? kNames[i] : "invalid";
}

}  // namespace ringo::sys
