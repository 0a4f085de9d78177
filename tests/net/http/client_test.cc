// http::Client against a scripted server (a TcpListener and a fiber per
// connection answering with fixed bytes), on both backends: keep-alive reuse,
// Content-Length / chunked / close-delimited bodies, streaming, stale pooled
// connections, idle reaping, errors and timeouts; and SseReader over it.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/sync.h"
#include "net/http/client.h"
#include "net/sse/sse_reader.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "tests/fiber/fiber_fixture.h"

namespace ringo::net::http {
namespace {

using namespace std::chrono_literals;

class ClientTest : public fiber::testing::FiberLoopTest {};

struct SeenRequest {
  std::string head;
  std::string body;
};

// Answers each request on a connection with respond(conn, request, index
// on that connection); respond returns false to close the connection.
using Respond = std::function<bool(TcpStream&, const SeenRequest&, int)>;

class ScriptedServer {
 public:
  explicit ScriptedServer(Respond respond)
      : listener_(TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value()), respond_(std::move(respond)) {
    acceptor_ = go([this] {
      while (auto conn = listener_.accept(stop_.token())) {
        ++connections;
        wg_.add(1);
        go([this, c = std::make_shared<TcpStream>(std::move(*conn))] {
          serve(*c);
          wg_.done();
        });
      }
    });
  }
  ~ScriptedServer() {
    stop_.cancel();
    acceptor_.join();
    (void)wg_.wait();
  }
  sys::SockAddr address() const { return listener_.local_address().value(); }
  int connections = 0;
  std::vector<SeenRequest> requests;

 private:
  void serve(TcpStream& c) {
    BufferedReader r(c, 16 * 1024);
    for (int i = 0;; ++i) {
      SeenRequest req;
      std::size_t length = 0;
      for (;;) {
        auto line = r.read_line(stop_.token());
        if (!line) return;
        if (line->empty()) break;
        req.head.append(*line).append("\n");
        if (line->rfind("Content-Length: ", 0) == 0) length = std::stoul(std::string(line->substr(16)));
      }
      req.body.resize(length);
      if (length > 0 && !r.read_exact(std::as_writable_bytes(std::span(req.body.data(), length)), stop_.token())) {
        return;
      }
      requests.push_back(req);
      if (!respond_(c, req, i)) return;
    }
  }

  TcpListener listener_;
  Respond respond_;
  CancelSource stop_;
  fiber::WaitGroup wg_;
  JoinHandle<void> acceptor_;
};

bool put(TcpStream& c, std::string_view bytes) { return c.write_all(bytes).ok(); }

TEST_P(ClientTest, ContentLengthBodiesReuseOneConnection) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int i) {
      return put(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Seq: " + std::to_string(i) + "\r\n\r\nhello" +
                        std::to_string(i));
    });
    Client client;
    for (int i = 0; i < 3; ++i) {
      auto r = client.get(server.address(), "/a?b=c");
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->status(), 200);
      EXPECT_EQ(r->reason(), "OK");
      EXPECT_EQ(r->header("x-seq").value_or(""), std::to_string(i));
      EXPECT_EQ(r->reused(), i > 0);
      EXPECT_EQ(r->read_all().value(), "hello" + std::to_string(i));
    }
    EXPECT_EQ(server.connections, 1);
    EXPECT_EQ(client.stats().connects, 1u);
    EXPECT_EQ(client.stats().reuses, 2u);
    EXPECT_EQ(client.stats().idle, 1u);
    ASSERT_EQ(server.requests.size(), 3u);
    EXPECT_EQ(server.requests[0].head, "GET /a?b=c HTTP/1.1\nHost: " + server.address().to_string() + "\n");
  });
}

TEST_P(ClientTest, PostSendsHeadersAndBody) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest& req, int) {
      return put(c, "HTTP/1.1 201 Created\r\nContent-Length: " + std::to_string(req.body.size()) + "\r\n\r\n" +
                        req.body);
    });
    Client client;
    const HeaderField fields[] = {{"Content-Type", "application/json"}, {"X-Trace", "7"}};
    auto r = client.send(server.address(),
                         {.method = "POST", .target = "/v1/x", .host = "example", .headers = fields, .body = "{\"a\":1}"});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->status(), 201);
    EXPECT_EQ(r->read_all().value(), "{\"a\":1}");
    EXPECT_EQ(server.requests.at(0).head,
              "POST /v1/x HTTP/1.1\nHost: example\nContent-Type: application/json\nX-Trace: 7\nContent-Length: 7\n");
  });
}

TEST_P(ClientTest, ChunkedBodyStreamsPieceByPiece) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int) {
      if (!put(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")) return false;
      this_fiber::sleep_for(20ms);
      return put(c, "6\r\nsecond\r\n0\r\n\r\n");
    });
    Client client;
    {
      auto r = client.get(server.address(), "/");
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->read_some().value(), "first");  // before the second chunk was even written
      EXPECT_EQ(r->read_some().value(), "second");
      EXPECT_EQ(r->read_some().value(), "");
      EXPECT_TRUE(r->done());
    }
    auto r = client.get(server.address(), "/again");  // the connection went back to the pool
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->reused());
    EXPECT_EQ(r->read_all().value(), "firstsecond");
  });
}

