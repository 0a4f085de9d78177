// Router: maps method + path to a Handler, with path parameters.
//
//   http::Router r;
//   r.get("/plaintext", plaintext);
//   r.get("/v1/models/{id}", get_model);        // req.param("id")
//   r.post("/v1/chat/completions", chat);
//   r.get("/static/{path...}", files);          // the rest of the path, slashes included
//
// Matching: the path (without the query) is split at '/'; a literal segment
// matches itself, "{name}" any non-empty segment, "{name...}" (last only) the
// non-empty rest. When several patterns match, the more literal one wins,
// compared segment by segment from the left ("/v1/models/list" before
// "/v1/models/{id}"). No route's pattern matches: 404. Some match, but none
// for this method: 405, with an Allow field listing the methods that would
// (HEAD included wherever GET is). A HEAD request without a HEAD route runs
// the GET route; the server sends the head only.
//
// Invariants:
//  - match() never allocates: patterns are pre-split at add(), the path is
//    walked in place, parameters go to PathParams' inline slots. Only the
//    405 path builds its Allow string.
//  - A Router is immutable once the server starts (Server::start takes it by
//    value), so every loop reads it without locks.
//  - add() throws std::invalid_argument for a malformed pattern (not starting
//    with '/', an empty or unclosed "{}", "{x...}" not last, more than
//    PathParams::kMaxParams parameters) or a method + pattern already added:
//    a setup error, reported where the routes are written.
//
// Rejected: a radix tree (httprouter): faster with hundreds of routes, but an
// API server has tens, where a linear scan over pre-split patterns, with a
// whole-path compare for the all-literal ones, is as fast and much simpler;
// regular expressions (slow, and an allocation per match in std::regex).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http/request.h"
#include "net/http/response.h"

namespace ringo::net::http {

using Handler = std::function<void(Request&, ResponseWriter&)>;

class Router {
 public:
  struct Match {
    const Handler* handler = nullptr;  // null: see status
    int status = 200;                  // 200, 404 or 405
  };

  Router& add(std::string_view method, std::string_view pattern, Handler handler);
  Router& get(std::string_view pattern, Handler h) { return add("GET", pattern, std::move(h)); }
  Router& post(std::string_view pattern, Handler h) { return add("POST", pattern, std::move(h)); }
  Router& put(std::string_view pattern, Handler h) { return add("PUT", pattern, std::move(h)); }
  Router& patch(std::string_view pattern, Handler h) { return add("PATCH", pattern, std::move(h)); }
  Router& del(std::string_view pattern, Handler h) { return add("DELETE", pattern, std::move(h)); }

  // Finds the route for `method` and `path`, filling `params` (cleared
  // first). With status 405 and a non-null `allow`, writes the Allow value
  // ("GET, HEAD, POST") there.
  Match match(std::string_view method, std::string_view path, PathParams& params, std::string* allow = nullptr) const;

  std::size_t size() const { return routes_.size(); }

 private:
  struct Segment {
    enum class Kind : std::uint8_t { literal, param, rest };  // the order is the precedence
    Kind kind;
    std::string text;  // the literal, or the parameter's name
  };
  struct Route {
    std::string method;
    std::string pattern;
    bool all_literal;
    std::vector<Segment> segments;
    Handler handler;
  };

  static std::vector<Segment> split_pattern(std::string_view pattern);
  static bool more_specific(const Route& a, const Route& b);
  static bool path_matches(const Route& route, std::string_view path, PathParams* params);
  void build_allow(std::string_view path, std::string& allow) const;

  std::vector<Route> routes_;  // most specific first
};

}  // namespace ringo::net::http
