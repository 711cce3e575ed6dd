#!/usr/bin/env bash
# What a new TLS connection costs lb and HAProxy (issue 7: p99 at 1,000 connections). Every wrk request carries
# `Connection: close`, so each one is a full TLS handshake (wrk does not resume sessions), one proxied request and a
# close: the CPU per request here is the CPU per new connection. A 1,000-connection point opens 1,000 of them at once.
#
#   sudo bench/handshakes.sh                      # builds lb (JIT) from the working tree; about 1 min
#   sudo LB_DLL=/path/lb REPEAT=3 bench/handshakes.sh
#
# Pinning as bench/run.sh: wrk and the nginx backends on CPU 0, the proxy under test on CPU 1 (lb and HAProxy both
# stay up; only the one being loaded works). Loopback only; every load is a bounded wrk run; only the processes
# this script started are stopped, by PID.
set -euo pipefail

main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPEAT=${REPEAT:-2}
SECS=${SECS:-6}
read -r -a LB_ENV <<< "${LB_ENV-DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1}"
source "$HERE/lib/one-lb.sh"
start_one_lb handshakes
command -v haproxy >/dev/null || { echo "handshakes: needs haproxy (bench/run.sh installs it)" >&2; exit 1; }
write_haproxy haproxy "    bind 127.0.0.1:21443 ssl crt $T/tls/lb.pem alpn http/1.1"
taskset -c 1 haproxy -db -f "$T/haproxy/haproxy.cfg" > "$T/haproxy/out.log" 2>&1 &
HAPROXY=$!
STARTED+=($HAPROXY)
for _ in $(seq 1 50); do curl -sk -o /dev/null --max-time 1 https://127.0.0.1:21443/app2/bench && break; sleep 0.2; done

# Warm-up: the JIT needs ~10-15 s of a busy core (bench/RESULTS.md), on both kinds of load.
timeout 60 taskset -c 0 wrk -t2 -c64 -d15s https://127.0.0.1:20443/app2/bench > /dev/null
timeout 60 taskset -c 0 wrk -t2 -c64 -d8s -H 'Connection: close' https://127.0.0.1:20443/app2/bench > /dev/null

echo "| proxy | round | new TLS connections/s | CPU µs per connection (handshake, 1 request, close) | socket errors |"
echo "|---|---:|---:|---:|---|"
for round in $(seq 1 "$REPEAT"); do
  point lb "$LB" 20443 "$round"
  point haproxy "$HAPROXY" 21443 "$round"
done
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of PID $1, in clock ticks

point() { # name pid port round: one bounded wrk run, 64 connections, each request on a new one; prints a table row
  local t0 t1 out requests rps errors
  t0=$(ticks "$2")
  out=$(timeout $((SECS + 30)) taskset -c 0 wrk -t2 -c64 -d"${SECS}s" -H 'Connection: close' "https://127.0.0.1:$3/app2/bench")
  t1=$(ticks "$2")
  requests=$(awk '/requests in/ {print $1}' <<< "$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  errors=$(grep -o 'Socket errors:.*' <<< "$out" || echo none)
  echo "| $1 | $4 | $rps | $(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / requests )) | $errors |"
}

main "$@"
