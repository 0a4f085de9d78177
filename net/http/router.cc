// Router (router.h): pre-split patterns, a linear scan in precedence order.
#include "net/http/router.h"

#include <stdexcept>

namespace ringo::net::http {

namespace {

[[noreturn]] void bad_pattern(std::string_view pattern, const char* why) {
  throw std::invalid_argument("http::Router: pattern \"" + std::string(pattern) + "\": " + why);
}

}  // namespace

std::vector<Router::Segment> Router::split_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') bad_pattern(pattern, "must start with '/'");
  std::vector<Segment> segments;
  std::size_t params = 0;
  std::string_view rest = pattern.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (!segments.empty() && segments.back().kind == Segment::Kind::rest) {
      bad_pattern(pattern, "\"{name...}\" must be the last segment");
    }
    if (!seg.empty() && seg.front() == '{') {
      if (seg.size() < 3 || seg.back() != '}') bad_pattern(pattern, "a parameter is \"{name}\" or \"{name...}\"");
      std::string_view name = seg.substr(1, seg.size() - 2);
      Segment::Kind kind = Segment::Kind::param;
      if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
        name.remove_suffix(3);
        kind = Segment::Kind::rest;
      }
      if (name.empty() || name.find_first_of("{}/.") != std::string_view::npos) {
        bad_pattern(pattern, "a parameter name is empty or holds '{', '}', '/' or '.'");
      }
      if (++params > PathParams::kMaxParams) bad_pattern(pattern, "more than PathParams::kMaxParams parameters");
      segments.push_back({kind, std::string(name)});
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) bad_pattern(pattern, "'{' or '}' inside a literal");
      segments.push_back({Segment::Kind::literal, std::string(seg)});
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return segments;
}

bool Router::more_specific(const Route& a, const Route& b) {
  const std::size_t n = std::min(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a.segments[i].kind != b.segments[i].kind) return a.segments[i].kind < b.segments[i].kind;
  }
  return false;
}

Router& Router::add(std::string_view method, std::string_view pattern, Handler handler) {
  if (method.empty()) throw std::invalid_argument("http::Router: empty method");
  if (!handler) throw std::invalid_argument("http::Router: empty handler for " + std::string(pattern));
  Route route{std::string(method), std::string(pattern), true, split_pattern(pattern), std::move(handler)};
  for (const Segment& s : route.segments) route.all_literal = route.all_literal && s.kind == Segment::Kind::literal;
  for (const Route& r : routes_) {
    if (r.method != route.method || r.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < r.segments.size() && same; ++i) {
      const Segment& x = r.segments[i];
      const Segment& y = route.segments[i];
      same = x.kind == y.kind && (x.kind != Segment::Kind::literal || x.text == y.text);
    }
    if (same) {
      throw std::invalid_argument("http::Router: " + route.method + " " + route.pattern + " conflicts with " +
                                  r.method + " " + r.pattern);
    }
  }
  auto at = routes_.begin();
  while (at != routes_.end() && !more_specific(route, *at)) ++at;
  routes_.insert(at, std::move(route));
  return *this;
}

bool Router::path_matches(const Route& route, std::string_view path, PathParams* params) {
  if (route.all_literal) return route.pattern == path;
  if (path.empty() || path.front() != '/') return false;
  std::string_view rest = path.substr(1);
  bool have = true;  // a segment (possibly empty) remains to be read
  for (const Segment& seg : route.segments) {
    if (!have) return false;
    if (seg.kind == Segment::Kind::rest) {
      if (rest.empty()) return false;
      if (params != nullptr) params->add(seg.text, rest);
      return true;
    }
    const std::size_t slash = rest.find('/');
    const std::string_view cur = rest.substr(0, slash);
    if (slash == std::string_view::npos) {
      have = false;
      rest = {};
    } else {
      rest.remove_prefix(slash + 1);
    }
    if (seg.kind == Segment::Kind::literal) {
      if (cur != seg.text) return false;
    } else {
      if (cur.empty()) return false;
      if (params != nullptr) params->add(seg.text, cur);
    }
  }
  return !have;
}

Router::Match Router::match(std::string_view method, std::string_view path, PathParams& params,
                            std::string* allow) const {
  bool path_known = false;
  for (const Route& r : routes_) {
    params.clear();
    if (!path_matches(r, path, &params)) continue;
    if (r.method == method) return {&r.handler, 200};
    path_known = true;
  }
  if (path_known && method == "HEAD") {
    for (const Route& r : routes_) {
      params.clear();
      if (r.method == "GET" && path_matches(r, path, &params)) return {&r.handler, 200};
    }
  }
  params.clear();
  if (!path_known) return {nullptr, 404};
  if (allow != nullptr) build_allow(path, *allow);
  return {nullptr, 405};
}

void Router::build_allow(std::string_view path, std::string& allow) const {
  allow.clear();
  auto has = [&allow](std::string_view m) {
    std::string_view rest = allow;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(", ");
      if (rest.substr(0, comma) == m) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 2);
    }
    return false;
  };
  auto put = [&](std::string_view m) {
    if (has(m)) return;
    if (!allow.empty()) allow += ", ";
    allow += m;
  };
  for (const Route& r : routes_) {
    if (!path_matches(r, path, nullptr)) continue;
    put(r.method);
    if (r.method == "GET") put("HEAD");
  }
}

}  // namespace ringo::net::http
