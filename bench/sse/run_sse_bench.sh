#!/usr/bin/env bash
# Runs the SSE load generator (bench/sse, sse_load) against Ringo's
# examples/sse_ticker (io_uring and epoll backends) and against its Go peer
# (bench/go/sseserver, net/http), and prints the medians of each and the
# Ringo/Go ratio of server CPU-seconds per million events.
#   bench/sse/run_sse_bench.sh [passes]          (default 3)
# Environment: RINGO_SSE_TICKER=path and RINGO_SSE_LOAD=path skip the C++
# build and run those binaries; SERVERS (default "ringo-uring ringo-epoll
# go"); CASES (default "1000:10:1000:1000 10000:100:150:2000", each
# streams:interval_ms:events_per_stream:ramp_ms); PORT_BASE (18280);
# CHECK_ONLY=1 starts each server, checks one short stream with curl, and
# stops (what runs when sse_load is not built yet).
#
# What it measures, per server and case: sse_load opens K streams (GET
# /stream?events=N&interval_ms=M, spread over the ramp) and reports events
# received per second, time to first event (ttfe) p50/p99 and the gaps between
# consecutive events of a stream (p50/p99/max: M ms when the server keeps up).
# Around it the script reads the server's CPU time (/proc/PID/stat utime+stime,
# fields 14 and 15, in clock ticks), giving CPU-seconds per million events,
# the figure that does not depend on the load generator's speed; and its
# resident memory (VmRSS in /proc/PID/status): once idle just before the
# streams start, then every 200 ms during the run. (max - idle) / K is the
# resident memory per open stream. The default cases last 10-20 s each:
# 1,000 streams x 1,000 events every 10 ms (100k events/s) and 10,000 streams
# x 150 events every 100 ms (100k events/s, ten times the connections).
#
# Setup: the server on CPU 0 (taskset -c 0; sse_ticker with --threads 1
# --cpus 0, the Go server with GOMAXPROCS=1), sse_load on CPU 1 with one
# thread, both on 127.0.0.1. The soft RLIMIT_NOFILE of the script, and so of
# both children, is raised to the hard limit (10,000 streams need more than
# 1,024 descriptors) and printed. Each server is started afresh for each case
# (a clean heap for the memory figure), checked with curl (status, headers,
# the exact bytes of a 3-event stream), and stopped after it.
#
# Method: each pass runs every case on every server, alternating the server
# order from pass to pass so drift on the VM hits all alike. Servers are
# waited for by polling with curl and killed on exit, whatever happens; each
# sse_load run is bounded by timeout(1). The ratio column is the median of
# the per-pass ratios (Ringo CPU-s per million events / Go's of the same pass
# and case), not a ratio of medians. Errors reported by sse_load, or fewer
# events than K x N, are printed: a fast wrong server is not fast.
#
# Output: the table on stdout; the raw lines ("sse <pass> <server> <case>
# key=value ...", sse_load's fields plus the script's) in
# build/bench-results/sse-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

