// The fiber dump of the whole process: every live fiber of every loop, as
// data (for /debug/fibers later) and as text (like a Go goroutine dump), and
// an opt-in SIGQUIT handler that prints it to stderr, as Go's runtime does
// (but without exiting: a server under investigation keeps serving).
//
//   std::string text = ringo::fiber::format_dump(ringo::fiber::dump_all_loops());
//   ringo::fiber::SigquitDump on_sigquit;   // kill -QUIT <pid> prints it while this lives
//
// How the data is gathered: a fiber's mutable fields belong to its loop's
// thread (scheduler.h), so each loop is asked, through its inbox, for its own
// snapshot; the caller waits for the answers up to a timeout. A loop that does
// not answer in time (a fiber computing without parking, a loop blocked in a
// system call) is listed as such, which is itself the diagnosis. The caller's
// own loop, if any, is read directly. Every scheduler registers itself in a
// process-wide list while it lives; the list's lock is held while posting, so
// a loop cannot be destroyed under a post (~Scheduler unregisters first).
//
// Rejected: stopping the world (Go's way; we have no safepoints), or reading
// other loops' fibers from the signal handler (data races with running loops,
// and nothing in a handler may allocate or lock).
#pragma once

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fiber/scheduler.h"
#include "syscall/fd.h"
#include "syscall/result.h"

namespace ringo::fiber {

struct LoopDump {
  int loop = 0;           // the loop's index
  bool answered = false;  // false: it did not answer within the timeout
  std::vector<FiberInfo> fibers;
};

// Every registered loop's fibers, by loop index. From a fiber this parks,
// from a plain thread it blocks, for at most `timeout`; on a loop's thread
// outside a fiber (a timer or completion callback) it aborts, as every
// blocking call there does (fiber/sync.h), unless it is the only loop.
std::vector<LoopDump> dump_all_loops(std::chrono::milliseconds timeout = std::chrono::seconds(1));
// The text form: a header per loop, then one line per fiber as
// Scheduler::dump() writes it.
std::string format_dump(const std::vector<LoopDump>& loops);

namespace detail {
// Called by each Scheduler's constructor and destructor.
void register_scheduler(Scheduler* s);
void unregister_scheduler(Scheduler* s);
}  // namespace detail

// While alive, SIGQUIT writes format_dump(dump_all_loops()) to stderr. One at
// a time per process; the previous SIGQUIT disposition is restored on
// destruction. The handler only writes a byte to a pipe; a thread of this
// object does the rest.
class SigquitDump {
 public:
  SigquitDump();  // throws std::system_error if the pipe or handler cannot be set up
  ~SigquitDump();
  SigquitDump(const SigquitDump&) = delete;
  SigquitDump& operator=(const SigquitDump&) = delete;

  // Dumps written so far (tests wait for it).
  int dumps() const;

 private:
  void run();
  void stop_thread();
  sys::Fd read_end_;
  sys::Fd write_end_;
  std::thread thread_;
};

}  // namespace ringo::fiber
