// sse_load: a Server-Sent Events load generator on Ringo's HTTP client. K
// streams, one fiber each, spread over T loops; each opens a connection,
// GETs the path, and counts the events of the text/event-stream body until
// the server closes it.
//
//   sse_load --addr 127.0.0.1:8080 --path '/stream?events=300&interval_ms=10'
//            --streams 1000 --ramp-ms 1000 --threads 1 --timeout-s 60
//
// stdout gets exactly one line (bench/sse's script parses it):
//   SSE streams=K events=<n> seconds=<f> events_per_s=<f> ttfe_p50_ms=<f>
//   ttfe_p99_ms=<f> gap_p50_ms=<f> gap_p99_ms=<f> gap_max_ms=<f> errors=<n>
// stderr gets RLIMIT_NOFILE (the soft limit raised to the hard one first)
// and a breakdown of the errors.
//
// What is measured:
//  - ttfe: from the moment the request's last byte went to the kernel
//    (ClientResponse::request_sent_ns) to the arrival of the stream's first
//    event; per stream.
//  - gaps: arrival time differences of consecutive events of one stream,
//    over all streams. "Arrival" is the return of the read that brought the
//    event's last byte: events that came in one read share a time.
//  - seconds: from the first connect to the end of the last stream.
//  - errors: connect failures, non-200 answers, streams that ended with
//    fewer events than the path's events=N asked for (or broke, or hit the
//    --timeout-s deadline).
//
// Not the bottleneck, by construction: each read takes up to 32 KiB (all the
// events that arrived), events are parsed in place by sse::EventParser
// (no copy, no allocation per event), the clock is read once per read, and
// latencies go into log-linear histograms (1/128 relative resolution, a few
// thousand counters per loop) instead of vectors of samples. Each loop keeps
// its own counters; they are merged once at the end.
//
// Rejected: one thread per stream or an epoll loop of our own (the point is
// to exercise Ringo's client, and fibers make a stream a few lines); exact
// percentiles from sorted samples (10,000 streams x 1,000 events would be
// 80 MB of doubles for a figure a histogram gives to within 1%).
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/sync.h"
#include "net/http/client.h"
#include "net/sse/event_parser.h"
#include "reactor/clock.h"
#include "reactor/loop_group.h"
#include "syscall/cpu.h"
#include "syscall/socket.h"

namespace {

using namespace ringo;

// Log-linear histogram of non-negative integers (microseconds here): exact
// below 256, then 128 buckets per power of two (<= 0.8% relative error).
class Histogram {
 public:
  static constexpr int kSub = 128;
  static constexpr int kBuckets = 2 * kSub + 56 * kSub;

  void add(std::uint64_t v) {
    ++counts_[index(v)];
    ++total_;
  }
  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }
  std::uint64_t total() const { return total_; }
  // The value at quantile q (0..1): the middle of its bucket.
  double quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= std::max<std::uint64_t>(rank, 1)) return middle(i);
    }
    return middle(kBuckets - 1);
  }

 private:
  static int index(std::uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    const int e = 63 - __builtin_clzll(v) - 7;  // v >> e in [128, 256)
    return std::min(kBuckets - 1, 2 * kSub + (e - 1) * kSub + static_cast<int>((v >> e) - kSub));
  }
  static double middle(int i) {
    if (i < 2 * kSub) return i;
    const int e = (i - 2 * kSub) / kSub + 1;
    const double lo = static_cast<double>((static_cast<std::uint64_t>((i - 2 * kSub) % kSub) + kSub) << e);
    return lo + static_cast<double>(std::uint64_t{1} << e) / 2;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
};

struct Flags {
  std::string addr = "127.0.0.1:8080";
  std::string path = "/stream?events=10&interval_ms=100";
  long streams = 1;
  long ramp_ms = 0;
  long threads = 1;
  double timeout_s = 60;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "sse_load: %s\n"
               "usage: sse_load --addr HOST:PORT --path '/stream?events=N&interval_ms=M' --streams K\n"
               "                [--ramp-ms R] [--threads T] [--timeout-s S]\n",
               why);
  std::exit(2);
}

