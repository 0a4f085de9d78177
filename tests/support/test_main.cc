// main() of every Ringo test binary: GoogleTest plus the fd-leak listener.
#include <gtest/gtest.h>

#include "tests/support/fd_leak_check.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Appended after the default printer, so its OnTestEnd runs first and a
  // leak is reported as part of the test that caused it.
  ::testing::UnitTest::GetInstance()->listeners().Append(new ringo::testing::FdLeakListener);
  return RUN_ALL_TESTS();
}
