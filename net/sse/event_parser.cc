// EventParser: the WHATWG text/event-stream parsing rules (see event_parser.h).
#include "net/sse/event_parser.h"

#include <cerrno>
#include <cstring>

namespace ringo::net::sse {

namespace {

constexpr std::string_view kBom("\xEF\xBB\xBF", 3);

sys::Error too_big(const char* what) { return sys::Error("sse::EventParser::feed", EMSGSIZE, what); }

const char* find_eol(const char* p, const char* end) {
  while (p != end && *p != '\n' && *p != '\r') ++p;
  return p;
}

}  // namespace

sys::Result<void> EventParser::feed_impl(std::string_view bytes, Sink sink) {
  if (failed_) return too_big("(an earlier line or event was over the limit)");
  if (!started_) {
    // The BOM may arrive split across pieces: hold back a prefix of it.
    const std::size_t take = std::min(bytes.size(), kBom.size() - partial_.size());
    partial_.append(bytes.substr(0, take));
    if (kBom.substr(0, partial_.size()) == partial_) {
      if (partial_.size() < kBom.size()) return {};
      partial_.clear();
      bytes.remove_prefix(take);
    } else {
      // Not a BOM: the held bytes (no line ends among them: they began a
      // BOM) start the first line; the rest of `bytes` follows them.
      partial_.resize(partial_.size() - take);
    }
    started_ = true;
  }
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  if (after_cr_) {
    after_cr_ = false;
    if (p != end && *p == '\n') ++p;
  }
  while (p != end) {
    const char* q = find_eol(p, end);
    const std::size_t n = static_cast<std::size_t>(q - p);
    if (partial_.size() + n > limits_.max_line) {
      failed_ = true;
      return too_big("(a line over Limits::max_line)");
    }
    if (q == end) {
      partial_.append(p, n);
      break;
    }
    sys::Result<void> r;
    if (partial_.empty()) {
      r = line(std::string_view(p, n), sink);
    } else {
      partial_.append(p, n);
      r = line(partial_, sink);
      partial_.clear();
    }
    if (!r) {
      failed_ = true;
      return r;
    }
    if (*q == '\r') {
      if (q + 1 == end) {
        after_cr_ = true;
        break;
      }
      p = q + (q[1] == '\n' ? 2 : 1);
    } else {
      p = q + 1;
    }
  }
  return {};
}

sys::Result<void> EventParser::line(std::string_view l, const Sink& sink) {
  if (l.empty()) {
    if (data_.empty()) {
      type_.clear();
      return {};
    }
    data_.pop_back();  // the last data line's "\n"
    ++events_;
    const ParsedEvent e{type_.empty() ? std::string_view("message") : std::string_view(type_), data_, last_id_};
    sink.call(sink.fn, e);
    data_.clear();
    type_.clear();
    return {};
  }
  if (l.front() == ':') {
    ++comments_;
    return {};
  }
  const std::size_t colon = l.find(':');
  const std::string_view field = l.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > limits_.max_data) return too_big("(an event's data over Limits::max_data)");
    data_.append(value).push_back('\n');
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    if (value.empty() || value.size() > 18) return {};
    std::int64_t ms = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return {};
      ms = ms * 10 + (c - '0');
    }
    retry_ = std::chrono::milliseconds(ms);
  }
  return {};
}

}  // namespace ringo::net::sse
