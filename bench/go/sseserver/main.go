// Command sseserver is the Go peer of Ringo's examples/sse_ticker: the same
// Server-Sent Events stream written the way a Go programmer would write it,
// net/http with one goroutine per connection (the default) and a time.Ticker
// per stream, so that bench/sse/run_sse_bench.sh can put the two side by side
// under the same load generator. Standard library only, no network beyond the
// listening socket.
//
//	sseserver [-addr 127.0.0.1:18090]
//
// GET /stream?events=N&interval_ms=M answers 200 with
//
//	Content-Type: text/event-stream
//	Cache-Control: no-cache
//	X-Accel-Buffering: no
//
// then sends N events, the first at once and the next every M ms, each
// exactly "id: <i>\ndata: tick <i>\n\n" for i = 1..N, flushing after each
// (one chunk of the chunked body, one write to the socket), and returns: the
// handler ends and net/http closes the chunked body; the connection stays
// open for keep-alive. A client that goes away ends its stream at the next
// tick (the request's context is cancelled). A missing or bad events or
// interval_ms answers 400 with a text message.
//
// Choices: a time.Ticker rather than a time.Sleep per event, because it is
// the idiomatic periodic loop and it does not drift (a Sleep loop adds each
// event's write time to the period); the ticker drops ticks when the
// goroutine falls behind, which shows in the load generator's gap figures as
// it would in a real Go server. fmt.Fprintf writes the event, as a Go
// programmer would; it costs little next to the write(2) of each flush.
//
// GOMAXPROCS comes from the environment (the benchmark sets 1 and pins the
// process to one CPU). At start the soft RLIMIT_NOFILE is raised to the hard
// limit (Go 1.19 does not do it by itself; 1.19 is Debian 12's golang-go),
// because 10,000 streams need more than the default 1,024 descriptors; the
// limit, GOMAXPROCS and the address are printed on stderr, the address line
// last, once the socket listens.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Bounds on the query, so that a typo cannot make a stream last for days.
const (
	maxEvents     = 10_000_000
	maxIntervalMs = 60_000
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "address to listen on")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sseserver: ")

	raiseFileLimit()
	log.Printf("GOMAXPROCS=%d", runtime.GOMAXPROCS(0))

	mux := http.NewServeMux()
	mux.HandleFunc("/stream", stream)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// raiseFileLimit sets the soft RLIMIT_NOFILE to the hard one and says so.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Printf("getrlimit(RLIMIT_NOFILE): %v", err)
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Printf("setrlimit(RLIMIT_NOFILE, %d): %v", lim.Max, err)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	log.Printf("RLIMIT_NOFILE soft=%d hard=%d", lim.Cur, lim.Max)
}

// queryInt parses query parameter name as an integer in [min, max].
func queryInt(r *http.Request, name string, min, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, fmt.Errorf("missing query parameter %s", name)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min || v > max {
		return 0, fmt.Errorf("%s=%q: want an integer in [%d, %d]", name, s, min, max)
	}
	return v, nil
}

func stream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
		return
	}
	events, err := queryInt(r, "events", 1, maxEvents)
	if err == nil {
		var intervalMs int
		intervalMs, err = queryInt(r, "interval_ms", 1, maxIntervalMs)
		if err == nil {
			send(w, r, events, time.Duration(intervalMs)*time.Millisecond)
			return
		}
	}
	http.Error(w, err.Error()+"\nusage: GET /stream?events=N&interval_ms=M", http.StatusBadRequest)
}

// send writes the stream: event 1 at once, then one per tick.
func send(w http.ResponseWriter, r *http.Request, events int, interval time.Duration) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	done := r.Context().Done()
	for i := 1; ; i++ {
		if _, err := fmt.Fprintf(w, "id: %d\ndata: tick %d\n\n", i, i); err != nil {
			return
		}
		flusher.Flush()
		if i == events {
			return
		}
		select {
		case <-ticker.C:
		case <-done:
			return
		}
	}
}
