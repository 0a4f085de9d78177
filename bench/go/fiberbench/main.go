// Command fiberbench is the Go peer of Ringo's fiber benchmarks
// (bench/fiber/fiber_bench.cc): the same workloads written with goroutines,
// channels, sync and time, so that bench/run_fiber_bench.sh can put the two
// side by side. Standard library only, no network.
//
//	fiberbench [-bench NAME|all] [-n N] [-procs P]
//
// Each benchmark prints exactly one line on stdout (diagnostics go to stderr):
//
//	BENCH <name> ns_per_op=<float> cpu_ns_per_op=<float> [extra=value ...]
//
// ns_per_op is wall time over ops. cpu_ns_per_op is the process's user+sys
// time (getrusage RUSAGE_SELF, so every runtime thread counts: sysmon, GC
// workers, Ps spinning for work) over ops; it exceeds ns_per_op only when
// more than one thread burns CPU. The loop benchmarks first run a tenth of
// their ops untimed (free lists, channel and timer structures warmed), and
// every benchmark starts after a runtime.GC(). -bench all runs each
// benchmark in a child process of its own, as the script does: a fresh heap,
// timer heap and goroutine free list (dead goroutines keep their stacks for
// reuse, and Go 1.19 sizes new stacks from the average use seen by the GC, so
// earlier benchmarks would skew the resident-memory ones).
//
// GOMAXPROCS is -procs (default 1) except for chan_pingpong_cross, which
// needs two Ps. Run the program pinned (taskset -c 1; taskset -c 0,1 for the
// cross benchmark) as the script does, so the Go runtime's helper threads
// share the measured core just like Ringo's process does.
//
// What each benchmark measures (one op in brackets; default op counts make
// each run take 0.3-1.5 s on the 2-core dev VM; -n overrides them):
//
//   - yield [one switch]: two goroutines each call runtime.Gosched() in a
//     loop, so every Gosched hands the only P to the other goroutine. The
//     cost of a scheduler round trip, the peer of this_fiber::yield().
//   - spawn_join_one [spawn+join]: start a goroutine that does nothing but
//     wg.Done(), wait for it, repeat: creation, first run, exit and wakeup
//     of the waiter, with nothing overlapping.
//   - spawn_join_batch [one goroutine]: start 100 such goroutines, wait for
//     all, repeat: the amortised cost when creation is batched.
//   - chan_pingpong_local [one message = one send+recv]: two goroutines
//     bounce an int over two unbuffered channels on one P; every message
//     parks the sender's peer and wakes the receiver.
//   - chan_pingpong_cross [one message]: the same with GOMAXPROCS=2, so the
//     goroutines may run on different Ps (threads) and each wakeup may cross
//     cores. Idle Ps spin before sleeping, which shows in cpu_ns_per_op.
//   - chan_buffered [one item]: a producer sends ints over a chan of
//     capacity 1024 to a consumer on one P; the switches amortise over a
//     buffer's worth of items, leaving the per-item channel cost.
//   - mutex_handoff [one handoff]: the classic two-mutex baton pass. Mutex
//     b starts locked; goroutine A loops { a.Lock(); b.Unlock() } and B
//     loops { b.Lock(); a.Unlock() }. Each goroutine blocks in Lock on the
//     mutex it locked itself last time until the other unlocks it, so every
//     op is one contended Lock that parks and one Unlock that wakes the
//     parked goroutine: the mutex's slow path, every time. (Go lets any
//     goroutine unlock a Mutex; the C++ side needs the same of its fiber
//     Mutex.) A plain Lock/Unlock loop would hand off nothing: one goroutine
//     re-takes the uncontended mutex. A turn variable under one mutex with a
//     sync.Cond would hand the turn over through the Cond, never contending
//     the mutex (about 100 ns here, against 150-250 ns for the baton).
//   - timer_insert_cancel [AfterFunc+Stop]: t := time.AfterFunc(time.Hour,
//     f); t.Stop(): arming and disarming a timer that never fires, on an
//     otherwise empty timer heap.
//   - timer_insert_cancel_100k [AfterFunc+Stop]: the same with 100,000
//     other timers pending, spread evenly over 30-90 min (deterministic
//     order), so each new 1 h timer lands in the middle of a large heap.
//   - sleep_100k [one goroutine]: 100,000 goroutines each take time.Now()
//     and time.Sleep(10ms) once; lateness is wake time - (start + 10 ms),
//     reported as p50_us, p90_us, p99_us, max_us. ns_per_op is the wall time
//     from the first spawn to the last exit over 100,000. The goroutines run
//     on one P, so late wakeups include queueing behind the other wakers.
//   - rss_idle_100k [one goroutine]: 100,000 goroutines block on a channel;
//     bytes_per_fiber is the growth of VmRSS (/proc/self/statm, measured
//     after runtime.GC() before and after) over 100,000: stack, g struct
//     and scheduler bookkeeping of an idle goroutine.
//   - rss_touched_100k [one goroutine]: the same, but each goroutine blocks
//     inside a non-inlined function whose 8 KiB local array it has written
//     (and reads back after waking, so the compiler keeps it and the GC
//     cannot shrink the stack under it). The stack must grow to hold the
//     frame: this is the resident cost of a goroutine parked 8 KiB deep.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A benchmark runs n ops and prints its BENCH line.
type benchmark struct {
	name  string
	n     int // default op count (goroutine count for the *_100k ones)
	procs int // GOMAXPROCS; 0 means the -procs flag
	run   func(name string, n int)
}

