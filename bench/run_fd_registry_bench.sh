#!/usr/bin/env bash
# Measures what the fd registry adds to one descriptor's create+close pair:
# builds bench/syscall/fd_registry_bench twice from the release preset, with
# the registry compiled in (build/bench-reg) and compiled out
# (build/bench-noreg), runs the two alternately (reg, noreg, reg, noreg, ...)
# so that drift of a shared machine hits both alike, and prints a summary.
#
# Every figure is CPU ns per pair, the median over ROUNDS runs of each run's
# 5-repetition median. A registry's cost is always taken against the bare
# ::eventfd+::close peer measured in the same run, never across runs.
# Within a run, the repetitions of all benchmarks are interleaved at random
# (Google Benchmark's random interleaving) for the same reason. Single-thread
# benchmarks run pinned to one CPU; the threads:2 ones to two. About 6 minutes.
#
# Usage (from anywhere; paths are relative to the repository):
#   bench/run_fd_registry_bench.sh
# Environment:
#   ROUNDS=5          runs per build (odd, so that the median is one run)
#   BENCH_CPU=<n>     CPU for single-thread runs (default: last allowed CPU)
#   BENCH_CPUS2=<a,b> CPUs for threads:2 runs (default: last two allowed)
#   BENCH_ARGS=...    extra Google Benchmark flags, e.g. --benchmark_min_time=0.1
#   OUT=<dir>         where raw output goes (default: build/bench-results/fd_registry-<time>)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-5}
OUT=${OUT:-build/bench-results/fd_registry-$(date +%Y%m%dT%H%M%S)}
BENCH_ARGS=${BENCH_ARGS:-}
BIN=bench/syscall/fd_registry_bench
INTERLEAVE=--benchmark_enable_random_interleaving=true