passes=${1:-3}
if ! [[ "$passes" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [passes]" >&2
  exit 2
fi
read -ra servers <<<"${SERVERS:-ringo-uring ringo-epoll go}"
read -ra cases <<<"${CASES:-1000:10:1000:1000 10000:100:150:2000}"
for c in "${cases[@]}"; do
  if ! [[ "$c" =~ ^[1-9][0-9]*:[1-9][0-9]*:[1-9][0-9]*:[0-9]+$ ]]; then
    echo "run_sse_bench: case $c is not streams:interval_ms:events:ramp_ms" >&2
    exit 2
  fi
done
next_port=${PORT_BASE:-18280}
check_only=${CHECK_ONLY:-0}

out=build/bench-results
run_dir=$PWD/build/bench-run/sse
mkdir -p "$out" "$run_dir"

for tool in curl taskset ss; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_sse_bench: $tool is missing; run scripts/install-deps.sh" >&2
    exit 1
  fi
done

# Descriptors: one per stream on each side, plus a few.
ulimit -n "$(ulimit -Hn)"
echo "run_sse_bench: RLIMIT_NOFILE soft=$(ulimit -Sn) hard=$(ulimit -Hn) (server and sse_load inherit it)" >&2

# Go side (Debian's golang-go, caches under build/ so nothing lands in $HOME).
go_bin=""
if command -v go >/dev/null; then
  go_bin=$PWD/$out/sseserver-go
  if ! (
    cd bench/go/sseserver
    GOCACHE=$PWD/../../../build/go-cache GOPATH=$PWD/../../../build/go-path GOFLAGS=-mod=mod \
      go build -o "$go_bin" .
  ); then
    echo "run_sse_bench: building bench/go/sseserver failed" >&2
    go_bin=""
  fi
else
  echo "run_sse_bench: no go compiler; run scripts/install-deps.sh (golang-go)" >&2
fi

# C++ side: sse_ticker and sse_load from the release preset unless the
# environment names binaries. A missing sse_ticker drops the Ringo cases; a
# missing sse_load leaves only the curl checks.
ticker=${RINGO_SSE_TICKER:-build/release/examples/sse_ticker}
load=${RINGO_SSE_LOAD:-build/release/bench/sse/sse_load}
targets=()
[[ -z "${RINGO_SSE_TICKER:-}" ]] && targets+=(sse_ticker)
[[ -z "${RINGO_SSE_LOAD:-}" && "$check_only" != 1 ]] && targets+=(sse_load)
if [[ ${#targets[@]} -gt 0 ]]; then
  if ! cmake --preset release >/dev/null; then
    echo "run_sse_bench: cmake --preset release failed" >&2
  else
    for t in "${targets[@]}"; do
      cmake --build --preset release --target "$t" >/dev/null ||
        echo "run_sse_bench: building $t failed" >&2
    done
  fi
fi

runnable=()
for s in "${servers[@]}"; do
  case $s in
  ringo-uring | ringo-epoll)
    if [[ -x "$ticker" ]]; then runnable+=("$s"); else
      echo "run_sse_bench: $ticker is missing: skipping $s" >&2
    fi
    ;;
  go)
    if [[ -n "$go_bin" ]]; then runnable+=("$s"); else
      echo "run_sse_bench: the Go server is not built: skipping it" >&2
    fi
    ;;
  *)
    echo "run_sse_bench: unknown server $s (ringo-uring, ringo-epoll, go)" >&2
    exit 2
    ;;
  esac
done
if [[ ${#runnable[@]} -eq 0 ]]; then
  echo "run_sse_bench: no server to run" >&2
  exit 1
fi
if [[ "$check_only" != 1 && ! -x "$load" ]]; then
  echo "run_sse_bench: the load generator $load is missing (target sse_load, bench/sse/):" \
    "running the curl checks only" >&2
  check_only=1
fi

# ---- servers ----------------------------------------------------------------

srv_pid=""
port=""

# Sets port to the next port from next_port up that nothing listens on.
pick_port() {
  while [[ -n "$(ss -Hltn "sport = :$next_port")" ]]; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

# start_server NAME: pinned to CPU 0 on a free port; waits (10 s at most)
# until a one-event stream answers. Returns 1 if it does not come up.
start_server() {
  local name=$1 log="$run_dir/$1.log" i
  pick_port
  case $name in
  ringo-*)
    taskset -c 0 "$ticker" --host 127.0.0.1 --port "$port" --threads 1 --backend "${name#ringo-}" --cpus 0 >"$log" 2>&1 &
    ;;
  go)
    GOMAXPROCS=1 taskset -c 0 "$go_bin" -addr "127.0.0.1:$port" >"$log" 2>&1 &
    ;;
  esac
  srv_pid=$!
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      echo "run_sse_bench: $name exited at start; its output ($log):" >&2
      tail -5 "$log" >&2
      srv_pid=""
      return 1
    fi
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/stream?events=1&interval_ms=1"; then return 0; fi
    sleep 0.1
  done
  echo "run_sse_bench: $name did not answer on port $port within 10 s" >&2
  stop_server
  return 1
}

# Stops the running server: SIGTERM, then SIGKILL after 5 s.
stop_server() {
  [[ -z "$srv_pid" ]] && return 0
  local pid=$srv_pid i
  srv_pid=""
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run_sse_bench: server $pid ignored SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
load_pid=""
cleanup() {
  # timeout(1) passes SIGTERM on to sse_load
  [[ -n "$load_pid" ]] && kill -TERM "$load_pid" 2>/dev/null
  stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime of a pid in clock ticks (fields 14 and 15 of /proc/PID/stat;
# fields are counted after the ")" that ends the command name).
cpu_ticks() {
  local stat f
  stat=$(<"/proc/$1/stat")
  read -ra f <<<"${stat##*) }"
  echo $((f[11] + f[12]))
}
clk_tck=$(getconf CLK_TCK)

# VmRSS of a pid in KiB, read with builtins only (no fork per sample).
rss_kib() {
  local k v _
  while read -r k v _; do
    if [[ $k == VmRSS: ]]; then
      echo "$v"
      return
    fi
  done <"/proc/$1/status"
  echo 0
}

# check_stream NAME: one 3-event stream 10 ms apart must come back as status
# 200, the three SSE headers, and exactly the three events' bytes; a bad
# query must get a 400. Complaints go to stderr; returns 1 on any.
check_stream() {
  local name=$1 resp body problems=() status
  local want=$'id: 1\ndata: tick 1\n\nid: 2\ndata: tick 2\n\nid: 3\ndata: tick 3\n\n'
  resp=$(curl -s -N -i --max-time 5 "http://127.0.0.1:$port/stream?events=3&interval_ms=10" | sed 's/\r$//') || true
  body=${resp#*$'\n\n'}
  # $(...) dropped the trailing newlines of both
  [[ "$(head -1 <<<"$resp")" == HTTP/1.1\ 200* ]] || problems+=("status: $(head -1 <<<"$resp")")
  grep -qi '^content-type: text/event-stream' <<<"$resp" || problems+=("no Content-Type: text/event-stream")
  grep -qi '^cache-control: no-cache' <<<"$resp" || problems+=("no Cache-Control: no-cache")
  grep -qi '^x-accel-buffering: no' <<<"$resp" || problems+=("no X-Accel-Buffering: no")
  [[ "$body" == "$(printf '%s' "$want")" ]] || problems+=("body: $(printf '%q' "${body:0:80}")")
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/stream?events=x&interval_ms=10") || true
  [[ "$status" == 400 ]] || problems+=("bad query answered $status, not 400")
  if [[ ${#problems[@]} -gt 0 ]]; then
    local joined
    joined=$(printf '%s; ' "${problems[@]}")
    echo "run_sse_bench: $name: ${joined%; }" >&2
    return 1
  fi
  echo "run_sse_bench: $name: 3-event stream and bad query answered as expected" >&2
}

if [[ "$check_only" == 1 ]]; then
  failed=0
  for name in "${runnable[@]}"; do
    if start_server "$name"; then
      check_stream "$name" || failed=1
      stop_server
    else
      failed=1
    fi
  done
  if [[ ! -x "$load" ]]; then
    echo "run_sse_bench: no measurement: $load is missing" >&2
    exit 1
  fi
  exit "$failed"
fi

raw=$out/sse-$(date +%Y%m%d-%H%M%S).txt
{
  echo "# bench/sse/run_sse_bench.sh $passes pass(es), $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "# servers=${runnable[*]} cases=${cases[*]} (streams:interval_ms:events:ramp_ms) nofile=$(ulimit -Sn)"
  echo "# load generator: $load; sse_ticker: $ticker; go: $go_bin"
  echo "# nproc=$(nproc) kernel=$(uname -r) $(go version 2>/dev/null || echo 'no go') git=$(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
} >"$raw"

# ---- one measured run ---------------------------------------------------------

# measure PASS SERVER CASE: a fresh server, the curl check, then sse_load with
# the server's CPU and RSS read around and during it; appends the raw line.
measure() {
  local pass=$1 name=$2 case=$3 streams interval events ramp
  IFS=: read -r streams interval events ramp <<<"$case"
  start_server "$name" || return 0
  if ! check_stream "$name"; then
    echo "sse $pass $name $case check failed" >>"$raw"
  fi
  sleep 0.5 # let the check's connection close and the server go idle
  local rss0 rss_max rss t0 t1 w0 w1 line status=0 limit
  local load_out=$run_dir/load.out
  rss0=$(rss_kib "$srv_pid")
  rss_max=$rss0
  limit=$((events * interval / 1000 + ramp / 1000 + 60))
  t0=$(cpu_ticks "$srv_pid")
  w0=$(date +%s.%N)
  timeout "$limit" taskset -c 1 "$load" --addr "127.0.0.1:$port" \
    --path "/stream?events=$events&interval_ms=$interval" \
    --streams "$streams" --ramp-ms "$ramp" --threads 1 >"$load_out" 2>"$load_out.err" &
  load_pid=$!
  while kill -0 "$load_pid" 2>/dev/null; do
    rss=$(rss_kib "$srv_pid")
    ((rss > rss_max)) && rss_max=$rss
    sleep 0.2
  done
  wait "$load_pid" || status=$?
  load_pid=""
  w1=$(date +%s.%N)
  t1=$(cpu_ticks "$srv_pid")
  stop_server
  if ! line=$(grep -m1 '^SSE ' "$load_out"); then
    echo "run_sse_bench: sse_load on $name $case (pass $pass) printed no SSE line (exit $status):" >&2
    tail -5 "$load_out.err" >&2
    return 0
  fi
  line="sse $pass $name $case ${line#SSE } exit=$status"
  line+=$(awk -v l="$line" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" -v w0="$w0" -v w1="$w1" \
    -v r0="$rss0" -v r1="$rss_max" -v k="$streams" -v n="$events" 'BEGIN {
    nf = split(l, f, " "); for (i = 1; i <= nf; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
    cpu = (t1 - t0) / hz
    printf " expected=%d cpu_s=%.2f wall_s=%.3f cpu_s_per_m_events=%.3f cpu_util=%.3f rss_idle_kib=%d rss_max_kib=%d kib_per_stream=%.2f",
      k * n, cpu, w1 - w0, (v["events"] > 0 ? cpu / v["events"] * 1e6 : 0), cpu / (w1 - w0), r0, r1, (r1 - r0) / k
  }')
  echo "$line" >>"$raw"
  if [[ "$line" =~ \ events=([0-9]+).*\ errors=([0-9]+) ]] &&
    ((BASH_REMATCH[2] > 0 || BASH_REMATCH[1] < streams * events || status != 0)); then
    echo "run_sse_bench: $name $case (pass $pass): errors=${BASH_REMATCH[2]}," \
      "events ${BASH_REMATCH[1]} of $((streams * events)), sse_load exit $status" >&2
  fi
}

for pass in $(seq 1 "$passes"); do
  order=("${runnable[@]}")
  if ((pass % 2 == 0)); then
    order=()
    for ((i = ${#runnable[@]} - 1; i >= 0; i--)); do order+=("${runnable[i]}"); done
  fi
  for c in "${cases[@]}"; do
    for name in "${order[@]}"; do
      echo "pass $pass/$passes: $name $c" >&2
      measure "$pass" "$name" "$c"
    done
  done
done

# Medians per server and case; ratio = median of the per-pass ratios of CPU-s
# per million events to Go's of the same pass and case.
grep '^sse ' "$raw" | awk -v servers="${runnable[*]}" -v cases="${cases[*]}" -v passes="$passes" '
function median(arr, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
  return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
function med(s, c, key,   p, n, a) {
  n = 0
  for (p = 1; p <= passes; p++) if ((s, c, key, p) in val) a[++n] = val[s, c, key, p]
  return n ? median(a, n) : ""
}
function fmt(x, f) { return x == "" ? "-" : sprintf(f, x) }
$5 == "check" { bad[$3] = 1; next }
{
  pass = $2; s = $3; c = $4
  for (i = 5; i <= NF; i++) { eq = index($i, "="); val[s, c, substr($i, 1, eq - 1), pass] = substr($i, eq + 1) + 0 }
  errs[s, c] += val[s, c, "errors", pass] + (val[s, c, "events", pass] < val[s, c, "expected", pass])
}
END {
  printf "%-12s %-18s %9s %10s %7s %8s %8s %8s %8s %8s %9s %6s %7s\n", "server", "case", "events/s", "cpu-s/M ev", "cpu",
    "ttfe p50", "ttfe p99", "gap p50", "gap p99", "gap max", "KiB/strm", "errors", "/go"
  ns = split(servers, sl, " "); nc = split(cases, cl, " ")
  for (j = 1; j <= nc; j++) for (i = 1; i <= ns; i++) {
    s = sl[i]; c = cl[j]; n = 0
    if (s != "go")
      for (p = 1; p <= passes; p++)
        if ((s, c, "cpu_s_per_m_events", p) in val && ("go", c, "cpu_s_per_m_events", p) in val && val["go", c, "cpu_s_per_m_events", p] > 0)
          r[++n] = val[s, c, "cpu_s_per_m_events", p] / val["go", c, "cpu_s_per_m_events", p]
    printf "%-12s %-18s %9s %10s %7s %8s %8s %8s %8s %8s %9s %6s %7s%s\n", s, c,
      fmt(med(s, c, "events_per_s"), "%.0f"), fmt(med(s, c, "cpu_s_per_m_events"), "%.2f"), fmt(med(s, c, "cpu_util"), "%.2f"),
      fmt(med(s, c, "ttfe_p50_ms"), "%.2f"), fmt(med(s, c, "ttfe_p99_ms"), "%.2f"),
      fmt(med(s, c, "gap_p50_ms"), "%.2f"), fmt(med(s, c, "gap_p99_ms"), "%.2f"), fmt(med(s, c, "gap_max_ms"), "%.1f"),
      fmt(med(s, c, "kib_per_stream"), "%.1f"), ((s, c) in errs) ? errs[s, c] : "-",
      n ? sprintf("%.2f", median(r, n)) : "-", (s in bad) ? "  (wrong stream, see above)" : ""
    delete r
  }
}'
echo "case = streams:interval_ms:events_per_stream:ramp_ms; times in ms" >&2
echo "raw lines: $raw" >&2
