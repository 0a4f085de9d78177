// Raw HTTP clients for the server tests: a blocking socket on the test's
// thread (the server runs on its own LoopGroup), bytes written exactly as
// given, responses read back with http::Parser in response mode.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "net/http/parser.h"
#include "syscall/socket.h"

namespace ringo::net::http::testing {

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;

  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (iequals(n, name)) return v;
    }
    return std::nullopt;
  }
};

class RawClient {
 public:
  explicit RawClient(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5))
      : parser_(Parser::Mode::response, {.max_head_bytes = 64 * 1024, .max_headers = 100, .max_body_bytes = 0}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    set_timeout(timeout);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

  void set_timeout(std::chrono::milliseconds t) {
    timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  // Writes all of `text` (one send for small amounts). False when the peer
  // is gone.
  bool send(std::string_view text) {
    while (!text.empty()) {
      const ssize_t n = ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Sends `text` a byte at a time, `gap` apart; stops when a send fails.
  bool trickle(std::string_view text, std::chrono::milliseconds gap) {
    for (char c : text) {
      if (!send(std::string_view(&c, 1))) return false;
      std::this_thread::sleep_for(gap);
    }
    return true;
  }

  // One recv into the unparsed buffer: bytes read, 0 at EOF, -1 on error
  // (timeout, reset).
  ssize_t recv_once() {
    char tmp[65536];
    ssize_t n;
    do {
      n = ::recv(fd_, tmp, sizeof tmp, 0);  // the loops' threads use signals: EINTR happens
    } while (n < 0 && errno == EINTR);
    if (n > 0) buf_.append(tmp, static_cast<std::size_t>(n));
    if (n == 0) eof_ = true;
    return n;
  }
  // The bytes received and not yet parsed.
  const std::string& raw() const { return buf_; }
  // Reads until `n` bytes are buffered (or EOF/error); returns them, consumed.
  std::string read_exact(std::size_t n) {
    while (buf_.size() < n && recv_once() > 0) {
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, out.size());
    return out;
  }

  // The next response; nullopt when the connection ended (or timed out)
  // before a whole one arrived.
  std::optional<Response> read_response(bool head_request = false) {
    parser_.set_head_request(head_request);
    Response r;
    std::size_t pos = 0;
    while (true) {
      const Parser::Step s = parser_.parse(std::string_view(buf_).substr(pos));
      pos += s.consumed;
      switch (s.event) {
        case Parser::Event::head:
          r.status = parser_.status();
          for (const HeaderField& h : parser_.headers()) r.headers.emplace_back(h.name, h.value);
          break;
        case Parser::Event::body:
          r.body.append(s.body);
          break;
        case Parser::Event::message:
          r.keep_alive = parser_.keep_alive();
          buf_.erase(0, pos);
          return r;
        case Parser::Event::error:
          ADD_FAILURE() << "bad response: " << parser_.error().message;
          return std::nullopt;
        case Parser::Event::need_more: {
          // Views into buf_ must survive the append: parse again from the
          // start of the message after growing (the parser is reset).
          if (eof_) {
            const Parser::Step f = parser_.finish();
            if (f.event == Parser::Event::message) {
              r.keep_alive = false;
              buf_.erase(0, pos);
              return r;
            }
            return std::nullopt;
          }
          const char* before = buf_.data();
          if (recv_once() <= 0 && !eof_) return std::nullopt;
          if (buf_.data() != before) parser_.rebase(before, before + pos, buf_.data() - before);
          break;
        }
      }
    }
  }

  // Whether the server closed the connection (EOF or reset) within the
  // receive timeout, with no further bytes before it.
  bool closed_without_data() {
    const std::size_t before = buf_.size();
    while (true) {
      const ssize_t n = recv_once();
      if (n == 0) {
        if (buf_.size() != before) ADD_FAILURE() << "data before the close: " << buf_.substr(before);
        return buf_.size() == before;
      }
      if (n < 0) {
        if (errno != ECONNRESET) ADD_FAILURE() << "recv: " << std::strerror(errno);
        return errno == ECONNRESET && buf_.size() == before;
      }
    }
  }
  // Reads until EOF; returns everything unparsed.
  std::string read_to_end() {
    while (recv_once() > 0) {
    }
    return std::exchange(buf_, {});
  }

 private:
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  Parser parser_;
};

}  // namespace ringo::net::http::testing
