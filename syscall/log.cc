// See log.h.
#include "syscall/log.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace ringo::sys {
namespace {

int level_from_env() {
  const char* v = std::getenv("RINGO_LOG");
  if (!v) return static_cast<int>(LogLevel::info);
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error", "off"};
  for (int i = 0; i < 5; ++i) {
    if (std::strcmp(v, kNames[i]) == 0) return i;
  }
  return static_cast<int>(LogLevel::info);
}

thread_local int t_loop_index = -1;

}  // namespace

namespace log_detail {

std::atomic<int> g_level{level_from_env()};

void write_line(LogLevel level, std::string_view text) {
  static constexpr char kLetters[] = {'D', 'I', 'W', 'E', '-'};
  fmt::memory_buffer line;
  if (t_loop_index >= 0) {
    fmt::format_to(std::back_inserter(line), "ringo[L{}] {} ", t_loop_index,
                   kLetters[static_cast<int>(level)]);
  } else {
    fmt::format_to(std::back_inserter(line), "ringo[-] {} ", kLetters[static_cast<int>(level)]);
  }
  line.append(text);
  line.push_back('\n');
  // One write so that concurrent lines never interleave; a short write to a
  // pipe this small cannot happen, and a failed log write has nowhere to go.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace log_detail

void set_log_level(LogLevel level) {
  log_detail::g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
LogLevel log_level() {
  return static_cast<LogLevel>(log_detail::g_level.load(std::memory_order_relaxed));
}
void set_log_loop_index(int index) { t_loop_index = index; }
int log_loop_index() { return t_loop_index; }

}  // namespace ringo::sys
