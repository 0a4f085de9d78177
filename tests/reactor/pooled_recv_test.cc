// recv_pooled (reactor/operation.h) on both backends: a recv into a buffer
// the backend picks from its pool (BackendOptions::pool_buffers) only when
// data arrives, lent in Completion::buffer and given back with
// Loop::release_buffer. io_uring does it with a provided buffer ring, epoll
// with a userspace free list; both must give the same answers: the bytes in a
// pooled buffer, the pool's buffer size whatever `len` says, idle connections
// holding no buffer (100 posted on a pool of 16), -ENOBUFS once the pool is
// empty and success again after a release, 0 without a buffer at end of
// stream, untaken buffers returning by themselves, cancel and deadline
// consuming nothing, -EOPNOTSUPP without a pool, bad pool options refused at
// creation, and a double release aborting.
//
// The fixture is BackendTest's (submit/cancel/wait with the contract's
// checks, nothing left in flight at the end) with a loop that has a pool: 16 x
// 4 KiB unless a test makes another with make_loop. A pool of one buffer
// makes "nothing was consumed" checkable: a lost buffer fails the next recv.
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "reactor/loop.h"
#include "reactor/operation.h"
#include "tests/reactor/backend_test_util.h"

namespace ringo::reactor {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::must;
using testing::Op;
using testing::put;
using testing::tcp_pair;

// An Op that also records what each completion's buffer held, and takes the
// buffer (take_buffer) or leaves it in the Completion for the backend.
struct PoolOp : Op {
  std::vector<std::string> bytes;  // per completion: the buffer's bytes ("" without one)
  std::vector<bool> had_buffer;    // per completion
  std::vector<PooledBuffer> taken;
  bool take_buffer = true;

  PoolOp() { on_complete = &PoolOp::record_pooled; }

  static void record_pooled(Operation& op, Completion& c) {
    PoolOp& self = static_cast<PoolOp&>(*static_cast<Op*>(op.user));
    self.had_buffer.push_back(!c.buffer.empty());
    self.bytes.push_back(c.buffer.empty() ? std::string()
                                          : std::string(reinterpret_cast<const char*>(c.buffer.data()),
                                                        c.buffer.size()));
    if (!c.buffer.empty()) {
      EXPECT_EQ(static_cast<std::int32_t>(c.buffer.size()), c.result);
    }
    if (self.take_buffer && !c.buffer.empty()) {
      self.taken.push_back(std::move(c.buffer));
      EXPECT_TRUE(c.buffer.empty()) << "moving the buffer out must take it";
    }
    Op::record(op, c);
  }
};

class PooledRecvTest : public testing::BackendTest {
 protected:
  void SetUp() override { make_loop(16); }

  // Replaces the loop by one of the parameter's backend with this pool.
  void make_loop(std::uint32_t buffers, std::uint32_t size = 4096) {
    loop_.reset();
    auto created = Loop::create(options(buffers, size));
    ASSERT_TRUE(created.ok()) << created.error().message();
    loop_ = std::move(*created);
    ASSERT_EQ(loop_->backend_kind(), GetParam());
  }
  Loop::Options options(std::uint32_t buffers, std::uint32_t size) const {
    Loop::Options o;
    o.backend = GetParam();
    o.backend_options.pool_buffers = buffers;
    o.backend_options.pool_buffer_size = size;
    return o;
  }
  void release(PoolOp& op) {
    for (const PooledBuffer& b : op.taken) loop_->release_buffer(b);
    op.taken.clear();
  }
  // A recv_pooled on `fd`, run to completion: its result.
  std::int32_t recv_once(PoolOp& op, int fd) {
    prepare_recv_pooled(op, fd);
    return finish(op);
  }
};

TEST_P(PooledRecvTest, DataArrivesInAPooledBuffer) {
  testing::TcpPair pair = tcp_pair();
  PoolOp op;
  prepare_recv_pooled(op, pair.server.get());
  submit(op);
  settle();
  EXPECT_EQ(op.count(), 0u) << "completed before any data arrived";
  put(pair.client.get(), "hello, pool");
  ASSERT_TRUE(wait(op));
  settle();
  ASSERT_EQ(op.count(), 1u);
  EXPECT_EQ(op.result(), 11);
  ASSERT_EQ(op.taken.size(), 1u);
  EXPECT_EQ(op.bytes[0], "hello, pool");
  EXPECT_EQ(op.taken[0].size(), 11u);
  EXPECT_LT(op.taken[0].id(), 16u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(op.taken[0].bytes().data()), op.taken[0].bytes().size()),
            "hello, pool");
  release(op);
}

