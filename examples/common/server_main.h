// The command line and start-up every sample server shares:
//
//   hello --port 8080 --threads 2 --backend uring --cpus 0,1
//
//   --port N        TCP port (default 8080; 0: the kernel picks, printed at start)
//   --host ADDR     numeric IPv4/IPv6 address to bind (default 0.0.0.0)
//   --threads N     loops, one per CPU (default: every CPU of --cpus, or of the affinity mask)
//   --backend B     uring | epoll | auto (default auto: io_uring, else epoll, said in the log)
//   --cpus LIST     CPUs to pin the loops to: "0,1" or "0-3" (default: the affinity mask)
//   --idle-spin-us N  a loop spins this long for work before sleeping (default 0)
//
// start() prints one line saying what was started (backend, loops, CPUs, the
// port, RLIMIT_NOFILE soft/hard: connection counts above the soft limit fail
// with EMFILE), raises the soft descriptor limit to the hard one, and
// wait_for_signal() blocks the main thread until SIGINT or SIGTERM.
// Bad flags exit with status 2 and a message naming the flag.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reactor/backend.h"
#include "reactor/loop_group.h"
#include "syscall/result.h"
#include "syscall/socket.h"

namespace ringo::examples {

struct ServerFlags {
  std::uint16_t port = 8080;
  std::string host = "0.0.0.0";
  std::size_t threads = 0;
  reactor::BackendKind backend = reactor::BackendKind::automatic;
  std::vector<int> cpus;
  int idle_spin_us = 0;
};

// Parses the flags above; exits(2) with a usage message on anything else.
// `usage_extra` is printed after the common flags (what the server serves).
ServerFlags parse_server_flags(int argc, char** argv, std::string_view usage_extra = {});

// The loops the flags ask for, started; exits(1) with the reason if they
// cannot start.
std::unique_ptr<reactor::LoopGroup> start_loops(const ServerFlags& flags);

// The address to listen on; exits(2) if --host is not a numeric address.
sys::SockAddr listen_address(const ServerFlags& flags);

// Logs "<program>: listening on <addr>, <n> loops (<backend>) on CPUs <...>,
// RLIMIT_NOFILE <soft>/<hard>" to stdout (and flushes: scripts wait for it).
void announce(std::string_view program, const sys::SockAddr& bound, reactor::LoopGroup& group);
// "<program>: <error>" on stderr.
void report_start_failure(std::string_view program, const sys::Error& error);

// Blocks until SIGINT or SIGTERM (blocked in every thread started after the
// first call to parse_server_flags, so the main thread gets them).
void wait_for_signal();

// The end of every sample server's main(): reports a failed start (exit
// status 1), or announces the server, waits for a signal, stops the server
// and then the loops (0).
template <class Server>
int serve_until_signal(std::string_view program, sys::Result<std::unique_ptr<Server>> server,
                       reactor::LoopGroup& group) {
  if (!server) {
    report_start_failure(program, server.error());
    return 1;
  }
  announce(program, (*server)->address(), group);
  wait_for_signal();
  (*server)->stop();
  group.stop();
  return 0;
}

}  // namespace ringo::examples
