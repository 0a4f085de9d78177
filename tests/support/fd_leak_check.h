// The fd-leak check every test binary runs: a test that ends with more open
// descriptors than it started with fails, naming each leaked fd.
//
// Two sources are compared before and after each test: /proc/self/fd (sees
// every descriptor, whoever made it) and the fd registry (knows what the
// framework made, with kind and creation site, so the failure says where the
// leak came from). A descriptor open before the test and still open after is
// not a leak, even if its number was reused meanwhile.
//
// The listener adds its failure in OnTestEnd, which gtest calls before the
// result printer's (listeners' OnTestEnd run in reverse order of appending),
// so the test is reported FAILED with the leak in its output.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "syscall/fd_registry.h"

namespace ringo::testing {

class FdLeakCheck {
 public:
  // Records what is open now.
  void begin();
  // One line per descriptor open now that was not open at begin().
  std::vector<std::string> leaks() const;

 private:
  std::set<int> proc_fds_;
  std::set<sys::OwnerTag> registry_tags_;
};

// The set of numbers in /proc/self/fd (the directory's own fd excluded).
std::set<int> open_fds();

class FdLeakListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo& info) override;
  void OnTestEnd(const ::testing::TestInfo& info) override;

 private:
  FdLeakCheck check_;
};

}  // namespace ringo::testing
