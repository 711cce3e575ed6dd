#!/usr/bin/env bash
# Bytes lb allocates per request (issue 7: no per-request allocations on the hot path), on a forwarded path and on
# one lb answers itself (its /app2 -> /app2/ redirect), over HTTPS and HTTP. Read from the runtime's own counter
# (dotnet-counters, System.Runtime `dotnet.gc.heap.total_allocated`) over a bounded wrk run: its increase divided
# by the requests served. PROFILE=1 also records one allocation-sampling trace (dotnet-trace `gc-verbose`) of the
# forwarded HTTPS load, for a look at which types and call sites allocate.
#
#   sudo bench/allocations.sh                     # builds lb (JIT) from the working tree; about 1.5 min
#   sudo LB_DLL=/path/lb.dll bench/allocations.sh # a given build (JIT only: the counters need the EventPipe)
#
# Pinning as bench/run.sh: wrk and the nginx backends on CPU 0, lb on CPU 1. Loopback only; every load is a bounded
# wrk run; only the processes this script started are stopped, by PID.
set -euo pipefail

main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECS=${SECS:-8}
read -r -a LB_ENV <<< "${LB_ENV-DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1}"
TOOLS=$HOME/.dotnet/tools
for tool in dotnet-counters dotnet-trace; do
  [[ -x $TOOLS/$tool ]] || dotnet tool install -g "$tool" > /dev/null
done
source "$HERE/lib/one-lb.sh"
start_one_lb allocations
# Warm-up: the JIT needs ~10-15 s of a busy core (bench/RESULTS.md); allocations of unoptimised code differ.
timeout 60 taskset -c 0 wrk -t2 -c64 -d15s https://127.0.0.1:20443/app2/bench > /dev/null
timeout 60 taskset -c 0 wrk -t2 -c64 -d5s http://127.0.0.1:20080/app2 > /dev/null

echo "| load (64 connections, ${SECS} s) | req/s | bytes allocated per request |"
echo "|---|---:|---:|"
for url in https://127.0.0.1:20443/app2/bench http://127.0.0.1:20080/app2/bench \
           https://127.0.0.1:20443/app2 http://127.0.0.1:20080/app2; do
  point "$url"
done
if [[ ${PROFILE:-0} == 1 ]]; then
  timeout $((SECS + 60)) taskset -c 0 "$TOOLS/dotnet-trace" collect -p "$LB" --profile gc-verbose \
    --duration "00:00:00:$(printf %02d "$SECS")" -o "$HERE/allocations.nettrace" > /dev/null 2>&1 &
  local trace=$!
  sleep 1
  timeout $((SECS + 30)) taskset -c 0 wrk -t2 -c64 -d"${SECS}s" https://127.0.0.1:20443/app2/bench > /dev/null
  wait $trace || true
  echo "trace: $HERE/allocations.nettrace (AllocationTick events with stacks; open in PerfView or TraceEvent)"
fi
}

point() { # url: the counter's increase during one bounded wrk run, over its requests; prints a table row
  local csv=$T/counters.csv out requests
  rm -f "$csv"
  timeout $((SECS + 30)) taskset -c 0 "$TOOLS/dotnet-counters" collect -p "$LB" --refresh-interval 1 \
    --duration "00:00:00:$(printf %02d $((SECS + 4)))" --counters 'System.Runtime[dotnet.gc.heap.total_allocated]' \
    --format csv -o "$csv" > /dev/null 2>&1 &
  local counters=$!
  sleep 2   # the tool attaches first
  out=$(timeout $((SECS + 30)) taskset -c 0 wrk -t2 -c64 -d"${SECS}s" "$1")
  wait $counters || true
  requests=$(awk '/requests in/ {print $1}' <<< "$out")
  # Each row is the bytes allocated in one 1-s interval; the idle second on either side adds almost nothing.
  awk -F, -v url="$1" -v rps="$(awk '/Requests\/sec/ {print $2}' <<< "$out")" -v n="$requests" \
    'NR > 1 { sum += $5 } END { printf "| %s | %s | %d |\n", url, rps, sum / n }' "$csv"
}

main "$@"
