// Channels and select, on both backends: unbuffered and buffered hand-offs and
// FIFO order, try_send/try_recv, close (drain, then closed; send and a second
// close throw; blocked parties woken), range-for, move-only values; fibers of
// one loop, of two loops, plain threads and any mix, with counts checked;
// cancellation and deadlines of send, recv and select (the value neither lost
// nor delivered twice, checked by draining), including races against peers;
// select: ready/blocking/default/timeout, fairness, the same channel twice,
// closed channels, never-ready cases; the abort on a loop's thread.
#include "fiber/channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo {
namespace {

using namespace std::chrono_literals;

class ChannelTest : public fiber::testing::FiberLoopTest {};

// Receives until closed; returns the values in order.
template <class T>
std::vector<T> drain(Channel<T>& ch) {
  std::vector<T> out;
  for (T v : ch) out.push_back(v);
  return out;
}

// ---- hand-offs, order, try_*

TEST_P(ChannelTest, UnbufferedPingPong) {
  run_main([] {
    Channel<int> ping, pong;
    auto echo = go([&] {
      while (auto v = ping.recv().value()) ASSERT_TRUE(pong.send(*v + 1).ok());
    });
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(ping.send(i).ok());
      EXPECT_EQ(pong.recv().value(), i + 1);
    }
    ping.close();
    echo.join();
  });
}

TEST_P(ChannelTest, UnbufferedSendCompletesOnlyWhenReceived) {
  run_main([] {
    Channel<std::string> ch;
    bool sent = false;
    auto sender = go([&] {
      ASSERT_TRUE(ch.send("hello").ok());
      sent = true;
    });
    for (int i = 0; i < 3; ++i) this_fiber::yield();
    EXPECT_FALSE(sent);
    EXPECT_EQ(ch.size(), 0u);
    EXPECT_EQ(ch.recv().value(), "hello");
    sender.join();
    EXPECT_TRUE(sent);
  });
}

TEST_P(ChannelTest, BufferedIsFifoAndSendersWaitOnlyWhenFull) {
  run_main([] {
    Channel<int> ch(3);
    EXPECT_EQ(ch.capacity(), 3u);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(ch.try_send(i).ok());
    EXPECT_EQ(ch.try_send(99).error().errnum(), EAGAIN);  // full
    bool sent = false;
    auto sender = go([&] {
      ASSERT_TRUE(ch.send(3).ok());  // waits: full
      sent = true;
    });
    this_fiber::yield();
    EXPECT_FALSE(sent);
    EXPECT_EQ(ch.recv().value(), 0);  // frees a place: the waiting 3 goes to the tail
    sender.join();
    EXPECT_EQ(ch.size(), 3u);
    ch.close();
    EXPECT_EQ(drain(ch), (std::vector<int>{1, 2, 3}));
  });
}

TEST_P(ChannelTest, TryOpsNeverWait) {
  run_main([] {
    Channel<int> ch;
    EXPECT_EQ(ch.try_send(1).error().errnum(), EAGAIN);  // nobody receives
    EXPECT_EQ(ch.try_recv().error().errnum(), EAGAIN);
    auto receiver = go([&] { return *ch.recv().value(); });
    this_fiber::yield();  // it waits now
    int v = 7;
    ASSERT_TRUE(ch.try_send(v).ok());
    EXPECT_EQ(receiver.join(), 7);
    auto sender = go([&] { ASSERT_TRUE(ch.send(8).ok()); });
    this_fiber::yield();
    EXPECT_EQ(ch.try_recv().value(), 8);
    sender.join();
  });
}

TEST_P(ChannelTest, MoveOnlyValuesAndAFailedSendKeepsItsValue) {
  run_main([] {
    Channel<std::unique_ptr<int>> ch(1);
    auto p = std::make_unique<int>(5);
    ASSERT_TRUE(ch.try_send(std::move(p)).ok());
    auto q = std::make_unique<int>(6);
    EXPECT_FALSE(ch.try_send(std::move(q)).ok());
    ASSERT_NE(q, nullptr);  // not moved from
    EXPECT_EQ(ch.send(std::move(q), CancelToken().with_timeout(1ms)).error().errnum(), ETIMEDOUT);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(**ch.recv().value(), 5);
  });
}