long parse_long(std::string_view flag, std::string_view v, long min, long max) {
  long out = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || out < min || out > max) {
    static std::string msg;
    msg = std::string(flag) + ": want an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
          "], got '" + std::string(v) + "'";
    usage(msg.c_str());
  }
  return out;
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    std::string_view v;
    if (auto eq = a.find('='); eq != std::string_view::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (a == "--help" || a == "-h") {
      usage("help");
    } else {
      if (i + 1 >= argc) usage(("missing value for " + std::string(a)).c_str());
      v = argv[++i];
    }
    if (a == "--addr") {
      f.addr = v;
    } else if (a == "--path") {
      if (v.empty() || v.front() != '/') usage("--path must start with '/'");
      f.path = v;
    } else if (a == "--streams") {
      f.streams = parse_long(a, v, 1, 10'000'000);
    } else if (a == "--ramp-ms") {
      f.ramp_ms = parse_long(a, v, 0, 3'600'000);
    } else if (a == "--threads") {
      f.threads = parse_long(a, v, 1, 1024);
    } else if (a == "--timeout-s") {
      f.timeout_s = static_cast<double>(parse_long(a, v, 1, 86'400));
    } else {
      usage(("unknown flag " + std::string(a)).c_str());
    }
  }
  return f;
}

sys::SockAddr parse_addr(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) usage("--addr: want HOST:PORT");
  const long port = parse_long("--addr port", std::string_view(addr).substr(colon + 1), 1, 65535);
  auto a = sys::SockAddr::parse(std::string_view(addr).substr(0, colon), static_cast<std::uint16_t>(port));
  if (!a) usage("--addr: HOST must be a numeric IPv4 or IPv6 address");
  return *a;
}

// events=N in the path's query, if any: the count each stream should deliver.
long expected_events(std::string_view path) {
  const auto q = path.find('?');
  if (q == std::string_view::npos) return 0;
  std::string_view query = path.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    if (kv.rfind("events=", 0) == 0) {
      long n = 0;
      auto v = kv.substr(7);
      if (std::from_chars(v.data(), v.data() + v.size(), n).ec == std::errc()) return n;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return 0;
}

void raise_nofile() {
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return;
  if (l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &l);
    (void)::getrlimit(RLIMIT_NOFILE, &l);
  }
  std::fprintf(stderr, "sse_load: RLIMIT_NOFILE soft=%llu hard=%llu\n", static_cast<unsigned long long>(l.rlim_cur),
               static_cast<unsigned long long>(l.rlim_max));
}

// Everything one loop's streams count (only that loop's thread writes it).
struct LoopResult {
  Histogram ttfe_us;
  Histogram gap_us;
  std::uint64_t events = 0;
  std::int64_t gap_max_ns = 0;
  std::int64_t end_ns = 0;
  std::uint64_t connect_errors = 0, status_errors = 0, read_errors = 0, short_streams = 0;
  std::string first_error;
};

struct Plan {
  sys::SockAddr addr;
  std::string path;
  long streams;
  long expected;
  std::int64_t start_ns;
  std::int64_t ramp_ns;
  CancelToken deadline;  // cancelled at --timeout-s
};

void note_error(LoopResult& r, const sys::Error& e) {
  if (r.first_error.empty()) r.first_error = e.message();
}

void run_stream(const Plan& plan, long index, net::http::Client& client, LoopResult& out) {
  const std::int64_t start = plan.start_ns + (plan.streams > 1 ? plan.ramp_ns * index / plan.streams : 0);
  this_fiber::sleep_until_ns(start);
  struct EndTime {  // every way out of the stream counts for `seconds`
    LoopResult& out;
    ~EndTime() { out.end_ns = std::max(out.end_ns, reactor::now_ns()); }
  } end_time{out};
  auto resp = client.get(plan.addr, plan.path, plan.deadline);
  if (!resp) {
    ++out.connect_errors;
    note_error(out, resp.error());
    return;
  }
  if (resp->status() != 200) {
    ++out.status_errors;
    if (out.first_error.empty()) out.first_error = "status " + std::to_string(resp->status());
    return;
  }
  net::sse::EventParser parser;
  const std::int64_t sent = resp->request_sent_ns();
  std::int64_t last = 0;
  std::uint64_t n = 0;
  for (;;) {
    auto piece = resp->read_some(plan.deadline);
    if (!piece) {
      ++out.read_errors;
      note_error(out, piece.error());
      break;
    }
    if (piece->empty() && resp->done()) break;
    const std::int64_t now = reactor::now_ns();
    auto fed = parser.feed(*piece, [&](const net::sse::ParsedEvent&) {
      if (n == 0) {
        out.ttfe_us.add(static_cast<std::uint64_t>(std::max<std::int64_t>(now - sent, 0) / 1000));
      } else {
        const std::int64_t gap = now - last;
        out.gap_us.add(static_cast<std::uint64_t>(gap / 1000));
        out.gap_max_ns = std::max(out.gap_max_ns, gap);
      }
      last = now;
      ++n;
    });
    if (!fed) {
      ++out.read_errors;
      note_error(out, fed.error());
      break;
    }
  }
  out.events += n;
  if (plan.expected > 0 && n < static_cast<std::uint64_t>(plan.expected)) ++out.short_streams;
}

