#!/usr/bin/env bash
# Installs the Debian 12 packages Ringo builds, tests and benchmarks with.
#
# Idempotent: asks dpkg which packages are already installed and installs only
# the missing ones, so a second run touches nothing (and never runs apt-get
# update when nothing is missing). Must run as root (or through sudo) on
# Debian 12 "bookworm"; other distributions need the same packages by hand.
#
# nginx is a benchmark peer only (bench/http/run_http_bench.sh starts its own
# nginx on a loopback port with its own config and pid file). Debian's package
# would start a system service on port 80 at install: a temporary policy-rc.d
# (the Debian mechanism for "do not start services from maintainer scripts")
# keeps it from starting, and the service is then disabled so that a reboot
# does not start it either. Nothing in Ringo depends on that service.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ clang libclang-rt-14-dev
  # libraries (see DESIGN.md for which layer may use which)
  liburing-dev libboost-context-dev libjemalloc-dev libfmt-dev node-llhttp
  # tests and benchmarks
  libgtest-dev googletest libbenchmark-dev wrk
  # HTTP peer of the hello benchmark (bench/http); its service stays off
  nginx
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

# While packages install, deny service starts from maintainer scripts (exit
# 101 = "action forbidden"), unless the machine already has a policy-rc.d of
# its own (containers often do), which is then left alone.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\n# temporary, from Ringo scripts/install-deps.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
  trap 'rm -f "$policy"' EXIT
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
((own_policy)) && rm -f "$policy"

# The packaged nginx service: stopped and disabled (the benchmark runs its
# own instance; port 80 stays free).
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now nginx.service >/dev/null 2>&1 || true
  else
    if [[ -x /etc/init.d/nginx ]]; then /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi
    update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
  echo "install-deps: nginx installed with its system service stopped and disabled"
fi
tune_kernel
echo "install-deps: done"
