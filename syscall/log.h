// Logging through fmt: one line per call, written with a single write(2) so
// lines from several loops never interleave. Each line carries the reactor
// (loop) index of the thread that logs, or '-' for threads that are no loop:
//   ringo[L2] W accept paused: accept4: EMFILE (Too many open files)
//
// Invariant: nothing logs on a hot path by default; debug lines are filtered
// before formatting (the level check is one relaxed load).
//
// Rejected: iostreams (locale, interleaving), spdlog (a dependency for what
// fifty lines do), syslog (servers under systemd log to stderr anyway).
#pragma once

#include <atomic>
#include <string_view>

#include <fmt/format.h>

namespace ringo::sys {

enum class LogLevel : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

namespace log_detail {
extern std::atomic<int> g_level;
void write_line(LogLevel level, std::string_view text);
}  // namespace log_detail

// The level comes from RINGO_LOG (debug|info|warn|error|off) at start-up,
// default info.
void set_log_level(LogLevel level);
LogLevel log_level();

// Set by each loop thread so its lines name it; -1 means "not a loop".
void set_log_loop_index(int index);
int log_loop_index();

inline bool log_enabled(LogLevel level) {
  return static_cast<int>(level) >= log_detail::g_level.load(std::memory_order_relaxed);
}

template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(level)) return;
  log_detail::write_line(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ringo::sys