// One loop's share: streams index, index + T, index + 2T, ...
void run_loop(const Plan& plan, long loop_index, long loops, LoopResult& out) {
  net::http::ClientOptions o;
  o.read_buffer = 32 * 1024;
  o.max_head_bytes = 4 * 1024;
  o.max_idle_per_host = 0;  // one request per connection: nothing to pool
  o.connect_timeout = std::chrono::milliseconds(10'000);
  net::http::Client client(o);
  fiber::WaitGroup wg;
  for (long i = loop_index; i < plan.streams; i += loops) {
    wg.add(1);
    go([&, i] {
      run_stream(plan, i, client, out);
      wg.done();
    }, {.name = "stream", .stack_size = 32 * 1024});
  }
  (void)wg.wait(CancelToken());
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse_flags(argc, argv);
  const sys::SockAddr addr = parse_addr(flags.addr);
  raise_nofile();

  reactor::LoopGroup::Options lo;
  auto cpus = sys::affinity_cpus();
  if (!cpus || cpus->empty()) {
    std::fprintf(stderr, "sse_load: cannot read the CPU affinity mask\n");
    return 1;
  }
  for (long i = 0; i < flags.threads; ++i) lo.cpus.push_back((*cpus)[static_cast<std::size_t>(i) % cpus->size()]);
  lo.pin = static_cast<std::size_t>(flags.threads) <= cpus->size();
  auto loop_env = reactor::Loop::options_from_env();
  if (loop_env) lo.loop = *loop_env;
  auto group = reactor::LoopGroup::start(lo);
  if (!group) {
    std::fprintf(stderr, "sse_load: cannot start loops: %s\n", group.error().message().c_str());
    return 1;
  }

  Plan plan{addr, flags.path, flags.streams, expected_events(flags.path), 0,
            flags.ramp_ms * 1'000'000, CancelToken()};
  plan.start_ns = reactor::now_ns() + 1'000'000;  // every loop has its fibers spawned by then
  // The run's deadline as a cancellation fired by a watchdog thread, not as
  // the token's deadline: a deadline would arm a timer (an io_uring linked
  // timeout) with every read of every stream.
  CancelSource stop;
  plan.deadline = stop.token();
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(flags.timeout_s);
    if (!cv.wait_until(lock, until, [&] { return finished; })) stop.cancel();
  });

  std::vector<std::unique_ptr<LoopResult>> results;
  std::vector<JoinHandle<void>> handles;
  for (long t = 0; t < flags.threads; ++t) {
    results.push_back(std::make_unique<LoopResult>());
    handles.push_back(go_on((*group)->loop(static_cast<std::size_t>(t)),
                            [&plan, t, n = flags.threads, r = results.back().get()] { run_loop(plan, t, n, *r); },
                            {.name = "sse_load"}));
  }
  for (auto& h : handles) h.join();
  {
    std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
  (*group)->stop();

  LoopResult total;
  for (const auto& r : results) {
    total.ttfe_us.merge(r->ttfe_us);
    total.gap_us.merge(r->gap_us);
    total.events += r->events;
    total.gap_max_ns = std::max(total.gap_max_ns, r->gap_max_ns);
    total.end_ns = std::max(total.end_ns, r->end_ns);
    total.connect_errors += r->connect_errors;
    total.status_errors += r->status_errors;
    total.read_errors += r->read_errors;
    total.short_streams += r->short_streams;
    if (total.first_error.empty()) total.first_error = r->first_error;
  }
  const double seconds = std::max(1e-9, static_cast<double>(total.end_ns - plan.start_ns) / 1e9);
  // A stream counts once: short_streams includes those that broke on a read.
  const std::uint64_t errors = total.connect_errors + total.status_errors +
                               (plan.expected > 0 ? total.short_streams : total.read_errors);
  std::fprintf(stderr,
               "sse_load: connect_errors=%" PRIu64 " status_errors=%" PRIu64 " read_errors=%" PRIu64
               " short_streams=%" PRIu64 "%s%s\n",
               total.connect_errors, total.status_errors, total.read_errors, total.short_streams,
               total.first_error.empty() ? "" : " first_error=", total.first_error.c_str());
  std::printf("SSE streams=%ld events=%" PRIu64 " seconds=%.3f events_per_s=%.1f ttfe_p50_ms=%.3f ttfe_p99_ms=%.3f "
              "gap_p50_ms=%.3f gap_p99_ms=%.3f gap_max_ms=%.3f errors=%" PRIu64 "\n",
              flags.streams, total.events, seconds, static_cast<double>(total.events) / seconds,
              total.ttfe_us.quantile(0.5) / 1000, total.ttfe_us.quantile(0.99) / 1000,
              total.gap_us.quantile(0.5) / 1000, total.gap_us.quantile(0.99) / 1000,
              static_cast<double>(total.gap_max_ns) / 1e6, errors);
  std::fflush(stdout);
  return 0;
}