# The CPUs this process may run on, one per line ("0-3,6" -> 0 1 2 3 6).
allowed_cpus() {
  taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' | awk -F- '{ for (i = $1; i <= ($2 == "" ? $1 : $2); i++) print i }'
}
mapfile -t cpus < <(allowed_cpus)
n=${#cpus[@]}
BENCH_CPU=${BENCH_CPU:-${cpus[n - 1]}}
if [[ $n -ge 2 ]]; then
  BENCH_CPUS2=${BENCH_CPUS2:-${cpus[n - 2]},${cpus[n - 1]}}
else
  BENCH_CPUS2=${BENCH_CPUS2:-${cpus[0]}}
  echo "warning: one CPU only: the threads:2 runs share it and say nothing about contention" >&2
fi

build() {  # build <dir> <ON|OFF>
  echo "== configure and build $1 (RINGO_FD_REGISTRY=$2)"
  local log
  log="$OUT/build-$(basename "$1").log"
  if ! { cmake --preset release -B "$1" -DRINGO_FD_REGISTRY="$2" -DRINGO_BUILD_TESTS=OFF &&
         cmake --build "$1" --target fd_registry_bench; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build of $1 failed; full log: $log" >&2
    exit 1
  fi
}

run() {  # run <reg|noreg> <round>
  local dir=build/bench-$1
  echo "== round $2: $1 (single thread on CPU $BENCH_CPU, threads:2 on CPUs $BENCH_CPUS2)"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
  taskset -c "$BENCH_CPU" "$dir/$BIN" --benchmark_filter=-threads $INTERLEAVE $BENCH_ARGS \
    --benchmark_out="$OUT/$1-$2-single.csv" --benchmark_out_format=csv >"$OUT/$1-$2-single.txt" 2>&1
  # shellcheck disable=SC2086
  taskset -c "$BENCH_CPUS2" "$dir/$BIN" --benchmark_filter=threads $INTERLEAVE $BENCH_ARGS \
    --benchmark_out="$OUT/$1-$2-threads.csv" --benchmark_out_format=csv >"$OUT/$1-$2-threads.txt" 2>&1
}

mkdir -p "$OUT"
build build/bench-reg ON
build build/bench-noreg OFF
for ((r = 1; r <= ROUNDS; r++)); do
  run reg "$r"
  run noreg "$r"
done

# Summary. Input: the CSV files, named <build>-<round>-<single|threads>.csv;
# only the "_median" aggregate rows are read, CPU time (column 4).
echo
awk -v rounds="$ROUNDS" -v cpu="$BENCH_CPU" -v cpus2="$BENCH_CPUS2" '
function key(name) {
  if (name ~ /^BM_BareEventfdClose\/repeats:[0-9]+_median$/) return "bare"
  if (name ~ /^BM_RingoEventfd\/repeats:[0-9]+_median$/) return "ringo"
  if (name ~ /^BM_RingoEventfdStacks\/repeats:[0-9]+_median$/) return "stacks"
  if (name ~ /^BM_RegistryOnly\/repeats:[0-9]+_median$/) return "regonly"
  if (name ~ /^BM_FakeSyscallBare\/repeats:[0-9]+_median$/) return "fbare"
  if (name ~ /^BM_FakeSyscallRingo\/repeats:[0-9]+_median$/) return "fringo"
  if (name ~ /^BM_BareEventfdClose\/repeats:[0-9]+\/threads:2_median$/) return "bare_t2"
  if (name ~ /^BM_RingoEventfd\/repeats:[0-9]+\/threads:2_median$/) return "ringo_t2"
  if (name ~ /^BM_RegistryOnlyPair\/stride:1\/repeats:[0-9]+\/threads:2_median$/) return "pair1_t2"
  if (name ~ /^BM_RegistryOnlyPair\/stride:64\/repeats:[0-9]+\/threads:2_median$/) return "pair64_t2"
  return ""
}
function median(list,    a, n, i, j, t) {  # list: space-separated numbers
  n = split(list, a, " ")
  if (n == 0) return "n/a"
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function rounded(list,    a, n, i, out) {  # "1.23 4.5" -> " 1.2 4.5"
  n = split(list, a, " ")
  for (i = 1; i <= n; i++) out = out sprintf(" %.1f", a[i])
  return out
}
function fmt(v) { return v == "n/a" ? sprintf("%14s", v) : sprintf("%14.1f", v) }
function row(label, k) { printf "  %-44s%s%s\n", label, fmt(median(v["reg", k])), fmt(median(v["noreg", k])) }
/^"BM_/ {
  fn = FILENAME; sub(/.*\//, "", fn); split(fn, f, "-")  # f[1] build, f[2] round
  n = split($0, c, ","); name = c[1]; gsub(/"/, "", name)
  k = key(name)
  if (k == "" || c[9] == "true") next
  v[f[1], k] = v[f[1], k] " " c[4]
  one[f[1], f[2], k] = c[4]
}
END {
  # Differences against the bare peer of the same run, then their median.
  for (b = 0; b < 2; b++) {
    build = b ? "noreg" : "reg"
    for (r = 1; r <= rounds; r++) {
      if ((build, r, "ringo") in one && (build, r, "bare") in one)
        v[build, "d_ringo"] = v[build, "d_ringo"] " " one[build, r, "ringo"] - one[build, r, "bare"]
      if ((build, r, "stacks") in one && (build, r, "bare") in one)
        v[build, "d_stacks"] = v[build, "d_stacks"] " " one[build, r, "stacks"] - one[build, r, "bare"]
      if ((build, r, "fringo") in one && (build, r, "fbare") in one)
        v[build, "d_fringo"] = v[build, "d_fringo"] " " one[build, r, "fringo"] - one[build, r, "fbare"]
      if ((build, r, "ringo_t2") in one && (build, r, "bare_t2") in one)
        v[build, "d_ringo_t2"] = v[build, "d_ringo_t2"] " " one[build, r, "ringo_t2"] - one[build, r, "bare_t2"]
    }
  }
  # The registry cost of one round: ON minus OUT of a difference, taken
  # between the two runs of one round, which ran back to back.
  for (r = 1; r <= rounds; r++) {
    if (("reg", r, "ringo") in one && ("reg", r, "bare") in one && ("noreg", r, "ringo") in one && ("noreg", r, "bare") in one)
      cost["real"] = cost["real"] " " (one["reg", r, "ringo"] - one["reg", r, "bare"]) - (one["noreg", r, "ringo"] - one["noreg", r, "bare"])
    if (("reg", r, "fringo") in one && ("reg", r, "fbare") in one && ("noreg", r, "fringo") in one && ("noreg", r, "fbare") in one)
      cost["fake"] = cost["fake"] " " (one["reg", r, "fringo"] - one["reg", r, "fbare"]) - (one["noreg", r, "fringo"] - one["noreg", r, "fbare"])
    if (("reg", r, "regonly") in one && ("noreg", r, "regonly") in one)
      cost["book"] = cost["book"] " " one["reg", r, "regonly"] - one["noreg", r, "regonly"]
  }
  printf "fd registry: CPU ns per eventfd create+close pair\n"
  printf "(median over %d rounds of 5-repetition medians; single thread on CPU %s, threads:2 on CPUs %s)\n\n", rounds, cpu, cpus2
  printf "  %-44s%14s%14s\n", "", "registry ON", "compiled OUT"
  row("bare ::eventfd + ::close", "bare")
  row("ringo::sys::eventfd + ~Fd", "ringo")
  row("  added over bare (same run)", "d_ringo")
  row("ringo, creation stacks captured", "stacks")
  row("  added over bare (same run)", "d_stacks")
  row("registry only: on_create + on_close", "regonly")
  row("syscalls faked: bare", "fbare")
  row("syscalls faked: ringo", "fringo")
  row("  added over bare (same run)", "d_fringo")
  row("threads:2 bare (CPU ns per pair)", "bare_t2")
  row("threads:2 ringo (CPU ns per pair)", "ringo_t2")
  row("  added over bare (same run)", "d_ringo_t2")
  row("threads:2 registry only, fds 1 apart", "pair1_t2")
  row("threads:2 registry only, fds 64 apart", "pair64_t2")
  real = median(cost["real"]); fake = median(cost["fake"]); book = median(cost["book"])
  printf "\n"
  if (real == "n/a" || fake == "n/a" || book == "n/a") {
    printf "Some benchmarks failed or are missing; see the logs in the raw output.\n"
    exit
  }
  printf "Added by the registry per pair (ON minus OUT, paired by round; median, then each round):\n"
  printf "  real syscalls    %6.1f ns  [%s ]  (%.1f%% of the bare pair)\n", real, rounded(cost["real"]), \
    100 * real / median(v["reg", "bare"])
  printf "  syscalls faked   %6.1f ns  [%s ]\n", fake, rounded(cost["fake"])
  printf "  bookkeeping only %6.1f ns  [%s ]\n", book, rounded(cost["book"])
  printf "Left when compiled out: on_create+on_close as calls that do nothing, %.1f ns per pair\n", \
    median(v["noreg", "regonly"])
  printf "Ringo wrapper (Result, Fd, Site) with the registry compiled out, over bare: %.1f ns real, %.1f ns faked\n", \
    median(v["noreg", "d_ringo"]), median(v["noreg", "d_fringo"])
  printf "Target, well under 100 ns added when enabled without stacks: %s (%.1f ns faked, %.1f ns real)\n", \
    real < 100 && fake < 100 ? "met" : "MISSED", fake, real
}' "$OUT"/*.csv
echo
echo "raw output: $OUT"
