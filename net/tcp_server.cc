// See tcp_server.h. Per loop: one TcpListener (SO_REUSEPORT), one accept
// fiber that owns it, and the connection fibers it spawns on the same loop.
// The loop-local state (active count, the accept fiber's pause Waiter) is
// touched only on that loop's thread; the counters stats() reads from any
// thread are atomics; stop() waits on thread-safe primitives (JoinHandle,
// WaitGroup), so it works from a plain thread and from a fiber alike.
#include "net/tcp_server.h"

#include <atomic>
#include <cerrno>
#include <exception>

#include "fiber/fiber.h"
#include "fiber/sync.h"
#include "fiber/waiter.h"
#include "reactor/clock.h"
#include "syscall/log.h"
#include "syscall/rlimit.h"

namespace ringo::net {

namespace {
struct Shared {
  ServerOptions options;
  ConnectionHandler handler;
  CancelSource stop;
  std::string conn_name;
};
}  // namespace

struct TcpServer::PerLoop {
  std::shared_ptr<Shared> shared;
  reactor::Loop* loop = nullptr;
  int index = 0;
  TcpListener listener;  // moved into the accept fiber when it starts
  JoinHandle<void> acceptor;
  fiber::WaitGroup connections;
  // Loop thread only:
  std::size_t active = 0;
  fiber::Waiter* paused = nullptr;  // the accept fiber, waiting for a slot
  // Any thread:
  std::atomic<std::uint64_t> accepted{0}, active_now{0}, pauses{0};

