// hello: the TechEmpower plaintext and JSON tests on ringo's HTTP server.
//
//   build/release/examples/hello --port 8080 --threads 1 --backend uring --cpus 0
//   wrk -t1 -c64 -d5s http://127.0.0.1:8080/plaintext
//
//   GET /plaintext  -> 200 "Hello, World!"                (text/plain)
//   GET /json       -> 200 {"message":"Hello, World!"}    (application/json)
//
// The JSON body is serialized per request, as the benchmark's rules demand
// (no cached response bytes); fmt with a compile-time format string is
// enough for one string field. SIGINT/SIGTERM stop the server cleanly: every
// connection is cancelled and waited for, then the loops stop.
#include <cstdio>
#include <string_view>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "examples/common/server_main.h"
#include "net/http/server.h"

using namespace ringo;

namespace {

// Appends `s` as a JSON string (quotes and escapes).
void append_json_string(fmt::memory_buffer& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), FMT_COMPILE("\\u{:04x}"), static_cast<unsigned>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

net::http::Router routes() {
  net::http::Router router;
  router.get("/plaintext", [](net::http::Request&, net::http::ResponseWriter& w) {
    w.send(200, "text/plain", "Hello, World!");
  });
  router.get("/json", [](net::http::Request&, net::http::ResponseWriter& w) {
    fmt::memory_buffer body;
    body.append(std::string_view("{\"message\":"));
    append_json_string(body, "Hello, World!");
    body.push_back('}');
    w.send(200, "application/json", std::string_view(body.data(), body.size()));
  });
  return router;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::ServerFlags flags = examples::parse_server_flags(
      argc, argv, "Serves GET /plaintext and GET /json (the TechEmpower tests).\n");
  auto group = examples::start_loops(flags);

  net::http::ServerOptions options;
  options.tcp.address = examples::listen_address(flags);
  options.tcp.name = "hello";
  auto server = net::http::Server::start(*group, options, routes());
  return examples::serve_until_signal("hello", std::move(server), *group);
}
