// See fd_leak_check.h.
#include "tests/support/fd_leak_check.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

namespace ringo::testing {

std::set<int> open_fds() {
  std::set<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return fds;
  const int own = ::dirfd(dir);
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != own) fds.insert(fd);
  }
  ::closedir(dir);
  return fds;
}

namespace {
std::string link_target(int fd) {
  char path[64];
  char target[256];
  std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(path, target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
}
}  // namespace

void FdLeakCheck::begin() {
  proc_fds_ = open_fds();
  registry_tags_.clear();
  for (const sys::FdInfo& info : sys::fd_registry::snapshot()) registry_tags_.insert(info.tag);
}

std::vector<std::string> FdLeakCheck::leaks() const {
  std::vector<std::string> out;
  std::set<int> described;
  for (const sys::FdInfo& info : sys::fd_registry::snapshot()) {
    if (registry_tags_.count(info.tag)) continue;
    out.push_back(fmt::format("leaked {} ({})", sys::fd_registry::describe(info), link_target(info.fd)));
    described.insert(info.fd);
  }
  for (int fd : open_fds()) {
    if (proc_fds_.count(fd) || described.count(fd)) continue;
    out.push_back(fmt::format("leaked fd {} ({}), not created through the fd registry", fd, link_target(fd)));
  }
  return out;
}

void FdLeakListener::OnTestStart(const ::testing::TestInfo&) { check_.begin(); }

void FdLeakListener::OnTestEnd(const ::testing::TestInfo& info) {
  if (info.result()->Skipped()) return;
  for (const std::string& leak : check_.leaks()) {
    ADD_FAILURE() << "fd leak check: " << leak;
  }
}

}  // namespace ringo::testing