// ---- close

TEST_P(ChannelTest, CloseDrainsThenReportsClosed) {
  run_main([] {
    Channel<int> ch(4);
    ASSERT_TRUE(ch.send(1).ok());
    ASSERT_TRUE(ch.send(2).ok());
    ch.close();
    EXPECT_TRUE(ch.closed());
    EXPECT_EQ(ch.recv().value(), 1);
    EXPECT_EQ(ch.try_recv().value(), 2);
    EXPECT_EQ(ch.recv().value(), std::nullopt);
    EXPECT_EQ(ch.try_recv().value(), std::nullopt);  // closed, not EAGAIN
  });
}

TEST_P(ChannelTest, SendOnClosedAndCloseTwiceThrow) {
  run_main([] {
    Channel<int> ch(1);
    ch.close();
    EXPECT_THROW((void)ch.send(1), ChannelClosed);
    EXPECT_THROW((void)ch.try_send(1), ChannelClosed);
    try {
      ch.close();
      ADD_FAILURE() << "a second close() did not throw";
    } catch (const ChannelClosed& e) {  // a std::logic_error
      EXPECT_STREQ(e.what(), "close of closed channel");
    }
  });
}

TEST_P(ChannelTest, CloseWakesBlockedReceiversAndSenders) {
  run_main([] {
    Channel<int> in, out;
    std::vector<JoinHandle<bool>> parties;
    for (int i = 0; i < 3; ++i) parties.push_back(go([&] { return !in.recv().value().has_value(); }));
    for (int i = 0; i < 2; ++i) {
      parties.push_back(go([&] {
        try {
          (void)out.send(1);
          return false;
        } catch (const ChannelClosed&) {
          return true;
        }
      }));
    }
    this_fiber::yield();  // all five wait now
    in.close();
    out.close();
    for (auto& p : parties) EXPECT_TRUE(p.join());
  });
}

TEST_P(ChannelTest, RangeForStopsWhenClosed) {
  run_main([] {
    Channel<int> ch;
    auto producer = go([&] {
      for (int i = 0; i < 5; ++i) ASSERT_TRUE(ch.send(i).ok());
      ch.close();
    });
    EXPECT_EQ(drain(ch), (std::vector<int>{0, 1, 2, 3, 4}));
    producer.join();
  });
}

// ---- across loops and threads

TEST_P(ChannelTest, AcrossLoops) {
  auto group = start_group(1);
  constexpr int kN = 2000;
  for (std::size_t capacity : {0u, 8u}) {
    run_main([&] {
      Channel<int> to_far(capacity), back(capacity);
      auto far = go_on(group->loop(0), [&] {
        long sum = 0;
        while (auto v = to_far.recv().value()) {
          sum += *v;
          if (*v % 100 == 0) {
            EXPECT_TRUE(back.send(*v).ok());  // ping-pong now and then
          }
        }
        return sum;
      });
      for (int i = 1; i <= kN; ++i) {
        ASSERT_TRUE(to_far.send(i).ok());
        if (i % 100 == 0) {
          EXPECT_EQ(back.recv().value(), i);
        }
      }
      to_far.close();
      EXPECT_EQ(far.join(), long{kN} * (kN + 1) / 2);
    });
  }
  group->stop();
}

TEST_P(ChannelTest, PlainThreadsWithFibersAndWithEachOther) {
  constexpr int kN = 1000;
  Channel<int> to_fiber, to_thread(4), between_threads;
  std::thread producer([&] {
    for (int i = 0; i < kN; ++i) ASSERT_TRUE(to_fiber.send(i).ok());  // blocks: a thread
    to_fiber.close();
  });
  std::thread consumer([&] {
    int expected = 0;
    for (int v : to_thread) EXPECT_EQ(v, expected++);
    EXPECT_EQ(expected, kN);
    for (int i = 0; i < kN; ++i) ASSERT_TRUE(between_threads.send(i).ok());
    between_threads.close();
  });
  std::thread last([&] { EXPECT_EQ(drain(between_threads).size(), std::size_t{kN}); });
  run_main([&] {
    for (int v : to_fiber) ASSERT_TRUE(to_thread.send(v).ok());
    to_thread.close();
  });
  producer.join();
  consumer.join();
  last.join();
}

