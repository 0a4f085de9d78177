#!/usr/bin/env bash
# Runs the reactor benchmarks (io_uring and epoll side by side, in one
# process, interleaved) several times and prints the median of each figure.
#   bench/run_reactor_bench.sh [rounds]      (default 3)
# Builds the release preset first. Output: build/bench-results/reactor-*.json.
# Pinning: loops pin themselves (LoopGroup); the echo client pins to the first
# CPU and its server loop to the last, so on a 2-core machine they never share one.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cmake --preset release >/dev/null
cmake --build --preset release --target reactor_bench >/dev/null
out=build/bench-results
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds" >&2
  build/release/bench/reactor/reactor_bench --benchmark_format=json \
    --benchmark_out="$out/reactor-$r.json" --benchmark_out_format=json >/dev/null 2>&1
done
# Median across rounds of each benchmark's time and counters.
awk_script='
function median(arr, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
  return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}'
for f in "$out"/reactor-*.json; do
  # name, label, real_time (ns), cpu_time, p50, p99, items/s: one line per benchmark
  grep -E '"(name|label|real_time|cpu_time|p50_ns|p99_ns|items_per_second)"' "$f" |
    sed -E 's/^ *"([a-z_0-9]+)": "?([^",]*)"?,?$/\1 \2/' |
    awk '$1=="name"{if(n)print line; line=$2; n=1; next} {line=line" "$1"="$2} END{print line}'
done | sort | awk "$awk_script"'
{
  key = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); vals[key, kv[1], ++cnt[key, kv[1]]] = kv[2]; if (kv[1] == "label") lab[key] = kv[2]; fields[kv[1]] = 1 }
  keys[key] = 1
}
END {
  for (k in keys) {
    line = sprintf("%-62s %-9s", k, lab[k])
    split("real_time cpu_time p50_ns p99_ns items_per_second", names, " ")
    for (i = 1; i <= 5; i++) {
      n = cnt[k, names[i]]; delete a
      for (j = 1; j <= n; j++) a[j] = vals[k, names[i], j] + 0
      line = line sprintf(n ? " %12.4g" : " %12s", n ? median(a, n) : "-")
    }
    print line
  }
}' | sort | { printf "%-62s %-9s %12s %12s %12s %12s %14s\n" "benchmark (median of rounds)" backend "real ns" "cpu ns" "p50 ns" "p99 ns" "items/s"; cat; }
