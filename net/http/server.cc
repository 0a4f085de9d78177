// Server (server.h): a net::TcpServer whose connection handler is an
// internal::Connection.
#include "net/http/server.h"

#include "net/http/internal/connection.h"

namespace ringo::net::http {

sys::Result<std::unique_ptr<Server>> Server::start(reactor::LoopGroup& group, ServerOptions options,
                                                   Router router) {
  auto shared = std::make_shared<Shared>();
  shared->options = std::move(options);
  shared->router = std::move(router);
  shared->loops = group.size() == 0 ? 1 : group.size();
  shared->counters = std::make_unique<internal::LoopCounters[]>(shared->loops);
  auto tcp = net::TcpServer::start(group, shared->options.tcp,
                                   [shared](TcpStream& stream, const net::Connection& connection) {
                                     // On the heap, not the fiber's stack:
                                     // connection.h says why.
                                     auto c = std::make_unique<internal::Connection>(*shared, stream, connection);
                                     c->serve();
                                   });
  if (!tcp) return tcp.error();
  std::unique_ptr<Server> server(new Server());
  server->shared_ = std::move(shared);
  server->tcp_ = std::move(*tcp);
  return server;
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const { return tcp_->port(); }
sys::SockAddr Server::address() const { return tcp_->address(); }

ServerStats Server::stats() const {
  ServerStats s;
  s.tcp = tcp_->stats();
  for (std::size_t i = 0; i < shared_->loops; ++i) {
    const internal::LoopCounters& c = shared_->counters[i];
    s.requests += c.requests.load(std::memory_order_relaxed);
    s.bad_requests += c.bad_requests.load(std::memory_order_relaxed);
    s.timeouts += c.timeouts.load(std::memory_order_relaxed);
    s.handler_errors += c.handler_errors.load(std::memory_order_relaxed);
    s.hijacked += c.hijacked.load(std::memory_order_relaxed);
  }
  return s;
}

void Server::stop() {
  if (tcp_) tcp_->stop();
}

}  // namespace ringo::net::http