TEST_P(ChannelTest, ManyProducersAndConsumersLoseAndDuplicateNothing) {
  auto group = start_group(1);
  constexpr int kPerProducer = 500, kFiberProducers = 3, kThreadProducers = 2;
  constexpr int kTotal = kPerProducer * (kFiberProducers * 2 + kThreadProducers);
  for (std::size_t capacity : {0u, 16u}) {
    Channel<int> ch(capacity);
    std::vector<std::atomic<int>> seen(kTotal);
    std::atomic<int> producers_left{kFiberProducers * 2 + kThreadProducers};
    int next_base = 0;
    auto produce = [&](int base) {
      return [&, base] {
        for (int i = 0; i < kPerProducer; ++i) ASSERT_TRUE(ch.send(base + i).ok());
        if (producers_left.fetch_sub(1) == 1) ch.close();
      };
    };
    auto consume = [&] {
      for (int v : ch) seen[v].fetch_add(1);
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreadProducers; ++t, next_base += kPerProducer) threads.emplace_back(produce(next_base));
    threads.emplace_back(consume);
    std::vector<JoinHandle<void>> far;
    for (int f = 0; f < kFiberProducers; ++f, next_base += kPerProducer) {
      far.push_back(go_on(group->loop(0), produce(next_base)));
      far.push_back(go_on(group->loop(0), consume));
    }
    run_main([&] {
      std::vector<JoinHandle<void>> near;
      for (int f = 0; f < kFiberProducers; ++f, next_base += kPerProducer) {
        near.push_back(go(produce(next_base)));
        near.push_back(go(consume));
      }
      for (auto& h : near) h.join();
      for (auto& h : far) h.join();
    });
    for (auto& t : threads) t.join();
    for (int v = 0; v < kTotal; ++v) ASSERT_EQ(seen[v].load(), 1) << "value " << v;
  }
  group->stop();
}

// ---- cancellation and deadlines

TEST_P(ChannelTest, RecvCancelledAndTimedOutLeaveNothingBehind) {
  run_main([] {
    Channel<int> ch;
    CancelSource source;
    auto receiver = go([&] { return ch.recv(source.token()); });
    this_fiber::yield();
    source.cancel();
    auto r = receiver.join();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().errnum(), ECANCELED);
    EXPECT_EQ(ch.try_send(1).error().errnum(), EAGAIN);  // no receiver left queued

    const auto t0 = reactor::now_ns();
    auto timed = ch.recv(CancelToken().with_timeout(5ms));
    EXPECT_EQ(timed.error().errnum(), ETIMEDOUT);
    EXPECT_GE(reactor::now_ns() - t0, 5'000'000);
    EXPECT_EQ(ch.try_send(1).error().errnum(), EAGAIN);
  });
}

TEST_P(ChannelTest, CancelledSendIsNotDelivered) {
  run_main([] {
    for (std::size_t capacity : {0u, 2u}) {
      Channel<int> ch(capacity);
      for (std::size_t i = 0; i < capacity; ++i) ASSERT_TRUE(ch.send(100 + static_cast<int>(i)).ok());
      CancelSource source;
      auto sender = go([&] { return ch.send(1, source.token()); });
      this_fiber::yield();  // waits: no receiver / full
      source.cancel();
      EXPECT_EQ(sender.join().error().errnum(), ECANCELED);
      EXPECT_EQ(ch.send(2, CancelToken().with_timeout(2ms)).error().errnum(), ETIMEDOUT);
      ch.close();
      std::vector<int> expected;
      for (std::size_t i = 0; i < capacity; ++i) expected.push_back(100 + static_cast<int>(i));
      EXPECT_EQ(drain(ch), expected);  // neither 1 nor 2
    }
  });
}

