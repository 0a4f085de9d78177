// http::Router: literal and parameter patterns, precedence, 404, 405 with
// Allow, HEAD falling back to GET, and pattern errors.
#include "net/http/router.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace ringo::net::http {
namespace {

Handler tagged(std::string* out, std::string tag) {
  return [out, tag](Request&, ResponseWriter&) { *out = tag; };
}

// Runs the handler that matches and returns its tag ("" when none).
std::string route(const Router& r, std::string_view method, std::string_view path, PathParams* params = nullptr,
                  int* status = nullptr, std::string* allow = nullptr) {
  PathParams local;
  PathParams& p = params != nullptr ? *params : local;
  const Router::Match m = r.match(method, path, p, allow);
  if (status != nullptr) *status = m.status;
  if (m.handler == nullptr) return "";
  Request req;
  ResponseWriter w;
  (*m.handler)(req, w);
  return "ran";
}

TEST(HttpRouter, LiteralsParamsAndRest) {
  std::string hit;
  Router r;
  r.get("/", tagged(&hit, "root"));
  r.get("/plaintext", tagged(&hit, "plain"));
  r.get("/v1/models/{id}", tagged(&hit, "model"));
  r.get("/v1/models/list", tagged(&hit, "list"));
  r.get("/v1/{a}/x/{b}", tagged(&hit, "ab"));
  r.get("/static/{path...}", tagged(&hit, "static"));
  PathParams p;

  EXPECT_EQ(route(r, "GET", "/", &p), "ran");
  EXPECT_EQ(hit, "root");
  EXPECT_EQ(route(r, "GET", "/plaintext", &p), "ran");
  EXPECT_EQ(hit, "plain");
  EXPECT_EQ(route(r, "GET", "/v1/models/gpt-4", &p), "ran");
  EXPECT_EQ(hit, "model");
  EXPECT_EQ(p.find("id"), "gpt-4");
  EXPECT_EQ(route(r, "GET", "/v1/models/list", &p), "ran");
  EXPECT_EQ(hit, "list");  // the literal wins over {id}
  EXPECT_EQ(p.size(), 0u);
  EXPECT_EQ(route(r, "GET", "/v1/q/x/w", &p), "ran");
  EXPECT_EQ(hit, "ab");
  EXPECT_EQ(p.find("a"), "q");
  EXPECT_EQ(p.find("b"), "w");
  EXPECT_EQ(route(r, "GET", "/static/css/site.css", &p), "ran");
  EXPECT_EQ(hit, "static");
  EXPECT_EQ(p.find("path"), "css/site.css");
}

TEST(HttpRouter, NotFound) {
  std::string hit;
  Router r;
  r.get("/v1/models/{id}", tagged(&hit, "model"));
  r.get("/static/{path...}", tagged(&hit, "static"));
  int status = 0;
  for (const char* path : {"/v1/models", "/v1/models/", "/v1/models/a/b", "/other", "/static/", "/static", ""}) {
    EXPECT_EQ(route(r, "GET", path, nullptr, &status), "") << path;
    EXPECT_EQ(status, 404) << path;
  }
}

TEST(HttpRouter, MethodNotAllowedListsAllow) {
  std::string hit;
  Router r;
  r.get("/items/{id}", tagged(&hit, "get"));
  r.put("/items/{id}", tagged(&hit, "put"));
  r.del("/items/{id}", tagged(&hit, "del"));
  r.post("/items", tagged(&hit, "post"));
  int status = 0;
  std::string allow;
  EXPECT_EQ(route(r, "POST", "/items/3", nullptr, &status, &allow), "");
  EXPECT_EQ(status, 405);
  EXPECT_EQ(allow, "GET, HEAD, PUT, DELETE");
  EXPECT_EQ(route(r, "GET", "/items", nullptr, &status, &allow), "");
  EXPECT_EQ(status, 405);
  EXPECT_EQ(allow, "POST");
  EXPECT_EQ(route(r, "DELETE", "/items/3", nullptr, &status), "ran");
  EXPECT_EQ(hit, "del");
}

TEST(HttpRouter, HeadFallsBackToGetUnlessItHasItsOwn) {
  std::string hit;
  Router r;
  r.get("/a", tagged(&hit, "get-a"));
  r.get("/b", tagged(&hit, "get-b"));
  r.add("HEAD", "/b", tagged(&hit, "head-b"));
  PathParams p;
  EXPECT_EQ(route(r, "HEAD", "/a", &p), "ran");
  EXPECT_EQ(hit, "get-a");
  EXPECT_EQ(route(r, "HEAD", "/b", &p), "ran");
  EXPECT_EQ(hit, "head-b");
}

TEST(HttpRouter, BadPatternsThrow) {
  Router r;
  auto h = [](Request&, ResponseWriter&) {};
  EXPECT_THROW(r.get("nope", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a/{", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a/{}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a/{x...}/b", h), std::invalid_argument);
  EXPECT_THROW(r.get("/a/b{x}", h), std::invalid_argument);
  EXPECT_THROW(r.get("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h), std::invalid_argument);
  r.get("/a/{x}", h);
  EXPECT_THROW(r.get("/a/{y}", h), std::invalid_argument);  // the same route, renamed
  r.post("/a/{y}", h);                                      // another method: fine
  EXPECT_EQ(r.size(), 2u);
}

TEST(HttpRequest, QueryParamsAndPercentDecoding) {
  EXPECT_EQ(decode_percent("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(decode_percent("a+b", true), "a b");
  EXPECT_EQ(decode_percent("a+b"), "a+b");
  EXPECT_FALSE(decode_percent("bad%2"));
  EXPECT_FALSE(decode_percent("bad%zz"));
}

}  // namespace
}  // namespace ringo::net::http
