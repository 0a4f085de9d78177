// Server-Sent Events framing (see event.h for the rules and why).
#include "net/sse/event.h"

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ringo::net::sse {

namespace {

// Calls fn(line) for each line of `text`, split at "\r\n", "\n" and "\r";
// a trailing line ending yields a last empty line; empty text is one empty line.
template <class Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  const char* p = text.data();
  const char* const end = p + text.size();
  for (;;) {
    const char* q = p;
    while (q != end && *q != '\n' && *q != '\r') ++q;
    fn(std::string_view(p, static_cast<std::size_t>(q - p)));
    if (q == end) return;
    p = q + ((*q == '\r' && q + 1 != end && q[1] == '\n') ? 2 : 1);
  }
}

void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

std::size_t number_size(std::int64_t v) {
  char buf[24];
  return static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v).ptr - buf);
}

bool valid(const Event& e) {
  return valid_event_type(e.event) && (!e.id || valid_id(*e.id)) && (!e.retry || e.retry->count() >= 0);
}

}  // namespace

bool valid_event_type(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

bool valid_id(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::size_t framed_size(const Event& e) {
  if (!valid(e)) return 0;
  std::size_t n = 1;  // the blank line
  if (!e.event.empty()) n += 8 + e.event.size();  // "event: " + "\n"
  if (e.id) n += 5 + e.id->size();                // "id: " + "\n"
  if (e.retry) n += 8 + number_size(e.retry->count());
  for_each_line(e.data, [&](std::string_view line) { n += 7 + line.size(); });  // "data: " + "\n"
  return n;
}

sys::Result<void> append_event(std::string& out, const Event& e) {
  if (!valid(e)) return sys::Error("sse::append_event", EINVAL, nullptr, "a newline in id or event, a NUL in id, or a negative retry");
  if (!e.event.empty()) {
    out.append("event: ", 7).append(e.event).push_back('\n');
  }
  if (e.id) {
    out.append("id: ", 4).append(*e.id).push_back('\n');
  }
  if (e.retry) {
    out.append("retry: ", 7);
    append_number(out, e.retry->count());
    out.push_back('\n');
  }
  for_each_line(e.data, [&](std::string_view line) { out.append("data: ", 6).append(line).push_back('\n'); });
  out.push_back('\n');
  return {};
}

void append_comment(std::string& out, std::string_view text) {
  if (text.empty()) {
    out.append(":\n", 2);
    return;
  }
  for_each_line(text, [&](std::string_view line) { out.append(": ", 2).append(line).push_back('\n'); });
}

void append_retry(std::string& out, std::chrono::milliseconds retry) {
  out.append("retry: ", 7);
  append_number(out, retry.count() < 0 ? 0 : retry.count());
  out.append("\n\n", 2);
}

}  // namespace ringo::net::sse