TEST_P(PooledRecvTest, ThePoolsBufferSizeAppliesWhateverLenSays) {
  make_loop(4, 8);
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  put(pair.second.get(), "0123456789abcdefXYZ");
  for (const char* expected : {"01234567", "89abcdef", "XYZ"}) {
    PoolOp op;
    prepare_recv_pooled(op, pair.first.get());
    op.len = 1000;  // ignored
    EXPECT_EQ(finish(op), static_cast<std::int32_t>(std::string(expected).size()));
    ASSERT_EQ(op.bytes.size(), 1u);
    EXPECT_EQ(op.bytes[0], expected);
    release(op);
  }
}

TEST_P(PooledRecvTest, IdleConnectionsHoldNoBufferAndAnEmptyPoolSaysENOBUFS) {
  constexpr std::size_t kConnections = 100;
  constexpr std::size_t kPool = 16;  // the fixture's
  std::vector<sys::SocketPair> pairs;
  std::vector<std::unique_ptr<PoolOp>> ops;
  for (std::size_t i = 0; i < kConnections; ++i) {
    pairs.push_back(must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK)));
    ops.push_back(std::make_unique<PoolOp>());
    prepare_recv_pooled(*ops[i], pairs[i].first.get());
    submit(*ops[i]);
  }
  settle();
  // Had the 100 posted recvs taken buffers, 84 would have failed by now.
  for (std::size_t i = 0; i < kConnections; ++i) EXPECT_EQ(ops[i]->count(), 0u) << "connection " << i;

  for (std::size_t i = 0; i < kPool; ++i) put(pairs[i].second.get(), "conn " + std::to_string(i));
  ASSERT_TRUE(run_until([&] {
    for (std::size_t i = 0; i < kPool; ++i) {
      if (ops[i]->pending) return false;
    }
    return true;
  }));
  for (std::size_t i = 0; i < kPool; ++i) {
    EXPECT_GT(ops[i]->result(), 0) << "connection " << i;
    ASSERT_EQ(ops[i]->taken.size(), 1u) << "connection " << i;
    EXPECT_EQ(ops[i]->bytes[0], "conn " + std::to_string(i));
  }

  // Every buffer is lent: the next connection that gets data fails, and so
  // does a recv_pooled submitted now, data or not, as io_uring answers.
  put(pairs[kPool].second.get(), "late");
  ASSERT_TRUE(wait(*ops[kPool]));
  EXPECT_EQ(ops[kPool]->result(), -ENOBUFS);
  EXPECT_FALSE(ops[kPool]->had_buffer.back());
  auto idle = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  PoolOp extra;
  EXPECT_EQ(recv_once(extra, idle.first.get()), -ENOBUFS);
  settle();
  for (std::size_t i = kPool + 1; i < kConnections; ++i) EXPECT_EQ(ops[i]->count(), 0u) << "connection " << i;

  // One release, and the data that waited in the socket comes through.
  release(*ops[0]);
  EXPECT_EQ(recv_once(*ops[kPool], pairs[kPool].first.get()), 4);
  EXPECT_EQ(ops[kPool]->bytes.back(), "late");
  for (std::size_t i = 0; i <= kPool; ++i) release(*ops[i]);

  for (std::size_t i = kPool + 1; i < kConnections; ++i) cancel(*ops[i]);
  ASSERT_TRUE(run_until([&] {
    for (const auto& op : ops) {
      if (op->pending) return false;
    }
    return true;
  }));
  for (std::size_t i = kPool + 1; i < kConnections; ++i) EXPECT_EQ(ops[i]->result(), -ECANCELED);
}

TEST_P(PooledRecvTest, EndOfStreamCompletesZeroWithoutABuffer) {
  make_loop(1);
  auto closed = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  must(closed.second.close());
  PoolOp eof;
  EXPECT_EQ(recv_once(eof, closed.first.get()), 0);
  ASSERT_EQ(eof.had_buffer.size(), 1u);
  EXPECT_FALSE(eof.had_buffer[0]);
  // The pool's one buffer is still there.
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  put(pair.second.get(), "after");
  PoolOp op;
  EXPECT_EQ(recv_once(op, pair.first.get()), 5);
  EXPECT_EQ(op.bytes[0], "after");
  release(op);
}

