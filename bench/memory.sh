#!/usr/bin/env bash
# What lb's resident memory is made of under load (issue 7: RSS <= 64 MiB at 64 connections, <= 128 MiB at 1,000).
# One lb, loaded over HTTPS and HTTP at CONNS connections; its peak RSS (VmHWM) and a breakdown of
# /proc/PID/smaps at the end: anonymous (GC heap, malloc arenas, stacks), JIT code, and file-backed images.
#
#   sudo bench/memory.sh                                  # builds lb (JIT) from the working tree; about 1 min
#   sudo LB_DLL=/path/lb CONNS=1000 bench/memory.sh       # a native (NativeAOT) lb, 1,000 connections
#   sudo LB_ENV="DOTNET_GCgen0size=0x400000" bench/memory.sh
#
# Knobs (environment): LB_DLL, CONNS (64), SECS (10 s per load), LB_ENV (lb's environment; default as bench/run.sh),
# ADDRESSES=1 (print each large anonymous mapping's address range, to tell GC regions from malloc arenas).
#
# Pinning as bench/run.sh: wrk and the nginx backends on CPU 0, lb on CPU 1. Loopback only; every load is a
# bounded wrk run; only the processes this script started are stopped, by PID.
set -euo pipefail

main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONNS=${CONNS:-64}
SECS=${SECS:-10}
read -r -a LB_ENV <<< "${LB_ENV-DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_gcServer=0}"
source "$HERE/lib/one-lb.sh"
start_one_lb memory

echo "lb: ${LB_CMD[*]}; env: ${LB_ENV[*]:-none}; $CONNS connections, ${SECS} s per load"
echo "idle after the first answer: $(rss_kib) KiB"
PEAK_KIB=0
for url in https://127.0.0.1:20443/app2/bench http://127.0.0.1:20080/app2/bench \
           https://127.0.0.1:20443/app2/bench http://127.0.0.1:20080/app2/bench; do
  load "$url"
done
echo "peak RSS (VmHWM): $(status_kib VmHWM) KiB; now: $(rss_kib) KiB"
echo
echo "breakdown at the largest sample, $PEAK_KIB KiB:"
cat "$T/at-peak"
echo
echo "breakdown now (KiB, from /proc/$LB/smaps):"
breakdown
}

status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$LB/status"; }
rss_kib() { status_kib VmRSS; }

load() { # url: one bounded wrk run; prints req/s, lb's CPU per request and the largest RSS sampled during it
  local out peak=0 now t0 t1 requests
  t0=$(lb_ticks)
  timeout $((SECS + 30)) taskset -c 0 wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s "$1" > "$T/wrk.out" &
  local wrk=$!
  while kill -0 $wrk 2>/dev/null; do
    now=$(rss_kib)
    (( now > peak )) && peak=$now
    if (( now > PEAK_KIB )); then PEAK_KIB=$now; breakdown > "$T/at-peak"; fi
    sleep 0.2
  done
  wait $wrk || true
  t1=$(lb_ticks)
  out=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.out")
  requests=$(awk '/requests in/ {print $1}' "$T/wrk.out")
  echo "$1: ${out:-?} req/s, $(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / ${requests:-1} )) µs CPU/request," \
       "RSS up to $peak KiB, $(status_kib Threads) threads"
}

# Rss per kind of mapping: the GC heap and other anonymous memory, thread stacks, JIT code (anonymous and
# executable, or the double-mapped W^X view), and each file-backed image.
breakdown() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { addr = $1; perms = $2; name = (NF >= 6) ? $6 : ""; next }
    /^Rss:/ {
      kind = name
      if (name == "") kind = (perms ~ /x/) ? "[anon, executable: JIT code]" : "[anon: heaps, arenas]"
      else if (name ~ /^\/memfd:doublemapper/) kind = "[doublemapper: JIT code, W^X]"
      else if (name ~ /^\//) { n = split(name, parts, "/"); kind = parts[n] }
      rss[kind] += $2; total += $2
      if (kind ~ /^\[anon/ && $2 >= 1024) big[kind] = big[kind] " " int($2 / 1024) (ENVIRON["ADDRESSES"] ? "@" addr : "")
    }
    END {
      for (k in rss) if (rss[k] >= 512) printf "%8d  %s%s\n", rss[k], k, (k in big) ? " (mappings of 1 MiB or more, MiB:" big[k] ")" : ""
      printf "%8d  total\n", total
    }' "/proc/$LB/smaps" | sort -rn
}

main "$@"
