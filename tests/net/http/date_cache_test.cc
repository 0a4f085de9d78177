// The Date cache: IMF-fixdate formatting, and one formatting per second.
#include "net/http/date_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace ringo::net::http {
namespace {

TEST(HttpDate, FormatsImfFixdate) {
  char out[29];
  format_http_date(0, out);
  EXPECT_EQ(std::string(out, 29), "Thu, 01 Jan 1970 00:00:00 GMT");
  format_http_date(784111777, out);  // RFC 9110's example
  EXPECT_EQ(std::string(out, 29), "Sun, 06 Nov 1994 08:49:37 GMT");
  format_http_date(1795709416, out);
  EXPECT_EQ(std::string(out, 29), "Thu, 26 Nov 2026 16:10:16 GMT");
}

TEST(HttpDate, CachedWithinTheSecond) {
  const std::string_view a = http_date();
  const std::string_view b = http_date();
  EXPECT_EQ(a.data(), b.data());  // the same buffer, not reformatted into another
  EXPECT_EQ(a.size(), 29u);
  EXPECT_EQ(a.substr(25), " GMT");
}

}  // namespace
}  // namespace ringo::net::http