TEST_P(ChannelTest, AlreadyCancelledTokenFailsOnlyWhenItWouldWait) {
  run_main([] {
    CancelSource source;
    source.cancel();
    Channel<int> ch(1);
    EXPECT_TRUE(ch.send(1, source.token()).ok());  // room: done at once
    EXPECT_EQ(ch.send(2, source.token()).error().errnum(), ECANCELED);
    EXPECT_EQ(ch.recv(source.token()).value(), 1);
    EXPECT_EQ(ch.recv(source.token()).error().errnum(), ECANCELED);
    EXPECT_EQ(ch.recv(CancelToken().with_timeout(-1ms)).error().errnum(), ETIMEDOUT);
  });
}

// Deadlines of a few µs on both sides of an unbuffered channel, the sender on
// another loop: every send that succeeded was received once, no other value.
TEST_P(ChannelTest, DeadlinesRacingPeersNeverLoseNorDuplicate) {
  auto group = start_group(1);
  constexpr int kN = 3000;
  std::vector<std::atomic<int>> sent(kN), received(kN);
  Channel<int> ch, plain;
  auto producer = go_on(group->loop(0), [&] {
    for (int i = 0; i < kN; ++i) {
      if (ch.send(i, CancelToken().with_timeout(std::chrono::microseconds(i % 20))).ok()) sent[i] = 1;
    }
    ch.close();
  });
  run_main([&] {
    for (int i = 0;; ++i) {
      auto r = ch.recv(CancelToken().with_timeout(std::chrono::microseconds(i % 15)));
      if (!r.ok()) continue;
      if (!*r) break;
      received[**r].fetch_add(1);
    }
  });
  producer.join();
  int delivered = 0;
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(received[i].load(), sent[i].load()) << "value " << i;
    delivered += sent[i];
  }
  EXPECT_GT(delivered, 0);
  group->stop();
}

// ---- select

TEST_P(ChannelTest, SelectTakesTheReadyCase) {
  run_main([] {
    Channel<int> a(1), b(1);
    Channel<std::string> out(1);
    ASSERT_TRUE(b.send(2).ok());
    int got = 0;
    auto r = select(on_recv(a, [&](std::optional<int>) { got = -1; }),
                    on_recv(b, [&](std::optional<int> v) { got = *v; }));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(got, 2);
    bool sent = false;
    ASSERT_TRUE(select(on_recv(a, [&](std::optional<int>) {}), on_send(out, "x", [&] { sent = true; })).ok());
    EXPECT_TRUE(sent);
    EXPECT_EQ(out.recv().value(), "x");
  });
}

TEST_P(ChannelTest, SelectWaitsForTheFirstReadyCase) {
  run_main([] {
    Channel<int> a, b, c;
    auto sender = go([&] {
      this_fiber::sleep_for(2ms);
      ASSERT_TRUE(b.send(42).ok());
    });
    std::optional<int> va, vb;
    int vc = 0;
    SelectCase cases[] = {a.recv_case(va), b.recv_case(vb), c.send_case(vc)};
    auto i = select(cases);
    ASSERT_TRUE(i.ok());
    EXPECT_EQ(*i, 1u);
    EXPECT_EQ(vb, 42);
    sender.join();
    // Every other node left its queue: nobody receives on a or c now.
    EXPECT_EQ(a.try_send(1).error().errnum(), EAGAIN);
    EXPECT_EQ(c.try_recv().error().errnum(), EAGAIN);
  });
}

TEST_P(ChannelTest, SelectDefaultAndTrySelect) {
  run_main([] {
    Channel<int> a, b(1);
    bool took_default = false;
    ASSERT_TRUE(select(on_recv(a, [](std::optional<int>) { FAIL(); }), on_send(a, 1, [] { FAIL(); }),
                       on_default([&] { took_default = true; }))
                    .ok());
    EXPECT_TRUE(took_default);
    std::optional<int> v;
    SelectCase cases[] = {a.recv_case(v), b.recv_case(v)};
    EXPECT_EQ(try_select(cases).error().errnum(), EAGAIN);
    ASSERT_TRUE(b.send(3).ok());
    EXPECT_EQ(try_select(cases).value(), 1u);
    EXPECT_EQ(v, 3);
  });
}

