#!/usr/bin/env bash
# Where lb's CPU per request goes (issue 7): the same warm lb, loaded on a path it forwards to a backend and on a
# path it answers itself (the `/app2` -> `/app2/` redirect: listener, TLS, HTTP parsing, Rules, response, no backend).
# The difference is the forwarding leg: YARP, the backend HTTP client and the backend socket round trip.
#
#   sudo bench/split.sh                   # builds lb from the working tree; about 2 min
#   sudo LB_DLL=/path/lb.dll REPEAT=3 SECS=10 bench/split.sh
#
# Pinning as bench/run.sh: wrk and the nginx backends on CPU 0, lb on CPU 1. Loopback only; every load is a
# bounded wrk run; only the processes this script started are stopped, by PID.
set -euo pipefail

main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPEAT=${REPEAT:-2}
SECS=${SECS:-8}
read -r -a LB_ENV <<< "${LB_ENV-DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_gcServer=0}"
source "$HERE/lib/one-lb.sh"
start_one_lb split
[[ $(curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:20443/app2) == 302 ]] || { echo "split: /app2 is not redirected" >&2; exit 1; }

echo "| path | round | req/s | lb CPU µs/request |"
echo "|---|---:|---:|---:|"
# Warm-up: the JIT needs ~10-15 s of a busy core (bench/RESULTS.md); every path is loaded before measuring.
for url in https://127.0.0.1:20443/app2/bench https://127.0.0.1:20443/app2 http://127.0.0.1:20080/app2/bench http://127.0.0.1:20080/app2; do
  point "" "$url" 6 >/dev/null
done
for round in $(seq 1 "$REPEAT"); do
  point "HTTPS, forwarded" https://127.0.0.1:20443/app2/bench "$SECS" "$round"
  point "HTTPS, answered by lb (redirect)" https://127.0.0.1:20443/app2 "$SECS" "$round"
  point "HTTP, forwarded" http://127.0.0.1:20080/app2/bench "$SECS" "$round"
  point "HTTP, answered by lb (redirect)" http://127.0.0.1:20080/app2 "$SECS" "$round"
done
}

point() { # label url seconds [round]: one bounded wrk run, 64 keep-alive connections; prints a table row
  local t0 t1 out requests rps hz
  hz=$(getconf CLK_TCK)
  t0=$(lb_ticks)
  out=$(timeout $(($3 + 30)) taskset -c 0 wrk -t2 -c64 -d"$3s" "$2")
  t1=$(lb_ticks)
  requests=$(awk '/requests in/ {print $1}' <<< "$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  echo "| $1 | ${4:-} | $rps | $(( (t1 - t0) * 1000000 / hz / requests )) |"
}

main "$@"
