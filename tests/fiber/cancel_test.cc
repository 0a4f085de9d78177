// Cancellation (fiber/cancel.h): CancelToken, CancelSource and CancelCallback
// need no loop: plain tests. Timing assertions are lower bounds only.
#include "fiber/cancel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "reactor/clock.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;

// ---- CancelToken / CancelSource

TEST(CancelTokenTest, DefaultTokenIsNeverCancelledAndHasNoDeadline) {
  const CancelToken t;
  EXPECT_FALSE(t.cancelled());
  EXPECT_FALSE(t.cancellable());
  EXPECT_FALSE(t.has_deadline());
  EXPECT_EQ(t.deadline_ns(), CancelToken::kNoDeadline);
  EXPECT_EQ(t.error(), 0);
  EXPECT_EQ(t.error(CancelToken::kNoDeadline - 1), 0);
}

TEST(CancelTokenTest, CancelReturnsTrueOnceAndCopiesShareTheState) {
  CancelSource src;
  const CancelToken t = src.token();
  const CancelToken copy = t;  // NOLINT(performance-unnecessary-copy-initialization): a copy on purpose
  CancelSource src_copy = src;
  EXPECT_TRUE(t.cancellable());
  EXPECT_FALSE(src.cancelled());
  EXPECT_FALSE(t.cancelled());
  EXPECT_TRUE(src_copy.cancel());
  EXPECT_FALSE(src.cancel());
  EXPECT_FALSE(src_copy.cancel());
  EXPECT_TRUE(src.cancelled());
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(copy.cancelled());
  EXPECT_EQ(t.error(), ECANCELED);
  EXPECT_TRUE(src.token().cancelled());  // a token made after the cancel
}

TEST(CancelTokenTest, ChildIsCancelledWithItsParentNotViceVersa) {
  CancelSource parent;
  CancelSource child(parent.token());
  CancelSource grandchild(child.token());
  CancelSource sibling(parent.token());

  EXPECT_TRUE(sibling.cancel());
  EXPECT_FALSE(parent.cancelled());
  EXPECT_FALSE(child.cancelled());
  EXPECT_FALSE(grandchild.cancelled());

  EXPECT_TRUE(child.cancel());
  EXPECT_FALSE(parent.cancelled());
  EXPECT_TRUE(grandchild.cancelled());
  EXPECT_TRUE(grandchild.token().cancelled());

  CancelSource other_child(parent.token());
  CancelSource other_grandchild(other_child.token());
  EXPECT_TRUE(parent.cancel());
  EXPECT_TRUE(other_child.cancelled());
  EXPECT_TRUE(other_grandchild.token().cancelled());
  EXPECT_FALSE(other_child.cancel());  // already cancelled through the parent
}

TEST(CancelTokenTest, ChildOfAnAlreadyCancelledParentStartsCancelled) {
  CancelSource parent;
  parent.cancel();
  CancelSource child(parent.token());
  EXPECT_TRUE(child.cancelled());
  EXPECT_TRUE(child.token().cancelled());
  EXPECT_EQ(child.token().error(), ECANCELED);
  CancelSource grandchild(child.token());
  EXPECT_TRUE(grandchild.cancelled());
}

TEST(CancelTokenTest, ChildOfADefaultTokenIsARoot) {
  CancelSource child{CancelToken()};
  EXPECT_FALSE(child.cancelled());
  EXPECT_TRUE(child.token().cancellable());
  EXPECT_FALSE(child.token().has_deadline());
  EXPECT_TRUE(child.cancel());
}