TEST_P(ChannelTest, SelectTimeoutAndCancelLeaveNothingBehind) {
  run_main([] {
    Channel<int> a, b;
    int x = 5;
    const auto t0 = reactor::now_ns();
    auto r = select(CancelToken().with_timeout(5ms), on_recv(a, [](std::optional<int>) { FAIL(); }),
                    on_send(b, x, [] { FAIL(); }));
    EXPECT_EQ(r.error().errnum(), ETIMEDOUT);
    EXPECT_GE(reactor::now_ns() - t0, 5'000'000);
    EXPECT_EQ(a.try_send(1).error().errnum(), EAGAIN);
    EXPECT_EQ(b.try_recv().error().errnum(), EAGAIN);  // 5 was not sent

    CancelSource source;
    auto waiting = go([&] {
      std::optional<int> v;
      SelectCase cases[] = {a.recv_case(v), b.send_case(x)};
      return select(cases, source.token());
    });
    this_fiber::yield();
    source.cancel();
    EXPECT_EQ(waiting.join().error().errnum(), ECANCELED);
    EXPECT_EQ(b.try_recv().error().errnum(), EAGAIN);
    EXPECT_EQ(x, 5);
  });
}

TEST_P(ChannelTest, SelectIsFair) {
  run_main([] {
    Channel<int> a(1), b(1);
    ASSERT_TRUE(a.send(0).ok());
    ASSERT_TRUE(b.send(0).ok());
    int from_a = 0, from_b = 0;
    constexpr int kSelects = 2000;
    for (int i = 0; i < kSelects; ++i) {
      ASSERT_TRUE(select(on_recv(a, [&](std::optional<int>) { ++from_a, (void)a.try_send(0); }),
                         on_recv(b, [&](std::optional<int>) { ++from_b, (void)b.try_send(0); }))
                      .ok());
    }
    EXPECT_EQ(from_a + from_b, kSelects);
    EXPECT_GE(from_a, kSelects * 4 / 10);
    EXPECT_GE(from_b, kSelects * 4 / 10);
  });
}

TEST_P(ChannelTest, SelectWithTheSameChannelTwice) {
  run_main([] {
    Channel<int> ch;
    auto sender = go([&] {
      for (int i = 0; i < 10; ++i) ASSERT_TRUE(ch.send(i).ok());
    });
    std::vector<int> got;
    for (int i = 0; i < 10; ++i) {
      std::optional<int> v1, v2;
      SelectCase cases[] = {ch.recv_case(v1), ch.recv_case(v2)};
      auto k = select(cases);  // waits (locks ch once), or finds the sender ready
      ASSERT_TRUE(k.ok());
      got.push_back(*k == 0 ? *v1 : *v2);
      EXPECT_FALSE(*k == 0 ? v2.has_value() : v1.has_value());
    }
    sender.join();
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    // Send and recv cases on one buffered channel: the send is the one ready.
    Channel<int> buf(1);
    std::optional<int> in;
    int out = 9;
    SelectCase both[] = {buf.recv_case(in), buf.send_case(out)};
    EXPECT_EQ(select(both).value(), 1u);
    EXPECT_EQ(buf.recv().value(), 9);
    // ...on one unbuffered channel: the select waits in both queues (it cannot
    // match itself); a receiver takes its send.
    auto receiver = go([&] { return ch.recv().value(); });
    std::optional<int> never;
    int offered = 11;
    SelectCase same[] = {ch.recv_case(never), ch.send_case(offered)};
    EXPECT_EQ(select(same).value(), 1u);
    EXPECT_FALSE(never.has_value());
    EXPECT_EQ(receiver.join(), 11);
  });
}

