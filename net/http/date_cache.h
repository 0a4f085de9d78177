// The Date header's value ("Thu, 26 Nov 2026 16:10:16 GMT", RFC 9110
// 5.6.7 IMF-fixdate), formatted at most once per second per thread.
//
// Invariants: the returned view stays valid on the calling thread until the
// next call that sees a new second; the value is never older than the current
// wall-clock second as CLOCK_REALTIME_COARSE tells it (a few ms coarse).
//
// Rejected alternatives:
//  - Formatting per response (strftime + gmtime_r cost ~300 ns; a pipelined
//    batch of 16 would pay it 16 times for the same string).
//  - A timer per loop refreshing a shared string each second: wakes idle
//    loops once a second for nothing, and the loop layer knows no HTTP.
//    Checking the coarse clock (a vDSO read, no syscall) per response costs
//    a few ns and touches only this thread's cache.
//  - One process-wide cache: every loop would write the same cache line each
//    second and read it on every response, across cores.
// Thread-local is per loop here: each loop runs on its own thread.
#pragma once

#include <ctime>
#include <string_view>

namespace ringo::net::http {

// The current Date value (see above).
std::string_view http_date();

// Formats `t` (seconds since the epoch) as IMF-fixdate into out[29].
void format_http_date(std::time_t t, char (&out)[29]);

}  // namespace ringo::net::http