  void accept_loop();
  void serve(TcpStream stream);
  // Waits (accept fiber) until a connection of this loop closes or `backoff`
  // passes; false when the server stops meanwhile.
  bool pause(std::chrono::milliseconds backoff);
};

bool TcpServer::PerLoop::pause(std::chrono::milliseconds backoff) {
  pauses.fetch_add(1, std::memory_order_relaxed);
  fiber::Waiter w("accept paused");
  paused = &w;
  const int err = w.wait(shared->stop.token().with_timeout(backoff));
  if (paused == &w) paused = nullptr;
  return err != ECANCELED;
}

void TcpServer::PerLoop::accept_loop() {
  TcpListener l = std::move(listener);
  const ServerOptions& o = shared->options;
  // Pauses are logged once per episode, and episodes at most once a second:
  // a server at its limit flaps in and out of it with every close.
  bool saturated = false;
  std::int64_t last_log_ns = 0;
  auto may_log = [&last_log_ns] {
    const std::int64_t now = reactor::now_ns();
    if (now - last_log_ns < 1'000'000'000) return false;
    last_log_ns = now;
    return true;
  };
  for (;;) {
    if (o.max_connections > 0 && active >= o.max_connections) {
      if (!saturated && may_log()) {
        sys::log(sys::LogLevel::warn, "{}: accepting paused: {} connections on this loop (max_connections)", o.name,
                 active);
      }
      saturated = true;
      if (!pause(o.emfile_backoff)) return;
      continue;
    }
    sys::Result<TcpStream> conn = l.accept(shared->stop.token());
    if (!conn) {
      const int err = conn.error().errnum();
      if (shared->stop.cancelled()) return;
      if (err == EMFILE || err == ENFILE) {
        if (!saturated && may_log()) {
          auto lim = sys::getrlimit(RLIMIT_NOFILE);
          sys::log(sys::LogLevel::warn, "{}: accepting paused: {} ({} connections on this loop, RLIMIT_NOFILE {}); "
                   "resuming when a connection closes", o.name, conn.error().message(), active,
                   lim ? std::to_string(lim->soft) : std::string("?"));
        }
        saturated = true;
        if (!pause(o.emfile_backoff)) return;
        continue;
      }
      // Anything else (ENOMEM, ENOBUFS, EPERM from a firewall hook) is
      // transient for the listener as a whole: log, back off, go on.
      sys::log(sys::LogLevel::error, "{}: {}; retrying in {} ms", o.name, conn.error().message(),
               o.emfile_backoff.count());
      if (!pause(o.emfile_backoff)) return;
      continue;
    }
    if (saturated && last_log_ns != 0 && reactor::now_ns() - last_log_ns < 1'000'000'000) {
      sys::log(sys::LogLevel::info, "{}: accepting resumed ({} connections on this loop)", o.name, active);
    }
    saturated = false;
    ++active;
    accepted.fetch_add(1, std::memory_order_relaxed);
    active_now.fetch_add(1, std::memory_order_relaxed);
    connections.add(1);
    go([this, s = std::move(*conn)]() mutable { serve(std::move(s)); },
       {.name = shared->conn_name, .stack_size = o.stack_size, .token = shared->stop.token()});
  }
}

void TcpServer::PerLoop::serve(TcpStream stream) {
  sys::SockAddr peer;
  if (auto p = stream.peer_address(); p) peer = *p;  // ENOTCONN: reset already; the handler will see it
  try {
    shared->handler(stream, Connection(peer, shared->stop.token(), index));
  } catch (const std::exception& e) {
    sys::log(sys::LogLevel::error, "{}: connection from {}: handler threw: {}", shared->options.name,
             peer.to_string(), e.what());
  } catch (...) {
    sys::log(sys::LogLevel::error, "{}: connection from {}: handler threw a non-std exception",
             shared->options.name, peer.to_string());
  }
  stream.close();
  --active;
  active_now.fetch_sub(1, std::memory_order_relaxed);
  if (paused != nullptr && paused->try_claim()) std::exchange(paused, nullptr)->wake();
  connections.done();  // last: stop() may destroy this PerLoop once the count is zero
}

sys::Result<std::unique_ptr<TcpServer>> TcpServer::start(reactor::LoopGroup& group, ServerOptions options,
                                                         ConnectionHandler handler) {
  auto shared = std::make_shared<Shared>();
  shared->conn_name = options.name + "-conn";
  shared->handler = std::move(handler);
  shared->options = std::move(options);
  std::unique_ptr<TcpServer> server(new TcpServer());
  // Bind every listener before any runs: an error (port taken, an option
  // refused) comes back here, with nothing started.
  sys::SockAddr addr = shared->options.address;
  for (std::size_t i = 0; i < group.size(); ++i) {
    auto p = std::make_unique<PerLoop>();
    p->shared = shared;
    p->loop = &group.loop(i);
    p->index = p->loop->index();
    sys::Result<TcpListener> l = TcpListener::listen(addr, shared->options.listen);
    if (!l) return l.error();
    if (i == 0) {
      sys::Result<sys::SockAddr> bound = l->local_address();
      if (!bound) return bound.error();
      addr = *bound;  // port 0: the others join the port the kernel picked
    }
    p->listener = std::move(*l);
    server->loops_.push_back(std::move(p));
  }
  server->address_ = addr;
  server->port_ = addr.port();
  for (auto& p : server->loops_) {
    PerLoop* raw = p.get();
    p->acceptor = go_on(*p->loop, [raw] { raw->accept_loop(); },
                        {.name = shared->options.name + "-accept", .token = shared->stop.token()});
  }
  return server;
}

TcpServer::~TcpServer() { stop(); }

sys::SockAddr TcpServer::address() const { return address_; }

ServerStats TcpServer::stats() const {
  ServerStats s;
  for (const auto& p : loops_) {
    s.accepted += p->accepted.load(std::memory_order_relaxed);
    s.active += p->active_now.load(std::memory_order_relaxed);
    s.accept_pauses += p->pauses.load(std::memory_order_relaxed);
  }
  return s;
}

void TcpServer::stop() {
  if (stopped_.exchange(true)) return;
  if (loops_.empty()) return;
  loops_.front()->shared->stop.cancel();
  for (auto& p : loops_) {
    if (p->acceptor.valid()) {
      try {
        p->acceptor.join();
      } catch (const std::exception& e) {
        sys::log(sys::LogLevel::error, "{}: accept fiber: {}", p->shared->options.name, e.what());
      }
    }
    (void)p->connections.wait();
  }
}

}  // namespace ringo::net
