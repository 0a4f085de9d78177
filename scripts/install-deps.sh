#!/usr/bin/env bash
# Installs the Debian 12 packages Ringo builds, tests and benchmarks with.
#
# Idempotent: asks dpkg which packages are already installed and installs only
# the missing ones, so a second run touches nothing (and never runs apt-get
# update when nothing is missing). Must run as root (or through sudo) on
# Debian 12 "bookworm"; other distributions need the same packages by hand.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ clang libclang-rt-14-dev
  # libraries (see DESIGN.md for which layer may use which)
  liburing-dev libboost-context-dev libjemalloc-dev libfmt-dev node-llhttp
  # tests and benchmarks
  libgtest-dev googletest libbenchmark-dev wrk
  # Go peer of the fiber benchmarks (bench/go/fiberbench)
  golang-go
  # test helpers: ip netns for multi-host tests, ps/pgrep in scripts
  iproute2 procps
)

# Kernel settings the runtime needs: every fiber stack is two mappings (a guard
# page and the stack), so 100,000 fibers need more than the default 65,530.
tune_kernel() {
  local want=262144 have
  have=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo "$want")
  if ((have < want)); then
    if [[ $(id -u) -eq 0 ]] && sysctl -q -w vm.max_map_count=$want 2>/dev/null; then
      echo "install-deps: vm.max_map_count raised from $have to $want (fiber stacks)"
    else
      echo "install-deps: warning: vm.max_map_count is $have; 100,000 fibers need $want (run as root)" >&2
    fi
  fi
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  tune_kernel
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    exec sudo "$0" "$@"
  fi
  echo "install-deps: missing packages (${missing[*]}); run this script as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
tune_kernel
echo "install-deps: done"
