// recv_pooled on io_uring: the pool's buffers (buffer_pool.h) in a provided
// buffer ring (IORING_REGISTER_PBUF_RING, 5.19). A recv_pooled is
// IORING_OP_RECV with IOSQE_BUFFER_SELECT: the kernel picks a buffer from the
// ring only when data is there to copy; a recv that finds the socket empty
// gives its buffer back before it arms its poll, so a posted recv on an idle
// connection holds nothing. That is where the ring pays: thousands of idle
// connections cost a ring entry each instead of a pinned buffer each.
//
// Invariants:
//  - Every buffer is in the ring (free), in a completion being delivered, or
//    lent to a caller (BufferPool's lent bit). The ring has `count` entries
//    and there are `count` buffers, so adding one at the tail never overwrites
//    an entry the kernel has not consumed.
//  - Only the loop's thread writes the tail (io_uring_buf_ring_advance is a
//    store-release, which the kernel's load-acquire pairs with).
//  - On kernel 6.18 an empty ring fails the recv -ENOBUFS at once, whether
//    data is there or not, and end of stream comes back without a buffer; a
//    CQE that does carry one with a result <= 0 returns it here, so the
//    contract's "0: no buffer" holds on every kernel.
//  - The ring memory is ours (mmap, page aligned); liburing 2.3 has no
//    io_uring_setup_buf_ring. Unregister comes before munmap, and both after
//    shutdown has completed every op (~UringBackend).
//
// Rejected: classic IORING_OP_PROVIDE_BUFFERS (an SQE per returned buffer,
// and a CQE to ignore); multishot recv (one op per connection that keeps
// taking buffers while the caller is busy: backpressure moves out of the
// caller's hands; later, for streams that want it); incremental consumption
// (IOU_PBUF_RING_INC, 6.12: partial buffers complicate release for a gain
// only large buffers see); registered (pinned) buffers, which defeat the point.
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "reactor/internal/uring_backend.h"

namespace ringo::reactor::uring {

sys::Result<std::unique_ptr<BufRing>> BufRing::create(io_uring& ring, std::unique_ptr<internal::BufferPool> pool) {
  const std::uint32_t count = pool->count();
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t bytes = (count * sizeof(io_uring_buf) + page - 1) / page * page;
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return sys::Error::from_errno("mmap", "io_uring buffer ring");
  auto* br = static_cast<io_uring_buf_ring*>(mem);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
  reg.ring_entries = count;
  reg.bgid = kBufGroup;
  if (const int rc = io_uring_register_buf_ring(&ring, &reg, 0); rc < 0) {
    (void)::munmap(mem, bytes);
    return sys::Error("io_uring_register", -rc, "IORING_REGISTER_PBUF_RING",
                      -rc == EINVAL ? "kernel before 5.19, or a pool the kernel refuses" : nullptr);
  }
  io_uring_buf_ring_init(br);
  const int mask = io_uring_buf_ring_mask(count);
  for (std::uint32_t id = 0; id < count; ++id) {
    io_uring_buf_ring_add(br, pool->data(static_cast<std::uint16_t>(id)), pool->buffer_size(),
                          static_cast<std::uint16_t>(id), mask, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(br, static_cast<int>(count));
  return std::unique_ptr<BufRing>(new BufRing(ring, br, bytes, std::move(pool)));
}

BufRing::BufRing(io_uring& ring, io_uring_buf_ring* br, std::size_t br_bytes,
                 std::unique_ptr<internal::BufferPool> pool)
    : ring_(ring), br_(br), br_bytes_(br_bytes), pool_(std::move(pool)) {}

BufRing::~BufRing() {
  (void)io_uring_unregister_buf_ring(&ring_, kBufGroup);
  (void)::munmap(br_, br_bytes_);
}

PooledBuffer BufRing::take(std::int32_t result, std::uint32_t cqe_flags) {
  const auto id = static_cast<std::uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
  if (result > 0) return pool_->lend(id, static_cast<std::uint32_t>(result));
  provide(id);
  return {};
}

void BufRing::release(const PooledBuffer& buffer) {
  if (!buffer.empty()) provide(pool_->reclaim(buffer));
}

void BufRing::provide(std::uint16_t id) {
  io_uring_buf_ring_add(br_, pool_->data(id), pool_->buffer_size(), id,
                        io_uring_buf_ring_mask(pool_->count()), 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace ringo::reactor::uring
