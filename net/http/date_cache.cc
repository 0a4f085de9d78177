// The per-thread Date cache (date_cache.h).
#include "net/http/date_cache.h"

#include <time.h>

namespace ringo::net::http {

namespace {

struct DateCache {
  std::time_t second = -1;
  char text[29];
};

thread_local DateCache t_cache;

void put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

void format_http_date(std::time_t t, char (&out)[29]) {
  static constexpr char kDays[] = "SunMonTueWedThuFriSat";
  static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  std::tm tm;
  ::gmtime_r(&t, &tm);
  char* p = out;
  for (int i = 0; i < 3; ++i) *p++ = kDays[tm.tm_wday * 3 + i];
  *p++ = ',';
  *p++ = ' ';
  put2(p, tm.tm_mday);
  p += 2;
  *p++ = ' ';
  for (int i = 0; i < 3; ++i) *p++ = kMonths[tm.tm_mon * 3 + i];
  *p++ = ' ';
  const int year = tm.tm_year + 1900;
  put2(p, year / 100 % 100);
  put2(p + 2, year % 100);
  p += 4;
  *p++ = ' ';
  put2(p, tm.tm_hour);
  p[2] = ':';
  put2(p + 3, tm.tm_min);
  p[5] = ':';
  put2(p + 6, tm.tm_sec);
  p += 8;
  *p++ = ' ';
  *p++ = 'G';
  *p++ = 'M';
  *p++ = 'T';
}

std::string_view http_date() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  DateCache& c = t_cache;
  if (ts.tv_sec != c.second) {
    format_http_date(ts.tv_sec, c.text);
    c.second = ts.tv_sec;
  }
  return {c.text, sizeof c.text};
}

}  // namespace ringo::net::http