TEST_P(ChannelTest, SelectOnClosedAndNeverReadyCases) {
  run_main([] {
    Channel<int> closed_ch, idle;
    closed_ch.close();
    std::optional<int> v = 3;
    SelectCase cases[] = {SelectCase(), closed_ch.recv_case(v)};
    EXPECT_EQ(select(cases).value(), 1u);
    EXPECT_FALSE(v.has_value());  // closed and drained
    SelectCase never[] = {SelectCase(), idle.recv_case(v)};
    EXPECT_EQ(select(never, CancelToken().with_timeout(1ms)).error().errnum(), ETIMEDOUT);
    EXPECT_THROW((void)select(on_send(closed_ch, 1, [] {})), ChannelClosed);
    // A blocked select's recv case is woken by close.
    auto waiting = go([&] {
      bool closed_seen = false;
      EXPECT_TRUE(select(on_recv(idle, [&](std::optional<int> x) { closed_seen = !x; })).ok());
      return closed_seen;
    });
    this_fiber::yield();
    idle.close();
    EXPECT_TRUE(waiting.join());
  });
}

TEST_P(ChannelTest, SelectOverManyChannels) {
  run_main([] {
    constexpr int kChannels = 40;  // past the on-stack order arrays
    std::vector<std::unique_ptr<Channel<int>>> chans;
    std::vector<std::optional<int>> values(kChannels);
    std::vector<SelectCase> cases;
    for (int i = 0; i < kChannels; ++i) {
      chans.push_back(std::make_unique<Channel<int>>());
      cases.push_back(chans.back()->recv_case(values[i]));
    }
    auto sender = go([&] { ASSERT_TRUE(chans[33]->send(33).ok()); });
    EXPECT_EQ(select(cases).value(), 33u);
    EXPECT_EQ(values[33], 33);
    sender.join();
  });
}

// Selects with deadlines on a plain thread against senders (a fiber of another
// loop, a thread) with deadlines: every send that succeeded was chosen once.
TEST_P(ChannelTest, SelectRacingDeadlinesAcrossThreadsLosesNothing) {
  auto group = start_group(1);
  constexpr int kN = 1500;
  std::vector<std::atomic<int>> sent(2 * kN), received(2 * kN);
  Channel<int> a, b(2);
  std::atomic<int> left{2};
  auto produce = [&](Channel<int>& ch, int base) {
    for (int i = 0; i < kN; ++i) {
      if (ch.send(base + i, CancelToken().with_timeout(std::chrono::microseconds(i % 25))).ok()) sent[base + i] = 1;
    }
    left.fetch_sub(1);
  };
  auto far = go_on(group->loop(0), [&] { produce(a, 0); });
  std::thread near([&] { produce(b, kN); });
  std::optional<int> va, vb;
  SelectCase cases[] = {a.recv_case(va), b.recv_case(vb)};
  for (int i = 0; left.load() > 0 || b.size() > 0; ++i) {
    auto k = select(cases, CancelToken().with_timeout(std::chrono::microseconds(i % 10)));
    if (!k.ok()) continue;
    const std::optional<int>& v = *k == 0 ? va : vb;
    ASSERT_TRUE(v.has_value());
    received[*v].fetch_add(1);
  }
  far.join();
  near.join();
  for (int i = 0; i < 2 * kN; ++i) ASSERT_EQ(received[i].load(), sent[i].load()) << "value " << i;
  group->stop();
}

using ChannelDeathTest = ChannelTest;

TEST_P(ChannelDeathTest, BlockingOnALoopsThreadOutsideAFiberAborts) {
  const auto doomed = [backend = GetParam()] {
    auto loop = fiber::testing::loop_or_abort(backend);
    Channel<int> ch;
    loop->post([&] { (void)ch.recv(); });
    loop->run_once(0ns);
  };
  EXPECT_DEATH(doomed(), "on a loop's thread outside a fiber");
}

INSTANTIATE_TEST_SUITE_P(Backends, ChannelTest, reactor::testing::kAllBackends, reactor::testing::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, ChannelDeathTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo
