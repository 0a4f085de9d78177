// SseReader (see sse_reader.h).
#include "net/sse/sse_reader.h"

#include <cerrno>

namespace ringo::net::sse {

sys::Result<OwnedEvent> SseReader::next(const CancelToken& token) {
  while (pending_.empty()) {
    auto piece = response_->read_some(token);
    if (!piece) return piece.error();
    if (piece->empty() && response_->done()) {
      return sys::Error("sse::SseReader::next", ENODATA, nullptr, "the event stream ended");
    }
    auto r = parser_.feed(*piece, [&](const ParsedEvent& e) {
      pending_.push_back(OwnedEvent{std::string(e.type), std::string(e.data), std::string(e.id)});
    });
    if (!r) return r.error();
  }
  OwnedEvent e = std::move(pending_.front());
  pending_.pop_front();
  return e;
}

}  // namespace ringo::net::sse
