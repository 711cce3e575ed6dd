#!/usr/bin/env bash
# The Debian packages the test suite needs, in one place: ./test.sh runs this when it runs as root (and so does
# .ci/run, through ./test.sh). Not root: nothing is installed, and each test that needs a missing package skips
# with the package named (tests/Shared/Requires.cs, NetnsLab.Unavailable).
#   tests/install-deps.sh          install them (root only; apt-get update first)
#   tests/install-deps.sh --list   print the package names, one a line
set -euo pipefail
packages=(
  iproute2 keepalived iputils-arping tcpdump curl procps  # VRRP labs: namespaces, keepalived interop, ARP, captures
  chromium fonts-dejavu-core  # the stats page's browser test (Playwright drives Debian's chromium)
  systemd                     # `systemd-analyze verify` of samples/systemd/lb.service (setpriv, useradd: every Debian)
  clang zlib1g-dev            # NativeAotTests publish lb ahead of time, and NativeAOT links with them
)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${packages[@]}"; exit 0; fi
if [ "$(id -u)" != "0" ]; then echo "install-deps: not root, nothing installed (tests that need a package skip)" >&2; exit 0; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