TEST(CancelTokenTest, WithDeadlineTakesTheEarlier) {
  CancelSource src;
  const CancelToken t = src.token();
  EXPECT_EQ(t.with_deadline_ns(1000).deadline_ns(), 1000);
  EXPECT_EQ(t.with_deadline_ns(1000).with_deadline_ns(2000).deadline_ns(), 1000);
  EXPECT_EQ(t.with_deadline_ns(2000).with_deadline_ns(1000).deadline_ns(), 1000);
  EXPECT_EQ(t.with_deadline_ns(CancelToken::kNoDeadline).deadline_ns(), CancelToken::kNoDeadline);

  const auto soon = std::chrono::steady_clock::now() + 1s;
  const std::int64_t soon_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(soon.time_since_epoch()).count();
  EXPECT_EQ(t.with_deadline(soon).deadline_ns(), soon_ns);
  EXPECT_EQ(t.with_deadline(soon).with_timeout(1h).deadline_ns(), soon_ns);
  EXPECT_LT(t.with_deadline(soon).with_timeout(1ms).deadline_ns(), soon_ns);

  // Derived tokens keep the cancellation.
  const CancelToken derived = t.with_deadline_ns(1000);
  src.cancel();
  EXPECT_TRUE(derived.cancelled());

  // A child source's tokens carry the parent token's deadline, and can only
  // shorten it.
  CancelSource child(t.with_deadline_ns(5000));
  EXPECT_EQ(child.token().deadline_ns(), 5000);
  EXPECT_EQ(child.token().with_deadline_ns(9000).deadline_ns(), 5000);
}

