// See tcp_listener.h. accept() takes from a queue of connections that the
// multishot operation's completions fill (on the loop's thread, from the
// backend's poll); the accepting fiber waits on a fiber::Waiter, so the
// token's cancellation and deadline work as for every other blocking call.
// The multishot operation stays armed between accept() calls: a connection
// that arrives while no fiber waits is queued, not lost, and is taken by the
// next call.
#include "net/tcp_listener.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "fiber/io.h"
#include "fiber/scheduler.h"
#include "fiber/waiter.h"
#include "reactor/loop.h"
#include "syscall/log.h"
#include "syscall/sockopt.h"

namespace ringo::net {

struct TcpListener::State {
  sys::Fd fd;
  ListenOptions options;
  bool options_warned = false;

  // The multishot accept, bound to the loop of the first accept() call.
  reactor::Operation op;
  fiber::Scheduler* scheduler = nullptr;
  bool armed = false;            // op is in flight
  std::deque<sys::Fd> ready;     // accepted, not yet taken
  int pending_error = 0;         // the error that ended the last multishot
  fiber::Waiter* waiter = nullptr;  // the fiber in accept(), if any
  fiber::Fiber* closer = nullptr;   // the fiber in the destructor, if any

  static void on_complete(reactor::Operation& op, reactor::Completion& c) {
    State& s = *static_cast<State*>(op.user);
    if (c.result >= 0 && c.fd) {
      s.ready.push_back(std::move(c.fd));
    } else if (c.result < 0 && c.result != -ECANCELED) {
      s.pending_error = -c.result;
    }
    if (!c.more) {
      s.armed = false;
      if (s.closer != nullptr) s.scheduler->unpark(*s.closer);
    }
    if (s.waiter != nullptr && s.waiter->try_claim()) {
      fiber::Waiter* w = std::exchange(s.waiter, nullptr);
      w->wake();
    }
  }

  TcpStream tune(sys::Fd conn) {
    if (auto r = options.accepted.apply(conn.get()); !r && !options_warned) {
      options_warned = true;
      sys::log(sys::LogLevel::warn, "listener fd {}: serving connections untuned: {}", fd.get(), r.error().message());
    }
    return TcpStream(std::move(conn));
  }

  ~State() {
    if (!armed) return;
    fiber::Fiber* self = scheduler->running();
    if (self == nullptr || &scheduler->loop() != reactor::Loop::current()) {
      std::fprintf(stderr,
                   "ringo: broken invariant: a TcpListener with an accept in flight destroyed outside a fiber "
                   "of its loop (destroy it in the fiber that accepted)\n");
      std::abort();
    }
    closer = self;
    scheduler->loop().cancel(op);
    while (armed) scheduler->park("listener close");
  }
};

TcpListener::TcpListener() = default;
TcpListener::~TcpListener() = default;
TcpListener::TcpListener(TcpListener&&) noexcept = default;
TcpListener& TcpListener::operator=(TcpListener&&) noexcept = default;

sys::Result<TcpListener> TcpListener::listen(const sys::SockAddr& addr, const ListenOptions& options) {
  sys::Result<sys::Fd> fd = sys::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_TCP);
  if (!fd) return fd.error();
  if (auto r = sys::set_option(fd->get(), sys::opt::reuse_addr, true); !r) return r.error();
  if (options.reuse_port) {
    if (auto r = sys::set_option(fd->get(), sys::opt::reuse_port, true); !r) return r.error();
  }
  // Refusals show here, at start-up, rather than once per connection later.
  if (auto r = options.accepted.apply(fd->get()); !r) return r.error();
  if (auto r = sys::bind(fd->get(), addr); !r) return r.error();
  if (auto r = sys::listen(*fd, options.backlog); !r) return r.error();
  TcpListener l;
  l.state_ = std::make_unique<State>();
  l.state_->fd = std::move(*fd);
  l.state_->options = options;
  return l;
}

sys::Result<TcpStream> TcpListener::accept(const CancelToken& token) {
  State& s = *state_;
  if (!s.options.multishot) {
    for (;;) {
      sys::Result<sys::Fd> conn = io::accept(s.fd.get(), token);
      if (conn) return s.tune(std::move(*conn));
      if (!conn.error().is(ECONNABORTED)) return conn.error();
    }
  }
  fiber::Scheduler& sched = fiber::Scheduler::current_or_die("net::TcpListener::accept");
  if (s.scheduler == nullptr) {
    s.scheduler = &sched;
    reactor::prepare_accept_multishot(s.op, s.fd.get(), SOCK_NONBLOCK);
    s.op.on_complete = &State::on_complete;
    s.op.user = &s;
  } else if (s.scheduler != &sched) {
    std::fprintf(stderr, "ringo: broken invariant: TcpListener::accept on a loop other than its first\n");
    std::abort();
  }
  for (;;) {
    if (!s.ready.empty()) {
      sys::Fd conn = std::move(s.ready.front());
      s.ready.pop_front();
      return s.tune(std::move(conn));
    }
    if (const int err = std::exchange(s.pending_error, 0); err != 0 && err != ECONNABORTED) {
      return sys::Error("accept", err);
    }
    if (const int err = token.error(); err != 0) {
      return sys::Error("accept", err, nullptr, err == ECANCELED ? "cancelled by its token" : "its token's deadline passed");
    }
    if (!s.armed) {
      s.armed = true;
      s.scheduler->loop().submit(s.op);
    }
    fiber::Waiter w("accept");
    s.waiter = &w;
    const int err = w.wait(token);
    if (s.waiter == &w) s.waiter = nullptr;
    if (err != 0 && s.ready.empty()) {
      return sys::Error("accept", err, nullptr, err == ECANCELED ? "cancelled by its token" : "its token's deadline passed");
    }
  }
}

sys::Result<sys::SockAddr> TcpListener::local_address() const { return sys::getsockname(state_->fd.get()); }
int TcpListener::fd() const { return state_->fd.get(); }
const ListenOptions& TcpListener::options() const { return state_->options; }

}  // namespace ringo::net