TEST_P(PooledRecvTest, ABufferTheCompletionDoesNotTakeGoesBackToThePool) {
  make_loop(1);
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  for (const char* text : {"first", "second", "third"}) {
    PoolOp op;
    op.take_buffer = false;
    put(pair.second.get(), text);
    EXPECT_EQ(recv_once(op, pair.first.get()), static_cast<std::int32_t>(std::string(text).size()));
    ASSERT_EQ(op.bytes.size(), 1u);
    EXPECT_EQ(op.bytes[0], text);
    EXPECT_TRUE(op.taken.empty());
  }
}

TEST_P(PooledRecvTest, CancelCompletesECANCELEDAndConsumesNoBuffer) {
  make_loop(1);
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  for (int round = 0; round < 3; ++round) {
    PoolOp op;
    prepare_recv_pooled(op, pair.first.get());
    submit(op);
    settle();
    cancel(op);
    ASSERT_TRUE(wait(op));
    EXPECT_EQ(op.result(), -ECANCELED);
    EXPECT_FALSE(op.had_buffer.back());
  }
  put(pair.second.get(), "x");
  PoolOp op;
  EXPECT_EQ(recv_once(op, pair.first.get()), 1);
  release(op);
}

TEST_P(PooledRecvTest, DeadlineCompletesETIMEDOUTAndWorksWithData) {
  make_loop(1);
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  PoolOp late;
  prepare_recv_pooled(late, pair.first.get());
  late.deadline = 20ms;
  const std::int64_t start = now_ns();
  EXPECT_EQ(finish(late), -ETIMEDOUT);
  EXPECT_GE(now_ns() - start, 20'000'000);
  EXPECT_FALSE(late.had_buffer.back());

  // In time: the data, in the one buffer (the timeout took none), and no
  // stray completion when the deadline would have passed.
  PoolOp op;
  prepare_recv_pooled(op, pair.first.get());
  op.deadline = 50ms;
  submit(op);
  put(pair.second.get(), "on time");
  ASSERT_TRUE(wait(op));
  run_for(80ms);
  ASSERT_EQ(op.count(), 1u);
  EXPECT_EQ(op.result(), 7);
  EXPECT_EQ(op.bytes[0], "on time");
  release(op);
}

TEST_P(PooledRecvTest, WithoutAPoolItCompletesEOPNOTSUPP) {
  make_loop(0);
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  put(pair.second.get(), "data");
  PoolOp op;
  EXPECT_EQ(recv_once(op, pair.first.get()), -EOPNOTSUPP);
  EXPECT_FALSE(op.had_buffer.back());
  loop_->release_buffer(PooledBuffer());  // an empty buffer: a no-op, pool or not
}

TEST_P(PooledRecvTest, BadPoolOptionsFailCreationWithAClearError) {
  for (std::uint32_t buffers : {3u, 100u, 65536u, 1u << 31}) {
    auto created = Loop::create(options(buffers, 4096));
    ASSERT_FALSE(created.ok()) << buffers << " buffers accepted";
    EXPECT_THAT(created.error().message(), HasSubstr("pool_buffers")) << buffers;
    EXPECT_THAT(created.error().message(), HasSubstr("power of two")) << buffers;
  }
  for (std::uint32_t size : {0u, 0x80000000u}) {
    auto created = Loop::create(options(16, size));
    ASSERT_FALSE(created.ok()) << size << "-byte buffers accepted";
    EXPECT_THAT(created.error().message(), HasSubstr("pool_buffer_size")) << size;
  }
  make_loop(32768, 64);  // the largest pool io_uring's buffer ring takes
  make_loop(1, 1);
}

TEST_P(PooledRecvTest, DescribeNamesThePool) {
  make_loop(256, 4096);
  EXPECT_THAT(loop_->backend().describe(), HasSubstr("pool 256 x 4 KiB"));
  make_loop(0);
  EXPECT_THAT(loop_->backend().describe(), ::testing::Not(HasSubstr("pool")));
}

using PooledRecvDeathTest = PooledRecvTest;

TEST_P(PooledRecvDeathTest, ReleasingABufferTwiceAborts) {
  auto pair = must(sys::socketpair(SOCK_STREAM | SOCK_NONBLOCK));
  put(pair.second.get(), "twice");
  PoolOp op;
  EXPECT_EQ(recv_once(op, pair.first.get()), 5);
  ASSERT_EQ(op.taken.size(), 1u);
  loop_->release_buffer(op.taken[0]);
  EXPECT_DEATH(loop_->release_buffer(op.taken[0]), "released twice");
}

INSTANTIATE_TEST_SUITE_P(Backends, PooledRecvTest, testing::kAllBackends, testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, PooledRecvDeathTest, testing::kAllBackends, testing::backend_name);

}  // namespace
}  // namespace ringo::reactor
