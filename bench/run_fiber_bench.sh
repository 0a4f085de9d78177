#!/usr/bin/env bash
# Runs Ringo's fiber benchmarks side by side with their Go peers and prints
# the medians and the Ringo/Go ratio of each.
#   bench/run_fiber_bench.sh [passes [benchmark ...]]   (default 3 passes, all)
#
# Builds both first: the Go program (bench/go/fiberbench, Debian's golang-go,
# caches under build/ so nothing lands in $HOME) and the release preset's
# fiber_bench target. RINGO_FIBER_BENCH=path (relative to the repo root or
# absolute) skips the C++ build and runs that binary instead (another preset,
# an older build). Both programs print one
#   BENCH <name> ns_per_op=<float> cpu_ns_per_op=<float> [extra=value ...]
# line per benchmark; what each one measures is in the head comments of
# bench/fiber/fiber_bench.cc and bench/go/fiberbench/main.go.
#
# Method: each benchmark runs in its own process, Ringo's and Go's back to
# back, alternating which goes first from pass to pass so drift (thermal,
# neighbours on the VM) hits both alike. Both are pinned with taskset: to CPU 1
# (every benchmark but one is single-core by design: one loop, GOMAXPROCS=1),
# and to CPUs 0,1 for chan_pingpong_cross*, whose two sides may run on
# different cores. The ratio column is the median of the per-pass ratios
# (Ringo ns/op / Go ns/op of the same pass), not a ratio of medians. Extras
# (sleep lateness percentiles, resident bytes per fiber) are shown as
# ringo/go medians.
#
# Output: the table on stdout; the raw lines, each prefixed with
# "<impl> <pass> ", in build/bench-results/fiber-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

benchmarks=(
  yield spawn_join_one spawn_join_batch
  chan_pingpong_local chan_pingpong_cross chan_pingpong_cross_spin chan_buffered
  mutex_handoff timer_insert_cancel timer_insert_cancel_100k
  sleep_100k rss_idle_100k rss_touched_100k
)
passes=${1:-3}
if ! [[ "$passes" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [passes [benchmark ...]]" >&2
  exit 2
fi
if [[ $# -gt 1 ]]; then
  benchmarks=("${@:2}")
fi

out=build/bench-results
mkdir -p "$out"

# Go side.
if ! command -v go >/dev/null; then
  echo "run_fiber_bench: no go compiler; run scripts/install-deps.sh (golang-go)" >&2
  exit 1
fi
go_bin=$PWD/$out/fiberbench-go
(
  cd bench/go/fiberbench
  GOCACHE=$PWD/../../../build/go-cache GOPATH=$PWD/../../../build/go-path GOFLAGS=-mod=mod \
    go build -o "$go_bin" .
)

# C++ side.
cc_bin=${RINGO_FIBER_BENCH:-build/release/bench/fiber/fiber_bench}
if [[ -z "${RINGO_FIBER_BENCH:-}" ]]; then
  if ! { cmake --preset release >/dev/null &&
    cmake --build --preset release --target fiber_bench >/dev/null; }; then
    echo "run_fiber_bench: building the C++ side (target fiber_bench, bench/fiber/fiber_bench.cc) failed" >&2
    exit 1
  fi
fi
if [[ ! -x "$cc_bin" ]]; then
  echo "run_fiber_bench: C++ benchmark binary $cc_bin is missing (target fiber_bench, bench/fiber/fiber_bench.cc)" >&2
  exit 1
fi

raw=$out/fiber-$(date +%Y%m%d-%H%M%S).txt
{
  echo "# bench/run_fiber_bench.sh $passes pass(es), $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "# nproc=$(nproc) kernel=$(uname -r) $(go version) git=$(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
} >"$raw"

# run IMPL PASS NAME: one benchmark in its own pinned process; appends its
# BENCH line to the raw file. A failure is reported and leaves a hole ("-").
run() {
  local impl=$1 pass=$2 name=$3 cpus=1 line
  [[ "$name" == chan_pingpong_cross* ]] && cpus=0,1
  local cmd=("$cc_bin" --bench "$name")
  [[ "$impl" == go ]] && cmd=("$go_bin" -bench "$name")
  if ! line=$(taskset -c "$cpus" "${cmd[@]}" 2>/dev/null | grep -E "^BENCH $name "); then
    echo "run_fiber_bench: $impl $name (pass $pass) failed or printed no BENCH line" >&2
    return 0
  fi
  echo "$impl $pass $line" >>"$raw"
}

for pass in $(seq 1 "$passes"); do
  echo "pass $pass/$passes" >&2
  order=(ringo go)
  ((pass % 2 == 0)) && order=(go ringo)
  for name in "${benchmarks[@]}"; do
    for impl in "${order[@]}"; do
      run "$impl" "$pass" "$name"
    done
  done
done

# Medians per benchmark, implementation and field; ratio = median of the
# per-pass ns_per_op ratios.
grep -v '^#' "$raw" | awk -v names="${benchmarks[*]}" -v passes="$passes" '
function median(arr, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
  return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
# median of field key of impl on benchmark name over the passes; "" if none
function med(impl, name, key,   p, n, a) {
  n = 0
  for (p = 1; p <= passes; p++) if ((impl, name, key, p) in val) a[++n] = val[impl, name, key, p]
  return n ? median(a, n) : ""
}
function fmt(x, f) { return x == "" ? "-" : sprintf(f, x) }
{
  impl = $1; pass = $2; name = $4
  for (i = 5; i <= NF; i++) {
    eq = index($i, "="); key = substr($i, 1, eq - 1)
    val[impl, name, key, pass] = substr($i, eq + 1) + 0
    if (key != "ns_per_op" && key != "cpu_ns_per_op" && !((name, key) in isextra)) {
      isextra[name, key] = 1; extras[name] = extras[name] " " key
    }
  }
}
END {
  printf "%-26s %12s %12s %9s %12s %12s  %s\n", "benchmark (median)", "ringo ns/op", "go ns/op", "ringo/go", "ringo cpu ns", "go cpu ns", "extras ringo/go"
  nn = split(names, list, " ")
  for (b = 1; b <= nn; b++) {
    name = list[b]; n = 0
    for (p = 1; p <= passes; p++)
      if (("ringo", name, "ns_per_op", p) in val && ("go", name, "ns_per_op", p) in val && val["go", name, "ns_per_op", p] > 0)
        r[++n] = val["ringo", name, "ns_per_op", p] / val["go", name, "ns_per_op", p]
    ratio = n ? median(r, n) : ""
    line = sprintf("%-26s %12s %12s %9s %12s %12s ", name,
      fmt(med("ringo", name, "ns_per_op"), "%.1f"), fmt(med("go", name, "ns_per_op"), "%.1f"),
      fmt(ratio, "%.2f"),
      fmt(med("ringo", name, "cpu_ns_per_op"), "%.1f"), fmt(med("go", name, "cpu_ns_per_op"), "%.1f"))
    nx = split(extras[name], xs, " ")
    for (x = 1; x <= nx; x++)
      line = line sprintf(" %s=%s/%s", xs[x], fmt(med("ringo", name, xs[x]), "%g"), fmt(med("go", name, xs[x]), "%g"))
    print line
  }
}'
echo "raw lines: $raw" >&2
