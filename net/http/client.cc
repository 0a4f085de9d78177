// Client: HTTP/1.1 over a per-loop keep-alive pool (see client.h).
#include "net/http/client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "fiber/sync.h"
#include "net/http/parser.h"
#include "net/tcp_stream.h"
#include "reactor/clock.h"

namespace ringo::net::http {

struct Client::Host {
  std::string key;
  std::vector<std::unique_ptr<internal::ClientConnection>> idle;  // most recently used last
  std::unique_ptr<fiber::Semaphore> slots;                        // max_conns_per_host
};

namespace internal {

// One connection: its stream, the response parser, and the read buffer whose
// first head_end bytes hold the current response's head.
struct ClientConnection {
  ClientConnection(TcpStream s, Client::Host* h, const ClientOptions& o)
      : stream(std::move(s)),
        host(h),
        parser(Parser::Mode::response,
               ParserLimits{.max_head_bytes = o.max_head_bytes, .max_headers = o.max_headers,
                            .max_body_bytes = o.max_body_bytes}),
        cap(o.max_head_bytes + std::max<std::size_t>(o.read_buffer, 512)),
        buf(new char[cap]) {}

  std::string_view unparsed() const { return {buf.get() + pos, end - pos}; }

  TcpStream stream;
  Client::Host* host;
  Parser parser;
  std::size_t cap;
  std::unique_ptr<char[]> buf;
  std::size_t pos = 0;       // parsed up to here
  std::size_t end = 0;       // read up to here
  std::size_t head_end = 0;  // the head occupies [0, head_end)
  std::int64_t idle_since_ns = 0;
  std::string out;           // the request head being sent
};

}  // namespace internal

using internal::ClientConnection;

namespace {

sys::Error renamed(const char* op, const sys::Error& e, const char* hint = nullptr) {
  return sys::Error(op, e.errnum(), e.subject(), hint != nullptr ? hint : e.hint());
}

sys::Error protocol_error(const char* op, const Parser& p) {
  // The parser's message is a std::string; sys::Error keeps static strings
  // only, so the common kinds get a fixed hint and the rest a generic one.
  const int status = p.error().status;
  const char* hint = status == 431   ? "malformed response: head over ClientOptions::max_head_bytes or max_headers"
                     : status == 413 ? "malformed response: body over ClientOptions::max_body_bytes"
                                     : "malformed response (the parser refused it)";
  return sys::Error(op, EPROTO, nullptr, hint);
}

bool idempotent(std::string_view method) { return method == "GET" || method == "HEAD" || method == "OPTIONS"; }

// Whether a pooled connection still looks usable: nothing to read and no
// end of stream (a server that closed an idle connection sent a FIN).
bool alive(const TcpStream& s) {
  char b;
  const ssize_t n = ::recv(s.fd(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void append_request_head(std::string& out, const ClientRequest& r, const std::string& host_key) {
  out.append(r.method).push_back(' ');
  out.append(r.target.empty() ? std::string_view("/") : r.target).append(" HTTP/1.1\r\nHost: ");
  out.append(r.host.empty() ? std::string_view(host_key) : r.host).append("\r\n");
  for (const HeaderField& f : r.headers) out.append(f.name).append(": ").append(f.value).append("\r\n");
  if (!r.body.empty() || (r.method != "GET" && r.method != "HEAD" && r.method != "OPTIONS" && r.method != "DELETE")) {
    char n[24];
    auto res = std::to_chars(n, n + sizeof n, r.body.size());
    out.append("Content-Length: ").append(n, static_cast<std::size_t>(res.ptr - n)).append("\r\n");
  }
  out.append("\r\n");
}

}  // namespace

// ---- ClientResponse

ClientResponse::ClientResponse(Client* client, std::unique_ptr<ClientConnection> conn, bool reused)
    : client_(client), conn_(std::move(conn)), reused_(reused) {}

ClientResponse::ClientResponse(ClientResponse&& o) noexcept
    : client_(std::exchange(o.client_, nullptr)),
      conn_(std::move(o.conn_)),
      reused_(o.reused_),
      done_(o.done_),
      sent_ns_(o.sent_ns_) {}

ClientResponse& ClientResponse::operator=(ClientResponse&& o) noexcept {
  if (this != &o) {
    { ClientResponse old(std::move(*this)); }  // releases the current connection
    client_ = std::exchange(o.client_, nullptr);
    conn_ = std::move(o.conn_);
    reused_ = o.reused_;
    done_ = o.done_;
    sent_ns_ = o.sent_ns_;
  }
  return *this;
}

ClientResponse::~ClientResponse() {
  if (!conn_) return;
  // A body already buffered (or none: 204, HEAD, Content-Length: 0) ends
  // here without I/O, and the connection can be reused.
  while (!done_) {
    const Parser::Step s = conn_->parser.parse(conn_->unparsed());
    conn_->pos += s.consumed;
    if (s.event == Parser::Event::message) done_ = true;
    if (s.event != Parser::Event::body) break;
  }
  const bool reusable = done_ && conn_->parser.keep_alive() && conn_->pos == conn_->end;
  client_->release(std::move(conn_), reusable);
}

int ClientResponse::status() const { return conn_ ? conn_->parser.status() : 0; }
std::string_view ClientResponse::reason() const { return conn_ ? conn_->parser.reason() : std::string_view(); }
std::optional<std::string_view> ClientResponse::header(std::string_view name) const {
  if (!conn_) return std::nullopt;
  return conn_->parser.header(name);
}
std::span<const HeaderField> ClientResponse::headers() const {
  if (!conn_) return {};
  return conn_->parser.headers();
}

sys::Result<std::string_view> ClientResponse::read_some(const CancelToken& token) {
  constexpr const char* kOp = "http::Client body";
  if (done_ || !conn_) return std::string_view();
  ClientConnection& c = *conn_;
  for (;;) {
    // Parse first, even with nothing unparsed: a message may be pending.
    const Parser::Step s = c.parser.parse(c.unparsed());
    c.pos += s.consumed;
    switch (s.event) {
      case Parser::Event::body:
        if (s.body.empty()) continue;
        return s.body;
      case Parser::Event::message:
        done_ = true;
        return std::string_view();
      case Parser::Event::error:
        return protocol_error(kOp, c.parser);
      case Parser::Event::head:
        return sys::Error(kOp, EPROTO, nullptr, "a second response head inside a body");
      case Parser::Event::need_more:
        break;
    }
    // Every byte was consumed: read the next ones right after the head.
    c.pos = c.end = c.head_end;
    auto n = c.stream.read(std::as_writable_bytes(std::span(c.buf.get() + c.end, c.cap - c.end)), token);
    if (!n) return renamed(kOp, n.error());
    if (*n == 0) {
      const Parser::Step f = c.parser.finish();
      if (f.event == Parser::Event::message) {
        done_ = true;  // a close-delimited body; the parser says no keep-alive
        return std::string_view();
      }
      return sys::Error(kOp, ECONNRESET, nullptr, "the connection closed before the body's end");
    }
    c.end += *n;
  }
}

sys::Result<std::string> ClientResponse::read_all(std::size_t max, const CancelToken& token) {
  std::string body;
  for (;;) {
    auto piece = read_some(token);
    if (!piece) return piece.error();
    if (piece->empty() && done_) return body;
    if (body.size() + piece->size() > max) return sys::Error("http::Client read_all", EMSGSIZE);
    body.append(*piece);
  }
}

// ---- Client

Client::Client(ClientOptions options) : options_(std::move(options)) {
  reaper_.on_fire = &Client::on_reap;
  reaper_.user = this;
}

Client::~Client() {
  if (loop_ != nullptr && reaper_.armed()) loop_->cancel_timer(reaper_);
}

Client::Host& Client::host(const std::string& key) {
  auto it = hosts_.find(key);
  if (it == hosts_.end()) {
    auto h = std::make_unique<Host>();
    h->key = key;
    if (options_.max_conns_per_host > 0) {
      h->slots = std::make_unique<fiber::Semaphore>(static_cast<std::int64_t>(options_.max_conns_per_host));
    }
    it = hosts_.emplace(key, std::move(h)).first;
  }
  return *it->second;
}

sys::Result<ClientResponse> Client::send(const sys::SockAddr& addr, const ClientRequest& request,
                                         const CancelToken& token) {
  reactor::Loop* here = reactor::Loop::current();
  if (loop_ == nullptr) loop_ = here;
  if (here == nullptr || here != loop_) {
    std::fprintf(stderr, "ringo: broken invariant: http::Client used outside the loop it belongs to\n");
    std::abort();
  }
  const std::string key = addr.to_string();
  Host& h = host(key);
  if (h.slots) {
    if (auto r = h.slots->acquire(token); !r) {
      return sys::Error("http::Client", r.error().errnum(), nullptr,
                        "waiting for a connection (ClientOptions::max_conns_per_host)");
    }
  }
  bool retryable = false;
  auto r = attempt(addr, key, request, token, true, &retryable);
  if (!r && retryable && idempotent(request.method)) {
    ++stats_.retries;
    r = attempt(addr, key, request, token, false, &retryable);
  }
  if (!r && h.slots) h.slots->release();
  return r;
}

std::unique_ptr<ClientConnection> Client::take_idle(Host& h) {
  while (!h.idle.empty()) {
    std::unique_ptr<ClientConnection> c = std::move(h.idle.back());
    h.idle.pop_back();
    if (alive(c->stream)) return c;
    ++stats_.stale;
  }
  return nullptr;
}

sys::Result<ClientResponse> Client::attempt(const sys::SockAddr& addr, const std::string& key,
                                            const ClientRequest& request, const CancelToken& token,
                                            bool allow_reuse, bool* retryable) {
  *retryable = false;
  Host& h = host(key);
  std::unique_ptr<ClientConnection> c = allow_reuse ? take_idle(h) : nullptr;
  const bool reused = c != nullptr;
  if (reused) {
    ++stats_.reuses;
  } else {
    auto s = TcpStream::connect(addr, token.with_timeout(options_.connect_timeout), options_.socket);
    if (!s) return renamed("http::Client connect", s.error());
    ++stats_.connects;
    c = std::make_unique<ClientConnection>(std::move(*s), &h, options_);
  }
  c->out.clear();
  append_request_head(c->out, request, key);
  iovec iov[2] = {{c->out.data(), c->out.size()},
                  {const_cast<char*>(request.body.data()), request.body.size()}};
  if (auto w = c->stream.writev_all(std::span(iov, request.body.empty() ? 1 : 2), token); !w) {
    *retryable = reused;
    return renamed("http::Client request", w.error());
  }
  const std::int64_t sent_ns = reactor::now_ns();
  // The response head, at the start of the buffer.
  c->parser.set_head_request(request.method == "HEAD");
  c->pos = c->end = c->head_end = 0;
  constexpr const char* kOp = "http::Client response";
  for (;;) {
    const Parser::Step s = c->parser.parse(c->unparsed());
    c->pos += s.consumed;
    if (s.event == Parser::Event::head) {
      const int st = c->parser.status();
      if (st >= 100 && st < 200 && st != 101) continue;  // informational: its message, then the real head
      c->head_end = c->pos;
      ClientResponse response(this, std::move(c), reused);
      response.sent_ns_ = sent_ns;
      return response;
    }
    if (s.event == Parser::Event::message) continue;  // the end of an informational response
    if (s.event == Parser::Event::error) return protocol_error(kOp, c->parser);
    if (s.event == Parser::Event::body) return sys::Error(kOp, EPROTO, nullptr, "body bytes before the head");
    if (c->end == c->cap) return sys::Error(kOp, EMSGSIZE, nullptr, "the response head fills the read buffer");
    auto n = c->stream.read(std::as_writable_bytes(std::span(c->buf.get() + c->end, c->cap - c->end)), token);
    if (!n || *n == 0) {
      // A pooled connection the server closed as we sent: nothing arrived.
      *retryable = reused && c->end == 0 && (n ? true : !n.error().is(ECANCELED) && !n.error().is(ETIMEDOUT));
      if (!n) return renamed(kOp, n.error());
      return sys::Error(kOp, ECONNRESET, nullptr, "the connection closed before the response head");
    }
    c->end += *n;
  }
}

void Client::release(std::unique_ptr<ClientConnection> conn, bool reusable) {
  Host& h = *conn->host;
  if (h.slots) h.slots->release();
  if (!reusable || options_.max_idle_per_host == 0 || options_.idle_timeout.count() <= 0) return;  // closes
  if (h.idle.size() >= options_.max_idle_per_host) h.idle.erase(h.idle.begin());  // the oldest goes
  conn->idle_since_ns = reactor::now_ns();
  h.idle.push_back(std::move(conn));
  arm_reaper();
}

void Client::arm_reaper() {
  if (reaper_.armed() || loop_ == nullptr) return;
  std::int64_t oldest = INT64_MAX;
  for (auto& [key, h] : hosts_) {
    if (!h->idle.empty()) oldest = std::min(oldest, h->idle.front()->idle_since_ns);
  }
  if (oldest == INT64_MAX) return;
  reaper_.deadline_ns = oldest + std::chrono::nanoseconds(options_.idle_timeout).count();
  loop_->add_timer(reaper_);
}

void Client::on_reap(reactor::Timer& t) {
  Client& self = *static_cast<Client*>(t.user);
  const std::int64_t cutoff = reactor::now_ns() - std::chrono::nanoseconds(self.options_.idle_timeout).count();
  for (auto& [key, h] : self.hosts_) {
    auto& idle = h->idle;
    const auto keep = std::find_if(idle.begin(), idle.end(), [&](const auto& c) { return c->idle_since_ns > cutoff; });
    self.stats_.idle_closed += static_cast<std::uint64_t>(keep - idle.begin());
    idle.erase(idle.begin(), keep);  // closes them
  }
  self.arm_reaper();
}

void Client::close_idle() {
  for (auto& [key, h] : hosts_) h->idle.clear();
  if (loop_ != nullptr && reaper_.armed()) loop_->cancel_timer(reaper_);
}

ClientStats Client::stats() const {
  ClientStats s = stats_;
  s.idle = 0;
  for (const auto& [key, h] : hosts_) s.idle += h->idle.size();
  return s;
}

}  // namespace ringo::net::http
