// Runs a test suite once per backend: TEST_P(Suite, Name) with
// INSTANTIATE_TEST_SUITE_P(Backends, Suite, kAllBackends, backend_name).
// Every I/O test in tests/reactor (and above) is parameterised this way, so
// both backends answer the same assertions (abseil's waiter_test does the
// same for its waiters).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "reactor/backend.h"
#include "reactor/clock.h"
#include "reactor/loop.h"

namespace ringo::reactor::testing {

inline const auto kAllBackends = ::testing::Values(BackendKind::io_uring, BackendKind::epoll);

inline std::string backend_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return to_string(info.param);
}

// A fixture owning one loop of the parameter's backend, created on the test's thread.
class LoopTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    Loop::Options options;
    options.backend = GetParam();
    auto created = Loop::create(options);
    ASSERT_TRUE(created.ok()) << created.error().message();
    loop_ = std::move(*created);
    ASSERT_EQ(loop_->backend_kind(), GetParam());
  }
  void TearDown() override { loop_.reset(); }

  // Runs loop iterations until `done()` or `limit` passes; returns done().
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    const std::int64_t until = now_ns() + std::chrono::nanoseconds(limit).count();
    while (!done() && now_ns() < until) loop_->run_once(std::chrono::milliseconds(10));
    return done();
  }

  std::unique_ptr<Loop> loop_;
};

}  // namespace ringo::reactor::testing
