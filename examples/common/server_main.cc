// See server_main.h.
#include "examples/common/server_main.h"

#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "syscall/cpu.h"
#include "syscall/rlimit.h"

namespace ringo::examples {
namespace {

std::string g_program = "server";

[[noreturn]] void usage_error(const std::string& what, std::string_view usage_extra) {
  std::fprintf(stderr,
               "%s: %s\n"
               "usage: %s [--port N] [--host ADDR] [--threads N] [--backend uring|epoll|auto] [--cpus LIST]\n"
               "          [--idle-spin-us N]\n%.*s",
               g_program.c_str(), what.c_str(), g_program.c_str(), static_cast<int>(usage_extra.size()),
               usage_extra.data());
  std::exit(2);
}

long parse_number(std::string_view flag, std::string_view text, long lo, long hi, std::string_view extra) {
  long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    usage_error(fmt::format("{} wants a number from {} to {}, not '{}'", flag, lo, hi, text), extra);
  }
  return v;
}

// "0,2-3" -> {0, 2, 3}
std::vector<int> parse_cpus(std::string_view text, std::string_view extra) {
  std::vector<int> cpus;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t dash = item.find('-');
    const int lo = static_cast<int>(parse_number("--cpus", item.substr(0, dash), 0, 4095, extra));
    const int hi = dash == std::string_view::npos
                       ? lo
                       : static_cast<int>(parse_number("--cpus", item.substr(dash + 1), lo, 4095, extra));
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  if (cpus.empty()) usage_error("--cpus wants a list like 0,1 or 0-3", extra);
  return cpus;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

ServerFlags parse_server_flags(int argc, char** argv, std::string_view usage_extra) {
  if (argc > 0) {
    g_program = argv[0];
    if (const std::size_t slash = g_program.rfind('/'); slash != std::string::npos) g_program.erase(0, slash + 1);
  }
  // Blocked before any loop thread exists, so they inherit the mask and the
  // main thread's sigwait is the one that receives the signals.
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  ServerFlags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: %s [--port N] [--host ADDR] [--threads N] [--backend uring|epoll|auto] [--cpus LIST]\n"
                  "          [--idle-spin-us N]\n%.*s",
                  g_program.c_str(), static_cast<int>(usage_extra.size()), usage_extra.data());
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", flag), usage_extra);
    const std::string_view value = argv[++i];
    if (flag == "--port") {
      f.port = static_cast<std::uint16_t>(parse_number(flag, value, 0, 65535, usage_extra));
    } else if (flag == "--host") {
      f.host = value;
    } else if (flag == "--threads") {
      f.threads = static_cast<std::size_t>(parse_number(flag, value, 1, 1024, usage_extra));
    } else if (flag == "--backend") {
      auto kind = reactor::parse_backend_kind(value);
      if (!kind) usage_error(fmt::format("--backend wants uring, epoll or auto, not '{}'", value), usage_extra);
      f.backend = *kind;
    } else if (flag == "--cpus") {
      f.cpus = parse_cpus(value, usage_extra);
    } else if (flag == "--idle-spin-us") {
      f.idle_spin_us = static_cast<int>(parse_number(flag, value, 0, 1000000, usage_extra));
    } else {
      usage_error(fmt::format("unknown flag '{}'", flag), usage_extra);
    }
  }
  return f;
}

std::unique_ptr<reactor::LoopGroup> start_loops(const ServerFlags& flags) {
  if (auto lim = sys::raise_nofile_limit(); !lim) {
    std::fprintf(stderr, "%s: warning: %s\n", g_program.c_str(), lim.error().message().c_str());
  }
  reactor::LoopGroup::Options o;
  o.cpus = flags.cpus;
  o.count = flags.threads;
  o.loop.backend = flags.backend;
  o.loop.idle_spin = std::chrono::microseconds(flags.idle_spin_us);
  auto group = reactor::LoopGroup::start(o);
  if (!group) {
    std::fprintf(stderr, "%s: cannot start the loops: %s\n", g_program.c_str(), group.error().message().c_str());
    std::exit(1);
  }
  return std::move(*group);
}

sys::SockAddr listen_address(const ServerFlags& flags) {
  auto addr = sys::SockAddr::parse(flags.host, flags.port);
  if (!addr) usage_error(fmt::format("--host wants a numeric IPv4 or IPv6 address, not '{}'", flags.host), {});
  return *addr;
}

void announce(std::string_view program, const sys::SockAddr& bound, reactor::LoopGroup& group) {
  std::string cpus;
  for (std::size_t i = 0; i < group.size(); ++i) cpus += fmt::format("{}{}", i ? "," : "", group.cpu(i));
  auto lim = sys::getrlimit(RLIMIT_NOFILE);
  fmt::print("{}: listening on {}, {} loop(s) ({}) on CPU {}, RLIMIT_NOFILE {}/{}\n", program, bound.to_string(),
             group.size(), reactor::to_string(group.loop(0).backend_kind()), cpus, lim ? lim->soft : 0,
             lim ? lim->hard : 0);
  std::fflush(stdout);
}

void report_start_failure(std::string_view program, const sys::Error& error) {
  fmt::print(stderr, "{}: {}\n", program, error.message());
}

void wait_for_signal() {
  const sigset_t set = stop_signals();
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "%s: %s, stopping\n", g_program.c_str(), sig == SIGINT ? "SIGINT" : "SIGTERM");
}

}  // namespace ringo::examples