var benchmarks = []benchmark{
	{"yield", 20_000_000, 0, timedLoop(yield)},
	{"spawn_join_one", 2_000_000, 0, timedLoop(spawnJoinOne)},
	{"spawn_join_batch", 3_000_000, 0, timedLoop(spawnJoinBatch)},
	{"chan_pingpong_local", 5_000_000, 0, timedLoop(chanPingPong)},
	{"chan_pingpong_cross", 5_000_000, 2, timedLoop(chanPingPong)},
	// The same workload under the name of Ringo's spinning variant (its loops
	// spin when idle, as Go's Ps do), so the script can set both beside it.
	{"chan_pingpong_cross_spin", 5_000_000, 2, timedLoop(chanPingPong)},
	{"chan_buffered", 20_000_000, 0, timedLoop(chanBuffered)},
	{"mutex_handoff", 3_000_000, 0, timedLoop(mutexHandoff)},
	{"timer_insert_cancel", 5_000_000, 0, timerInsertCancel(0)},
	{"timer_insert_cancel_100k", 4_000_000, 0, timerInsertCancel(100_000)},
	{"sleep_100k", 100_000, 0, sleep10ms},
	{"rss_idle_100k", 100_000, 0, residentPerGoroutine(false)},
	{"rss_touched_100k", 100_000, 0, residentPerGoroutine(true)},
}

func main() {
	benchName := flag.String("bench", "all", "benchmark name, or all")
	nFlag := flag.Int("n", 0, "op count override (0: each benchmark's default)")
	procs := flag.Int("procs", 1, "GOMAXPROCS for the benchmarks that do not fix it")
	flag.Parse()
	if flag.NArg() != 0 || *nFlag < 0 || *procs < 1 {
		flag.Usage()
		os.Exit(2)
	}

	if *benchName == "all" {
		runEachInChild(*nFlag, *procs)
		return
	}
	for _, b := range benchmarks {
		if b.name != *benchName {
			continue
		}
		p := *procs
		if b.procs != 0 {
			p = b.procs
		}
		n := b.n
		if *nFlag != 0 {
			n = *nFlag
		}
		runtime.GOMAXPROCS(p)
		runtime.GC()
		b.run(b.name, n)
		return
	}
	names := make([]string, len(benchmarks))
	for i, b := range benchmarks {
		names[i] = b.name
	}
	fmt.Fprintf(os.Stderr, "fiberbench: unknown benchmark %q; known: all %s\n",
		*benchName, strings.Join(names, " "))
	os.Exit(2)
}

