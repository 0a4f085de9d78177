// SseStream's HTTP side: the response head over a hijacked connection, the
// writer's hang-up watch, Last-Event-ID (see sse_stream.h). A file of its own
// so that the stream's core does not pull the HTTP server into programs that
// use it over a plain TcpStream.
#include "net/http/request.h"
#include "net/http/response.h"
#include "net/sse/sse_stream.h"

namespace ringo::net::sse {

namespace {

// The writer's part, before anything else of the stream is made: the fields
// of an event stream, the hang-up watch (which cancels request.token()), and
// the connection.
TcpStream& take_over(http::ResponseWriter& w, bool watch_hangup) {
  w.set_header("Content-Type", "text/event-stream");
  w.set_header("Cache-Control", "no-cache");
  w.set_header("X-Accel-Buffering", "no");  // nginx: pass events through unbuffered
  if (watch_hangup) (void)w.watch_hangup();
  return w.hijack();
}

}  // namespace

SseStream::SseStream(http::Request& request, http::ResponseWriter& writer, StreamOptions options)
    : conn_(&take_over(writer, options.watch_hangup)), options_(options), source_(request.token()) {
  writer_ = &writer;
  options_.watch_hangup = false;  // the writer's watch does it
  if (auto id = request.header("Last-Event-ID")) last_event_id_.assign(*id);
  next_ = writer.stream_head();
  release_sent_buffer_ = true;
  init();
  if (!failed_) {
    flush_scheduled_ = true;  // the head leaves at the next turn, or with the first event
    loop_->schedule(flush_);
  }
}

}  // namespace ringo::net::sse
