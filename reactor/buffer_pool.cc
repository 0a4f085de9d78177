// See reactor/internal/buffer_pool.h: recv_pooled's buffers, shared by the
// io_uring and epoll backends.
#include "reactor/internal/buffer_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace ringo::reactor::internal {
namespace {

[[noreturn]] void misuse(const std::string& what) {
  std::fprintf(stderr, "ringo: broken invariant: buffer pool: %s\n", what.c_str());
  std::abort();
}

std::string size_text(std::uint32_t bytes) {
  if (bytes % (1u << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes % (1u << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} B", bytes);
}

}  // namespace

sys::Result<std::unique_ptr<BufferPool>> BufferPool::create(const BackendOptions& options, bool free_list) {
  const std::uint32_t count = options.pool_buffers;
  const std::uint32_t size = options.pool_buffer_size;
  if (count == 0) return std::unique_ptr<BufferPool>();
  if (count > kMaxBuffers || (count & (count - 1)) != 0) {
    return sys::Error("BackendOptions", EINVAL, "pool_buffers",
                      "must be 0 (no pool) or a power of two up to 32768 (io_uring's buffer ring limit)");
  }
  if (size == 0 || size > kMaxBufferSize) {
    return sys::Error("BackendOptions", EINVAL, "pool_buffer_size",
                      "must be between 1 and 2 GiB - 4 KiB (the kernel's largest transfer)");
  }
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t bytes = (std::size_t{count} * size + page - 1) / page * page;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    return sys::Error::from_errno("mmap", "buffer pool").with_hint("lower pool_buffers or pool_buffer_size");
  }
  return std::unique_ptr<BufferPool>(new BufferPool(static_cast<std::byte*>(base), bytes, count, size, free_list));
}

BufferPool::BufferPool(std::byte* base, std::size_t mapped, std::uint32_t count, std::uint32_t size,
                       bool free_list)
    : base_(base), mapped_(mapped), count_(count), size_(size), lent_(count, false) {
  if (!free_list) return;
  free_.reserve(count);
  for (std::uint32_t id = count; id > 0; --id) free_.push_back(static_cast<std::uint16_t>(id - 1));
}

BufferPool::~BufferPool() { (void)::munmap(base_, mapped_); }

bool BufferPool::take(std::uint16_t& id) {
  if (free_.empty()) return false;
  id = free_.back();
  free_.pop_back();
  return true;
}

void BufferPool::put(std::uint16_t id) { free_.push_back(id); }

PooledBuffer BufferPool::lend(std::uint16_t id, std::uint32_t len) {
  if (id >= count_ || lent_[id]) misuse(fmt::format("buffer {} lent while already lent (or out of range)", id));
  lent_[id] = true;
  return PooledBuffer(data(id), len, id);
}

std::uint16_t BufferPool::reclaim(const PooledBuffer& buffer) {
  const std::uint16_t id = buffer.id();
  if (id >= count_ || buffer.data() != data(id) || !lent_[id]) {
    misuse(fmt::format("release_buffer of buffer {} at {}: not lent out (released twice, or not from this "
                       "backend's pool)",
                       id, static_cast<const void*>(buffer.data())));
  }
  lent_[id] = false;
  return id;
}

std::string BufferPool::describe() const { return fmt::format("pool {} x {}", count_, size_text(size_)); }

void release_without_pool(const char* backend) {
  misuse(fmt::format("release_buffer on the {} backend, which has no pool (BackendOptions::pool_buffers is 0)",
                     backend));
}

}  // namespace ringo::reactor::internal