// runEachInChild re-runs this program once per benchmark, in order, with the
// same flags, passing its stdout and stderr through.
func runEachInChild(n, procs int) {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fiberbench:", err)
		os.Exit(1)
	}
	failed := false
	for _, b := range benchmarks {
		cmd := exec.Command(self, "-bench", b.name, "-n", strconv.Itoa(n), "-procs", strconv.Itoa(procs))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "fiberbench: %s: %v\n", b.name, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// Measuring and reporting

type sample struct{ wall, cpu time.Duration }

// cpuTime is the user+sys time of the whole process (all threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "fiberbench: getrusage:", err)
		os.Exit(1)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(fn func()) sample {
	wall0, cpu0 := time.Now(), cpuTime()
	fn()
	cpu1 := cpuTime()
	return sample{time.Since(wall0), cpu1 - cpu0}
}

func report(name string, ops int, s sample, extras ...string) {
	line := fmt.Sprintf("BENCH %s ns_per_op=%.2f cpu_ns_per_op=%.2f", name,
		float64(s.wall)/float64(ops), float64(s.cpu)/float64(ops))
	if len(extras) > 0 {
		line += " " + strings.Join(extras, " ")
	}
	fmt.Println(line)
	fmt.Fprintf(os.Stderr, "fiberbench: %s: %d ops in %v (cpu %v)\n", name, ops, s.wall, s.cpu)
}

// timedLoop turns a workload "do about n ops, return how many were done" into
// a benchmark: a tenth of n untimed as warm-up, then n timed.
func timedLoop(workload func(n int) int) func(string, int) {
	return func(name string, n int) {
		workload(n/10 + 2)
		var ops int
		s := measure(func() { ops = workload(n) })
		report(name, ops, s)
	}
}

// ---------------------------------------------------------------------------
// Scheduler, spawn, channels, mutex

// yield: two goroutines alternate on the P through runtime.Gosched().
func yield(n int) int {
	perG := n / 2
	var wg sync.WaitGroup
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return 2 * perG
}

// spawnJoinOne: one empty goroutine at a time, joined before the next.
func spawnJoinOne(n int) int {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	return n
}

const spawnBatch = 100

// spawnJoinBatch: 100 empty goroutines, then one wait for all of them.
func spawnJoinBatch(n int) int {
	batches := n / spawnBatch
	var wg sync.WaitGroup
	for b := 0; b < batches; b++ {
		wg.Add(spawnBatch)
		for i := 0; i < spawnBatch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return batches * spawnBatch
}

// chanPingPong: an int goes out on ping and comes back on pong (unbuffered):
// two messages per round trip.
func chanPingPong(n int) int {
	rounds := n / 2
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	v := 0
	for i := 0; i < rounds; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	return 2 * rounds
}

// chanBuffered: producer to consumer through a chan of capacity 1024.
func chanBuffered(n int) int {
	ch := make(chan int, 1024)
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum := 0
	for v := range ch {
		sum += v
	}
	_ = sum
	return n
}

// mutexHandoff: the two-mutex baton pass (see the head comment). Each loop
// turn parks in Lock until the other goroutine's Unlock: one handoff per op.
func mutexHandoff(n int) int {
	perG := n / 2
	var a, b sync.Mutex
	b.Lock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < perG; i++ {
			a.Lock()
			b.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < perG; i++ {
			b.Lock()
			a.Unlock()
		}
	}()
	wg.Wait()
	return 2 * perG
}

// ---------------------------------------------------------------------------
// Timers

func noop() {}

// timerInsertCancel arms and stops a 1 h AfterFunc timer per op, with
// `pending` other timers (30-90 min, evenly spread, shuffled) in the heap.
func timerInsertCancel(pending int) func(string, int) {
	return func(name string, n int) {
		background := make([]*time.Timer, pending)
		for i := range background {
			// i*7919 mod pending visits every slot once in a scrambled order.
			slot := (i * 7919) % pending
			d := 30*time.Minute + time.Duration(slot)*time.Hour/time.Duration(pending)
			background[i] = time.AfterFunc(d, noop)
		}
		timedLoop(func(n int) int {
			for i := 0; i < n; i++ {
				time.AfterFunc(time.Hour, noop).Stop()
			}
			return n
		})(name, n)
		for _, t := range background {
			t.Stop()
		}
	}
}

// ---------------------------------------------------------------------------
// Sleep lateness

const sleepFor = 10 * time.Millisecond

func sleep10ms(name string, n int) {
	late := make([]time.Duration, n)
	var wg sync.WaitGroup
	wg.Add(n)
	s := measure(func() {
		for i := 0; i < n; i++ {
			go func(i int) {
				defer wg.Done()
				start := time.Now()
				time.Sleep(sleepFor)
				late[i] = time.Since(start) - sleepFor
			}(i)
		}
		wg.Wait()
	})
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	us := func(p float64) string {
		// nearest rank: the smallest value with at least p% at or below it
		rank := int(p/100*float64(n)+0.999999) - 1
		if rank < 0 {
			rank = 0
		}
		return strconv.FormatFloat(float64(late[rank])/1e3, 'f', 1, 64)
	}
	report(name, n, s, "p50_us="+us(50), "p90_us="+us(90), "p99_us="+us(99), "max_us="+us(100))
}

// ---------------------------------------------------------------------------
// Resident memory per parked goroutine

const touchBytes = 8192

// touchAndPark writes every byte of an 8 KiB local array, reports itself
// started, parks until release closes, then reads the array back. The array
// is live across the park, so the stack holding it stays at full size.
//
//go:noinline
func touchAndPark(started *sync.WaitGroup, release <-chan struct{}) byte {
	var buf [touchBytes]byte
	for i := range buf {
		buf[i] = byte(i)
	}
	started.Done()
	<-release
	var sum byte
	for _, b := range buf {
		sum += b
	}
	return sum
}

// residentBytes reads VmRSS from /proc/self/statm (second field, in pages).
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err == nil {
		if f := strings.Fields(string(data)); len(f) >= 2 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return pages * int64(os.Getpagesize())
			}
		}
	}
	fmt.Fprintln(os.Stderr, "fiberbench: cannot read /proc/self/statm:", err)
	os.Exit(1)
	return 0
}

func residentPerGoroutine(touch bool) func(string, int) {
	return func(name string, n int) {
		sums := make([]byte, n) // allocated before the first reading
		release := make(chan struct{})
		var started, exited sync.WaitGroup
		started.Add(n)
		exited.Add(n)
		runtime.GC()
		before := residentBytes()
		s := measure(func() {
			for i := 0; i < n; i++ {
				go func(i int) {
					defer exited.Done()
					if touch {
						sums[i] = touchAndPark(&started, release)
					} else {
						started.Done()
						<-release
					}
				}(i)
			}
			started.Wait()
		})
		runtime.GC()
		after := residentBytes()
		close(release)
		exited.Wait()
		perG := float64(after-before) / float64(n)
		report(name, n, s, fmt.Sprintf("bytes_per_fiber=%.0f", perG))
	}
}