TEST_P(ClientTest, CloseDelimitedBodyEndsAtTheCloseAndIsNotPooled) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int) {
      put(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
      return false;
    });
    Client client;
    {
      auto r = client.get(server.address(), "/");
      ASSERT_TRUE(r.ok()) << r.error().message();
      EXPECT_EQ(r->read_all().value(), "until the end");
    }
    EXPECT_EQ(client.stats().idle, 0u);
  });
}

TEST_P(ClientTest, PooledConnectionClosedByTheServerIsReplaced) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int) {
      put(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      return false;  // claims keep-alive, closes anyway (an idle timeout)
    });
    Client client;
    for (int i = 0; i < 3; ++i) {
      {
        auto r = client.get(server.address(), "/");
        ASSERT_TRUE(r.ok()) << i << ": " << r.error().message();
        EXPECT_EQ(r->read_all().value(), "ok");
      }
      this_fiber::sleep_for(5ms);  // the FIN arrives
    }
    EXPECT_EQ(server.connections, 3);
    EXPECT_GE(client.stats().stale + client.stats().retries, 2u);
  });
}

TEST_P(ClientTest, IdleConnectionsAreClosedAfterTheTimeoutAndBounded) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int) {
      this_fiber::sleep_for(5ms);
      return put(c, "HTTP/1.1 204 No Content\r\n\r\n");
    });
    ClientOptions o;
    o.idle_timeout = 30ms;
    o.max_idle_per_host = 1;
    Client client(o);
    auto one = go([&] { return client.get(server.address(), "/").value().status(); });
    auto two = go([&] { return client.get(server.address(), "/").value().status(); });
    EXPECT_EQ(one.join(), 204);
    EXPECT_EQ(two.join(), 204);
    EXPECT_EQ(server.connections, 2);
    EXPECT_EQ(client.stats().idle, 1u);  // the bound closed the other
    this_fiber::sleep_for(80ms);
    EXPECT_EQ(client.stats().idle, 0u);
    EXPECT_EQ(client.stats().idle_closed, 1u);
  });
}

TEST_P(ClientTest, MaxConnsPerHostMakesRequestsWait) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int) {
      this_fiber::sleep_for(10ms);
      return put(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    });
    ClientOptions o;
    o.max_conns_per_host = 1;
    Client client(o);
    std::vector<JoinHandle<std::string>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(go([&] { return client.get(server.address(), "/").value().read_all().value(); }));
    for (auto& h : hs) EXPECT_EQ(h.join(), "x");
    EXPECT_EQ(server.connections, 1);
  });
}

TEST_P(ClientTest, ErrorsNameTheStep) {
  run_main([] {
    Client client;
    // Refused: a port nobody listens on (bound, not listening).
    auto l = TcpListener::listen(sys::SockAddr::ipv4_loopback(0)).value();
    auto addr = l.local_address().value();
    { TcpListener gone = std::move(l); }
    auto refused = client.get(addr, "/");
    ASSERT_FALSE(refused.ok());
    EXPECT_TRUE(refused.error().is(ECONNREFUSED)) << refused.error().message();
    EXPECT_NE(refused.error().message().find("http::Client connect"), std::string::npos);

    ScriptedServer silent([](TcpStream&, const SeenRequest&, int) {
      this_fiber::sleep_for(200ms);
      return false;
    });
    auto late = client.get(silent.address(), "/", CancelToken().with_timeout(30ms));
    ASSERT_FALSE(late.ok());
    EXPECT_TRUE(late.error().is(ETIMEDOUT)) << late.error().message();

    ScriptedServer garbage([](TcpStream& c, const SeenRequest&, int) {
      put(c, "SMTP ready\r\n\r\n");
      return false;
    });
    auto bad = client.get(garbage.address(), "/");
    ASSERT_FALSE(bad.ok());
    EXPECT_TRUE(bad.error().is(EPROTO)) << bad.error().message();

    ScriptedServer cut([](TcpStream& c, const SeenRequest&, int) {
      put(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
      return false;
    });
    auto r = client.get(cut.address(), "/");
    ASSERT_TRUE(r.ok());
    auto body = r->read_all();
    ASSERT_FALSE(body.ok());
    EXPECT_TRUE(body.error().is(ECONNRESET)) << body.error().message();
  });
}

TEST_P(ClientTest, SseReaderOverAChunkedStream) {
  run_main([] {
    ScriptedServer server([](TcpStream& c, const SeenRequest&, int) {
      put(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
      put(c, "e\r\nid: 1\ndata: a\n\r\n");
      this_fiber::sleep_for(5ms);
      put(c, "14\r\n\nevent: x\ndata: b\nda\r\n");
      put(c, "7\r\nta: c\n\n\r\n0\r\n\r\n");
      return true;
    });
    Client client;
    auto r = client.get(server.address(), "/events");
    ASSERT_TRUE(r.ok()) << r.error().message();
    sse::SseReader reader(*r);
    auto e1 = reader.next().value();
    EXPECT_EQ(e1.id, "1");
    EXPECT_EQ(e1.data, "a");
    auto e2 = reader.next().value();
    EXPECT_EQ(e2.type, "x");
    EXPECT_EQ(e2.data, "b\nc");
    EXPECT_EQ(e2.id, "1");
    auto end = reader.next();
    ASSERT_FALSE(end.ok());
    EXPECT_TRUE(end.error().is(ENODATA));
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientTest, reactor::testing::kAllBackends, reactor::testing::backend_name);

}  // namespace
}  // namespace ringo::net::http
