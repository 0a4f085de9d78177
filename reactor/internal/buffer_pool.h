// The buffers of recv_pooled (operation.h), shared by both backends: one
// anonymous mapping cut into `count` buffers of `buffer_size` bytes, which of
// them are lent to callers, and a userspace free list for the epoll backend.
// io_uring's free list is the kernel's provided buffer ring
// (uring_buf_ring.cc), so that backend leaves this one's unused.
//
// Why a pool pays: a plain recv posted on an idle connection pins its buffer
// for as long as the connection stays quiet, so 10k idle connections hold
// 10k buffers. A pooled recv takes a buffer only when data arrives (io_uring:
// the kernel selects from the ring at arrival; epoll: the backend takes one
// just before the recv syscall and puts it back on EAGAIN), so memory follows
// the connections that are sending, not the ones that are open.
//
// Invariants:
//  - A buffer is in exactly one place: free (this free list, or io_uring's
//    ring), inside one recv syscall (epoll, between take and put/lend), or
//    lent to a caller (lent_ set) until reclaim. reclaim() checks the id, the
//    address and the lent bit, and aborts on a buffer released twice or not
//    from this pool: io_uring would otherwise hand one buffer to two recvs.
//  - Loop thread only, like the backend that owns it. The memory lives until
//    the pool is destroyed (the backend's destructor, after every op is done).
//
// Rejected: one malloc per buffer (scattered pages; one mapping is one
// munmap and page-aligned for any size); MAP_POPULATE or mlock (the point is
// to touch only the buffers that are used; LIFO reuse keeps those few hot);
// a refcounted, self-releasing PooledBuffer (see operation.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "reactor/backend.h"
#include "reactor/operation.h"
#include "syscall/result.h"

namespace ringo::reactor::internal {

class BufferPool {
 public:
  static constexpr std::uint32_t kMaxBuffers = 32768;           // io_uring's buffer ring limit (2^15)
  static constexpr std::uint32_t kMaxBufferSize = 0x7ffff000;  // MAX_RW_COUNT: the largest transfer

  // Checks options.pool_buffers / pool_buffer_size and maps the memory; null
  // when pool_buffers is 0. `free_list`: keep a userspace free list (epoll).
  static sys::Result<std::unique_ptr<BufferPool>> create(const BackendOptions& options, bool free_list);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  std::uint32_t count() const { return count_; }
  std::uint32_t buffer_size() const { return size_; }
  std::byte* data(std::uint16_t id) const { return base_ + std::size_t{id} * size_; }

  // The free list (free_list pools only). LIFO: the buffer used last, the one
  // most likely still in cache, goes out first. take: false when empty.
  bool take(std::uint16_t& id);
  void put(std::uint16_t id);

  // Hands buffer `id`, holding `len` (> 0) bytes, to a caller.
  PooledBuffer lend(std::uint16_t id, std::uint32_t len);
  // Takes a lent (non-empty) buffer back, aborting if it is not one; its id.
  std::uint16_t reclaim(const PooledBuffer& buffer);
  // reclaim, then put: the epoll backend's release_buffer. Empty: no-op.
  void release(const PooledBuffer& buffer) {
    if (!buffer.empty()) put(reclaim(buffer));
  }

  // "pool 256 x 4 KiB"
  std::string describe() const;

 private:
  BufferPool(std::byte* base, std::size_t mapped, std::uint32_t count, std::uint32_t size, bool free_list);

  std::byte* base_;
  std::size_t mapped_;
  std::uint32_t count_;
  std::uint32_t size_;
  std::vector<bool> lent_;
  std::vector<std::uint16_t> free_;
};

// Aborts: release_buffer of a non-empty buffer on a backend without a pool
// (none was ever lent); `backend` names it in the message.
[[noreturn]] void release_without_pool(const char* backend);

// Backend::release_buffer for a backend whose free list is `pool` (null: none).
inline void release(BufferPool* pool, const PooledBuffer& buffer, const char* backend) {
  if (pool != nullptr) return pool->release(buffer);
  if (!buffer.empty()) release_without_pool(backend);
}

}  // namespace ringo::reactor::internal