TEST(CancelTokenTest, WithTimeoutSaturatesInsteadOfOverflowing) {
  const CancelToken t;
  const std::int64_t before = reactor::now_ns();
  const CancelToken in_a_second = t.with_timeout(1s);
  const std::int64_t after = reactor::now_ns();
  EXPECT_GE(in_a_second.deadline_ns(), before + 1'000'000'000);
  EXPECT_LE(in_a_second.deadline_ns(), after + 1'000'000'000);

  for (const auto huge : {std::chrono::nanoseconds::max(), std::chrono::nanoseconds::max() - 1ns,
                          std::chrono::nanoseconds(CancelToken::kNoDeadline - reactor::now_ns() + 1)}) {
    const CancelToken never = t.with_timeout(huge);
    EXPECT_EQ(never.deadline_ns(), CancelToken::kNoDeadline) << huge.count();
    EXPECT_FALSE(never.has_deadline());
    EXPECT_EQ(never.error(), 0);
  }
  // 100 years: far, but representable: a real deadline in the future.
  const CancelToken century = t.with_timeout(std::chrono::hours(24 * 365 * 100));
  EXPECT_TRUE(century.has_deadline());
  EXPECT_GT(century.deadline_ns(), reactor::now_ns());
  EXPECT_EQ(century.error(), 0);

  // Already passed.
  EXPECT_EQ(t.with_timeout(-1s).error(), ETIMEDOUT);
  EXPECT_EQ(t.with_timeout(0ns).error(), ETIMEDOUT);
}

TEST(CancelTokenTest, ErrorReportsCancelledBeforeTimedOut) {
  CancelSource src;
  const CancelToken t = src.token().with_deadline_ns(1000);
  EXPECT_EQ(t.error(999), 0);
  EXPECT_EQ(t.error(1000), ETIMEDOUT);
  EXPECT_EQ(t.error(), ETIMEDOUT);  // the reactor clock is far past 1 µs
  src.cancel();
  EXPECT_EQ(t.error(999), ECANCELED);
  EXPECT_EQ(t.error(1000), ECANCELED);
  EXPECT_EQ(t.error(), ECANCELED);
  EXPECT_EQ(src.token().error(), ECANCELED);  // no deadline at all
}

TEST(CancelTokenTest, TokenOutlivingItsSourceStillSeesTheParentsCancel) {
  CancelSource parent;
  CancelToken orphan;
  {
    CancelSource child(parent.token());
    orphan = child.token().with_timeout(1h);
  }
  EXPECT_FALSE(orphan.cancelled());
  int fired = 0;
  CancelCallback cb(orphan, [](void* p) { ++*static_cast<int*>(p); }, &fired);
  EXPECT_EQ(fired, 0);
  parent.cancel();
  EXPECT_TRUE(orphan.cancelled());
  EXPECT_EQ(orphan.error(), ECANCELED);
  EXPECT_EQ(fired, 1);
}

// ---- CancelCallback

void count_up(void* p) { static_cast<std::atomic<int>*>(p)->fetch_add(1); }

TEST(CancelCallbackTest, RunsOnceWhenCancelled) {
  CancelSource src;
  std::atomic<int> fired{0};
  CancelCallback cb(src.token(), &count_up, &fired);
  EXPECT_EQ(fired.load(), 0);
  EXPECT_TRUE(src.cancel());
  EXPECT_EQ(fired.load(), 1);  // before cancel() returned
  EXPECT_FALSE(src.cancel());
  EXPECT_EQ(fired.load(), 1);
}

TEST(CancelCallbackTest, RunsAtOnceWhenAlreadyCancelled) {
  CancelSource src;
  src.cancel();
  std::atomic<int> fired{0};
  {
    CancelCallback cb(src.token(), &count_up, &fired);
    EXPECT_EQ(fired.load(), 1);
    src.cancel();
    EXPECT_EQ(fired.load(), 1);
  }
  EXPECT_EQ(fired.load(), 1);
}

TEST(CancelCallbackTest, RunsThroughAChildToken) {
  CancelSource parent;
  CancelSource child(parent.token());
  std::atomic<int> fired{0};
  CancelCallback cb(child.token().with_timeout(1h), &count_up, &fired);
  parent.cancel();
  EXPECT_EQ(fired.load(), 1);
}

TEST(CancelCallbackTest, DefaultTokenRegistersNothing) {
  std::atomic<int> fired{0};
  CancelCallback cb(CancelToken().with_timeout(-1s), &count_up, &fired);  // even with a passed deadline
  EXPECT_EQ(fired.load(), 0);
}

TEST(CancelCallbackTest, NeverRunsAfterDestruction) {
  CancelSource src;
  std::atomic<int> fired{0};
  { CancelCallback cb(src.token(), &count_up, &fired); }
  src.cancel();
  EXPECT_EQ(fired.load(), 0);
}

TEST(CancelCallbackTest, RunsOnTheCancellingThread) {
  CancelSource src;
  struct Seen {
    std::atomic<int> calls{0};
    std::thread::id thread;
  } seen;
  CancelCallback cb(
      src.token(),
      [](void* p) {
        auto* s = static_cast<Seen*>(p);
        s->thread = std::this_thread::get_id();
        s->calls.fetch_add(1);
      },
      &seen);
  std::thread canceller([&src] { src.cancel(); });
  const std::thread::id canceller_id = canceller.get_id();
  canceller.join();
  EXPECT_EQ(seen.calls.load(), 1);
  EXPECT_EQ(seen.thread, canceller_id);
  EXPECT_NE(seen.thread, std::this_thread::get_id());
}

TEST(CancelCallbackTest, DestructionWaitsForTheCallbackRunningOnAnotherThread) {
  CancelSource src;
  struct Slow {
    std::atomic<bool> entered{false};
    std::atomic<bool> finished{false};
  };
  auto slow = std::make_unique<Slow>();
  auto cb = std::make_unique<CancelCallback>(
      src.token(),
      [](void* p) {
        auto* s = static_cast<Slow*>(p);
        s->entered.store(true);
        std::this_thread::sleep_for(50ms);
        s->finished.store(true);
      },
      slow.get());
  std::thread canceller([&src] { src.cancel(); });
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!slow->entered.load() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  ASSERT_TRUE(slow->entered.load());
  const auto t0 = std::chrono::steady_clock::now();
  cb.reset();  // must wait until the callback returned
  EXPECT_TRUE(slow->finished.load());
  EXPECT_GT(std::chrono::steady_clock::now() - t0, 1ms);  // it did wait (most of the 50 ms)
  slow.reset();  // what the callback touched may go now
  canceller.join();
}

}  // namespace
}  // namespace ringo
