#!/usr/bin/env bash
# Runs wrk against Ringo's examples/hello (io_uring and epoll backends) and
# against nginx, in the same run, and prints the medians of each and the
# hello/nginx ratio of requests per server CPU-second.
#   bench/http/run_http_bench.sh [passes [seconds]]   (default 3 passes, 10 s)
# Environment: RINGO_HELLO=path skips the C++ build and runs that binary;
# SERVERS (default "hello-uring hello-epoll nginx"), TESTS (default
# "plaintext pipelined json"), CONNS (64), DEPTH (16, pipelined test),
# WARMUP (2 s before each measured run), PORT_BASE (18080).
#
# Why requests per server CPU-second: on the 2-core dev VMs one wrk thread tops
# out near 137k req/s, below what a fast server does on one core, so req/s
# would measure wrk. The server's CPU time for the requests it served does not
# depend on how fast the client is, as long as the client is the same for
# every server. It is read from /proc/PID/stat (utime+stime, fields 14 and 15,
# in clock ticks) before and after the wrk run; for nginx the master and its
# worker are summed (the worker does the work). wrk's req/s, latency p50/p99
# (wrk --latency) and the server's CPU utilisation (cpu s / wall s) are
# reported too: a server that is cheap per request but leaves the client
# waiting is not fast either.
#
# Setup, the same for every server: the server runs on CPU 0 (taskset -c 0;
# hello also gets --host 127.0.0.1 --threads 1 --cpus 0, nginx one worker with
# worker_cpu_affinity), wrk on CPU 1 with one thread and CONNS keep-alive
# connections. Tests: plaintext (GET /plaintext), pipelined (the same, DEPTH
# requests in flight per connection through bench/http/pipeline.lua) and json
# (GET /json). nginx runs from bench/http/nginx.conf.in (one worker, no access
# log, keep-alive never closed by nginx, every path under
# build/bench-run/http/); the packaged nginx service is never used.
# Before measuring, each server's responses are checked with curl (status,
# body, Content-Type), and wrk's non-2xx and socket errors are reported: a
# fast wrong server is not fast.
#
# Method: each pass starts every server in turn (alternating the order from
# pass to pass so drift on the VM hits all alike), runs a WARMUP-second wrk
# and then the measured one for each test, and stops the server. Ports are
# picked free from PORT_BASE up; servers are waited for by polling with curl
# and killed on exit, whatever happens. Each wrk run is bounded by timeout(1).
# The ratio column is the median of the per-pass ratios (hello req per CPU-s
# / nginx req per CPU-s of the same pass and test), not a ratio of medians.
#
# Latency under pipelining is wrk's: from the batch's send to each response,
# so it grows with DEPTH; wrk 4.1 also loses its p99 there (prints 0.00us),
# which the table shows as "-".
#
# Output: the table on stdout; the raw lines ("http <pass> <server> <test>
# key=value ...") and every wrk output (as "#" lines) in
# build/bench-results/http-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

passes=${1:-3}
seconds=${2:-10}
if ! [[ "$passes" =~ ^[1-9][0-9]*$ && "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [passes [seconds]]" >&2
  exit 2
fi
read -ra servers <<<"${SERVERS:-hello-uring hello-epoll nginx}"
read -ra tests <<<"${TESTS:-plaintext pipelined json}"
conns=${CONNS:-64}
depth=${DEPTH:-16}
warmup=${WARMUP:-2}
next_port=${PORT_BASE:-18080}

out=build/bench-results
run_dir=$PWD/build/bench-run/http
mkdir -p "$out" "$run_dir"

for tool in wrk curl taskset ss; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_http_bench: $tool is missing; run scripts/install-deps.sh" >&2
    exit 1
  fi
done

# hello: built from the release preset unless RINGO_HELLO names a binary. A
# missing hello (not built yet, build failed) drops its cases, so that the
# nginx half still runs.
hello=${RINGO_HELLO:-build/release/examples/hello}
if [[ -z "${RINGO_HELLO:-}" ]]; then
  if ! { cmake --preset release >/dev/null &&
    cmake --build --preset release --target hello >/dev/null; }; then
    echo "run_http_bench: building hello (target hello, examples/) failed" >&2
  fi
fi
nginx_bin=$(command -v nginx || true)
runnable=()
for s in "${servers[@]}"; do
  case $s in
  hello-uring | hello-epoll)
    if [[ -x "$hello" ]]; then runnable+=("$s"); else
      echo "run_http_bench: $hello is missing: skipping $s" >&2
    fi
    ;;
  nginx)
    if [[ -n "$nginx_bin" ]]; then runnable+=("$s"); else
      echo "run_http_bench: nginx is missing (scripts/install-deps.sh): skipping it" >&2
    fi
    ;;
  *)
    echo "run_http_bench: unknown server $s (hello-uring, hello-epoll, nginx)" >&2
    exit 2
    ;;
  esac
done
if [[ ${#runnable[@]} -eq 0 ]]; then
  echo "run_http_bench: no server to run" >&2
  exit 1
fi

raw=$out/http-$(date +%Y%m%d-%H%M%S).txt
{
  echo "# bench/http/run_http_bench.sh $passes pass(es) of ${seconds}s, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "# servers=${runnable[*]} tests=${tests[*]} conns=$conns depth=$depth warmup=${warmup}s"
  echo "# hello: $hello; nginx: $nginx_bin"
  echo "# nproc=$(nproc) kernel=$(uname -r) $(nginx -v 2>&1 || true) $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2) git=$(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
} >"$raw"

# ---- servers ----------------------------------------------------------------

srv_pid="" # the server now running (hello, or nginx's master)
port=""

# Sets port to the next port from next_port up that nothing listens on.
pick_port() {
  while [[ -n "$(ss -Hltn "sport = :$next_port")" ]]; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

# start_server NAME: starts it pinned to CPU 0 on a free port, waits until it
# answers (10 s at most). Returns 1 if it does not come up.
start_server() {
  local name=$1 log="$run_dir/$1.log" i
  pick_port
  case $name in
  hello-*)
    taskset -c 0 "$hello" --host 127.0.0.1 --port "$port" --threads 1 --backend "${name#hello-}" --cpus 0 >"$log" 2>&1 &
    ;;
  nginx)
    local dir=$run_dir/nginx
    mkdir -p "$dir"
    sed -e "s|@RUN_DIR@|$dir|g" -e "s|@PORT@|$port|g" bench/http/nginx.conf.in >"$dir/nginx.conf"
    taskset -c 0 "$nginx_bin" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' >"$log" 2>&1 &
    ;;
  esac
  srv_pid=$!
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$srv_pid" 2>/dev/null; then
      echo "run_http_bench: $name exited at start; its output ($log):" >&2
      tail -5 "$log" >&2
      srv_pid=""
      return 1
    fi
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/plaintext"; then return 0; fi
    sleep 0.1
  done
  echo "run_http_bench: $name did not answer on port $port within 10 s" >&2
  stop_server
  return 1
}

# Stops the running server: SIGTERM, then SIGKILL (and its children) after 5 s.
stop_server() {
  [[ -z "$srv_pid" ]] && return 0
  local pid=$srv_pid i
  local -a kids
  srv_pid=""
  read -ra kids <<<"$(pgrep -P "$pid" || true)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run_http_bench: server $pid ignored SIGTERM; killing it" >&2
    kill -KILL "$pid" "${kids[@]}" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# The server's processes: hello is one; nginx is the master and its worker.
server_pids() { echo "$srv_pid" "$(pgrep -P "$srv_pid" | tr '\n' ' ')"; }

# Sum of utime+stime (clock ticks) of the given pids. The command name in
# field 2 may hold spaces, so fields are counted after its closing ")".
cpu_ticks() {
  local total=0 p stat f
  for p in "$@"; do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    read -ra f <<<"${stat##*) }"
    total=$((total + f[11] + f[12])) # fields 14 and 15; f[0] is field 3
  done
  echo "$total"
}
clk_tck=$(getconf CLK_TCK)

# check_responses NAME: status 200, exact body and Content-Type of each path
# the tests use; Server and Date headers present. Complaints go to stderr and
# the raw file; the run goes on (the table marks the server).
check_responses() {
  local name=$1 path body ctype resp got ok=1
  for path in plaintext json; do
    if [[ $path == plaintext ]]; then body='Hello, World!' ctype=text/plain
    else body='{"message":"Hello, World!"}' ctype=application/json; fi
    resp=$(curl -s -i --max-time 2 "http://127.0.0.1:$port/$path" | tr -d '\r') || true
    local problems=()
    [[ "$(head -1 <<<"$resp")" == HTTP/1.1\ 200* ]] || problems+=("status: $(head -1 <<<"$resp")")
    got=${resp#*$'\n\n'}
    got=${got:0:60}
    [[ "$got" == "$body" ]] || problems+=("body: ${got//$'\n'/\\n}")
    grep -qi "^content-type: $ctype" <<<"$resp" || problems+=("no Content-Type: $ctype")
    grep -qi '^server: ' <<<"$resp" || problems+=("no Server header")
    grep -qi '^date: ' <<<"$resp" || problems+=("no Date header")
    if [[ ${#problems[@]} -gt 0 ]]; then
      ok=0
      local joined
      joined=$(printf '%s; ' "${problems[@]}")
      echo "run_http_bench: $name GET /$path: ${joined%; }" >&2
      echo "# check: $name GET /$path: ${joined%; }" >>"$raw"
    fi
  done
  ((ok))
}

# ---- one measured run ---------------------------------------------------------

# wrk_cmd TEST SECONDS: the wrk command line after "wrk" for a test (URL included).
wrk_cmd() {
  local test=$1 dur=$2
  local args=(-t1 "-c$conns" "-d${dur}s" --latency)
  case $test in
  plaintext) args+=("http://127.0.0.1:$port/plaintext") ;;
  json) args+=("http://127.0.0.1:$port/json") ;;
  pipelined) args+=(-s bench/http/pipeline.lua "http://127.0.0.1:$port/plaintext" -- "$depth") ;;
  *)
    echo "run_http_bench: unknown test $test (plaintext, pipelined, json)" >&2
    exit 2
    ;;
  esac
  echo "${args[@]}"
}

# Turns wrk's summary into key=value pairs: requests, seconds, req_per_s,
# p50_ms, p99_ms, non2xx, and the socket errors (connect/read/write/timeout).
parse_wrk() {
  awk '
  function ms(v,   n) {
    n = v + 0
    if (v ~ /us$/) return n / 1000
    if (v ~ /ms$/) return n
    if (v ~ /m$/) return n * 60000
    if (v ~ /s$/) return n * 1000
    return n
  }
  / requests in / { req = $1; secs = $4; sub(/s,$/, "", secs) }
  /^Requests\/sec:/ { rps = $2 }
  /^ +50% / { p50 = ms($2) }
  /^ +99% / { p99 = ms($2) }
  /Non-2xx or 3xx responses:/ { non2xx = $NF }
  /Socket errors:/ { gsub(/,/, ""); conn = $4; rd = $6; wr = $8; to = $10 }
  END {
    printf "requests=%d seconds=%s req_per_s=%s p50_ms=%.3f p99_ms=%.3f non2xx=%d sock_connect=%d sock_read=%d sock_write=%d sock_timeout=%d\n",
      req, secs, rps, p50, p99, non2xx, conn, rd, wr, to
  }'
}

# measure PASS SERVER TEST: warm-up, then the measured wrk run with the
# server's CPU ticks and wall time read around it; appends the raw line.
measure() {
  local pass=$1 name=$2 test=$3 t0 t1 w0 w1 wrk_out fields cpu wall
  local -a args pids
  read -ra args <<<"$(wrk_cmd "$test" "$warmup")"
  timeout $((warmup + 30)) taskset -c 1 wrk "${args[@]}" >/dev/null 2>&1 || true
  read -ra args <<<"$(wrk_cmd "$test" "$seconds")"
  read -ra pids <<<"$(server_pids)"
  t0=$(cpu_ticks "${pids[@]}")
  w0=$(date +%s.%N)
  if ! wrk_out=$(timeout $((seconds + 30)) taskset -c 1 wrk "${args[@]}" 2>&1); then
    echo "run_http_bench: wrk failed on $name $test (pass $pass): $wrk_out" >&2
    return 0
  fi
  w1=$(date +%s.%N)
  t1=$(cpu_ticks "${pids[@]}")
  # shellcheck disable=SC2001 # a prefix on every line: sed says it plainest
  sed 's/^/# wrk: /' <<<"$wrk_out" >>"$raw"
  fields=$(parse_wrk <<<"$wrk_out")
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
  wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
  local line="http $pass $name $test $fields cpu_s=$cpu wall_s=$wall"
  line+=$(awk -v l="$line" 'BEGIN {
    n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
    printf " req_per_cpu_s=%.0f cpu_util=%.3f", (v["cpu_s"] > 0 ? v["requests"] / v["cpu_s"] : 0), v["cpu_s"] / v["wall_s"]
  }')
  echo "$line" >>"$raw"
  if [[ "$line" =~ non2xx=([0-9]+).*sock_connect=([0-9]+)\ sock_read=([0-9]+)\ sock_write=([0-9]+)\ sock_timeout=([0-9]+) ]] &&
    ((BASH_REMATCH[1] + BASH_REMATCH[2] + BASH_REMATCH[3] + BASH_REMATCH[4] + BASH_REMATCH[5] > 0)); then
    echo "run_http_bench: $name $test (pass $pass): wrk reports errors:" >&2
    grep -E 'Non-2xx|Socket errors' <<<"$wrk_out" >&2 || true
  fi
}

for pass in $(seq 1 "$passes"); do
  order=("${runnable[@]}")
  if ((pass % 2 == 0)); then
    order=()
    for ((i = ${#runnable[@]} - 1; i >= 0; i--)); do order+=("${runnable[i]}"); done
  fi
  for name in "${order[@]}"; do
    echo "pass $pass/$passes: $name" >&2
    start_server "$name" || continue
    check_responses "$name" || echo "http $pass $name check failed" >>"$raw"
    for test in "${tests[@]}"; do
      measure "$pass" "$name" "$test"
    done
    stop_server
  done
done

# Medians per server and test; ratio = median of the per-pass ratios of req
# per CPU-s to nginx's of the same pass and test.
grep '^http ' "$raw" | awk -v servers="${runnable[*]}" -v tests="${tests[*]}" -v passes="$passes" '
function median(arr, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
  return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
function med(s, t, key,   p, n, a) {
  n = 0
  for (p = 1; p <= passes; p++) if ((s, t, key, p) in val) a[++n] = val[s, t, key, p]
  return n ? median(a, n) : ""
}
function fmt(x, f) { return x == "" ? "-" : sprintf(f, x) }
# wrk 4.1 prints 0.00us for a percentile it lost (its 99% of pipelined runs)
function lat(x) { return x == "" || x == 0 ? "-" : sprintf("%.3f", x) }
$4 == "check" { bad[$3] = 1; next }
{
  pass = $2; s = $3; t = $4
  for (i = 5; i <= NF; i++) { eq = index($i, "="); val[s, t, substr($i, 1, eq - 1), pass] = substr($i, eq + 1) + 0 }
  errs[s, t] += val[s, t, "non2xx", pass] + val[s, t, "sock_connect", pass] + val[s, t, "sock_read", pass] + val[s, t, "sock_write", pass] + val[s, t, "sock_timeout", pass]
}
END {
  printf "%-12s %-10s %10s %12s %8s %8s %8s %7s %10s\n", "server", "test", "req/s", "req/cpu-s", "cpu", "p50 ms", "p99 ms", "errors", "/nginx"
  ns = split(servers, sl, " "); nt = split(tests, tl, " ")
  for (j = 1; j <= nt; j++) for (i = 1; i <= ns; i++) {
    s = sl[i]; t = tl[j]; n = 0
    if (s != "nginx")
      for (p = 1; p <= passes; p++)
        if ((s, t, "req_per_cpu_s", p) in val && ("nginx", t, "req_per_cpu_s", p) in val && val["nginx", t, "req_per_cpu_s", p] > 0)
          r[++n] = val[s, t, "req_per_cpu_s", p] / val["nginx", t, "req_per_cpu_s", p]
    printf "%-12s %-10s %10s %12s %8s %8s %8s %7s %10s%s\n", s, t,
      fmt(med(s, t, "req_per_s"), "%.0f"), fmt(med(s, t, "req_per_cpu_s"), "%.0f"),
      fmt(med(s, t, "cpu_util"), "%.2f"), lat(med(s, t, "p50_ms")), lat(med(s, t, "p99_ms")),
      ((s, t) in errs) ? errs[s, t] : "-", n ? sprintf("%.2f", median(r, n)) : "-",
      (s in bad) ? "  (wrong responses, see above)" : ""
    delete r
  }
}'
echo "raw lines: $raw" >&2
