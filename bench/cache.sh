#!/usr/bin/env bash
# lb's HTTP cache (issue 6): requests/s for a cache hit against a proxied miss, in the same run, on loopback.
# A benchmark, not a test.
#
#   bench/cache.sh                    # about 1 min: REPEAT=2 rounds of DURATION=5 s per path, after a warm-up
#   LB_FROM=tree bench/cache.sh       # build the working tree instead of the last commit
#
# Knobs (environment): REPEAT, DURATION (s per point), WARMUP (s of load on each path first), CONNS (default 64),
# LB_FROM=head|tree (build the last commit in a temp copy, the default, or the working tree), LB_DLL (use this
# lb.dll, no build), OUT (default bench/RESULTS.md; the "Cache" section between <!-- cache:begin --> and
# <!-- cache:end --> is replaced, or appended when absent; nothing else in the file is touched), WRITE=0 (print only).
#
# One lb app `app1` with `cache = true` in front of nginx (1 KiB body, as bench/run.sh):
#   hit   GET /app1/cached    nginx says `Cache-Control: public, max-age=3600`: after the first request lb answers
#                             from memory and nginx never sees the request;
#   miss  GET /app1/uncached  no Cache-Control, no validator: not storable, so every request is looked up, misses
#                             and is proxied (X-Cache: MISS);
#   off   GET /app2/uncached  the same through an app without cache: what the cache costs a miss.
# Plain HTTP (plain_http = "proxy"), keep-alive, no cookie (so each miss also gets lb's persistence cookie).
# With 2+ CPUs: wrk and nginx on CPU 0, lb on CPU 1. Only processes this script started are stopped, by PID.
set -euo pipefail

main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REPEAT=${REPEAT:-2}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-5}
CONNS=${CONNS:-64}
LB_FROM=${LB_FROM:-head}
OUT=${OUT:-$HERE/RESULTS.md}
WRITE=${WRITE:-1}
LB_PORT=24080
NGINX_PORT=24101
LB_ENV=(DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_gcServer=0)

log() { printf '[cache-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v wrk >/dev/null || die "wrk is missing: apt-get install wrk"
command -v curl >/dev/null || die "curl is missing: apt-get install curl"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx is missing: apt-get install nginx"

if (( $(nproc) >= 2 )); then
  LOAD=(taskset -c 0); PROXY=(taskset -c 1); PINNING="wrk and nginx on CPU 0, lb on CPU 1"
else
  LOAD=(); PROXY=(); PINNING="one CPU shared by wrk, nginx and lb"
fi

T=$(mktemp -d /tmp/lb-cache-bench.XXXXXX)
STARTED=()
cleanup() {
  local p
  for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- backend: nginx, 1 KiB body -------------------------------------------------------------------------
body=$(printf 'x%.0s' $(seq 1 1023))
mkdir -p "$T/nginx/tmp"
cat > "$T/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; server_tokens off; default_type text/plain;
  keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path $T/nginx/tmp/body; proxy_temp_path $T/nginx/tmp/proxy; fastcgi_temp_path $T/nginx/tmp/fastcgi;
  uwsgi_temp_path $T/nginx/tmp/uwsgi; scgi_temp_path $T/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location /cached { add_header Cache-Control "public, max-age=3600"; return 200 "$body
"; }
    location / { return 200 "$body
"; }
  }
}
EOF
"${LOAD[@]}" "$NGINX" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" &
STARTED+=($!)

# ---- lb -----------------------------------------------------------------------------------------------
cat > "$T/lb.toml" <<EOF
[node]
name = "cache-bench"
[listen]
http = "127.0.0.1:$LB_PORT"
plain_http = "proxy"
[log]
access = "off"
[health]
enabled = false
[cache]
memory = "64MB"
[apps.app1]
cache = true
servers = [ { name = "n1", address = "127.0.0.1:$NGINX_PORT" } ]
[apps.app2]
servers = [ { name = "n1", address = "127.0.0.1:$NGINX_PORT" } ]
EOF

if [[ -n ${LB_DLL:-} ]]; then
  LB_SOURCE="given LB_DLL"
elif [[ $LB_FROM == tree ]]; then
  log "building lb (Release) in the working tree"
  (cd "$ROOT" && dotnet build src/Host.cs/Host.csproj -c Release -nologo -v q > "$T/build.log" 2>&1) \
    || { grep -E ' error ' "$T/build.log" | sort -u | head -5 >&2; die "the working tree does not build"; }
  LB_DLL=$ROOT/src/Host.cs/bin/Release/net10.0/lb.dll
  LB_SOURCE="working tree at $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet -- src || echo ' + uncommitted changes in src/')"
else
  sha=$(cd "$ROOT" && git rev-parse --short HEAD)
  log "building lb (Release) from commit $sha"
  mkdir -p "$T/src"
  (cd "$ROOT" && git archive HEAD) | tar -x -C "$T/src"
  (cd "$T/src" && dotnet build src/Host.cs/Host.csproj -c Release -nologo -v q > "$T/build.log" 2>&1) \
    || { grep -E ' error ' "$T/build.log" | sort -u | head -5 >&2; die "commit $sha does not build"; }
  LB_DLL=$T/src/src/Host.cs/bin/Release/net10.0/lb.dll
  LB_SOURCE="commit $sha"
fi

env "${LB_ENV[@]}" "${PROXY[@]}" dotnet "$LB_DLL" run -c "$T/lb.toml" > "$T/lb.log" 2>&1 &
STARTED+=($!)
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$LB_PORT/app2/uncached"; do
  (( SECONDS < deadline )) || { tail -5 "$T/lb.log" >&2; die "lb does not answer"; }
  sleep 0.2
done

# ---- check what each path is ---------------------------------------------------------------------------
xcache() { curl -s -D - -o /dev/null "http://127.0.0.1:$LB_PORT$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}'; }
xcache /app1/cached >/dev/null
[[ $(xcache /app1/cached) == HIT ]] || die "/app1/cached is not a cache hit"
[[ $(xcache /app1/uncached) == MISS ]] || die "/app1/uncached is not a miss"
[[ -z $(xcache /app2/uncached) ]] || die "/app2 has X-Cache: its cache should be off"

# ---- load ---------------------------------------------------------------------------------------------
rps() { # path seconds -> requests/s
  "${LOAD[@]}" wrk -t 2 -c "$CONNS" -d "${2}s" --latency "http://127.0.0.1:$LB_PORT$1" > "$T/wrk.out" 2>&1 \
    || { cat "$T/wrk.out" >&2; die "wrk failed on $1"; }
  grep -q 'Non-2xx' "$T/wrk.out" && { cat "$T/wrk.out" >&2; die "errors on $1"; }
  awk '/^Requests\/sec:/ {print $2}' "$T/wrk.out"
}
p50() { awk '$1=="50%" {print $2}' "$T/wrk.out"; }

PATHS=(hit:/app1/cached miss:/app1/uncached off:/app2/uncached)
log "warm-up: ${WARMUP}s per path"
for entry in "${PATHS[@]}"; do rps "${entry#*:}" "$WARMUP" >/dev/null; done
declare -A RESULTS LAT
for round in $(seq 1 "$REPEAT"); do
  for entry in "${PATHS[@]}"; do
    name=${entry%%:*}
    value=$(rps "${entry#*:}" "$DURATION")
    RESULTS[$name]+="$value "
    LAT[$name]+="$(p50) "
    log "round $round $name: $value req/s, p50 $(p50)"
  done
done
[[ $(xcache /app1/cached) == HIT ]] || die "/app1/cached stopped being a hit"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
hit=$(median <<< "${RESULTS[hit]}"); miss=$(median <<< "${RESULTS[miss]}"); off=$(median <<< "${RESULTS[off]}")
ratio=$(awk -v h="$hit" -v m="$miss" 'BEGIN {printf "%.2f", h / m}')
cost=$(awk -v m="$miss" -v o="$off" 'BEGIN {printf "%+.1f", (m / o - 1) * 100}')
load=$(cut -d' ' -f1-3 /proc/loadavg)

section=$(cat <<EOF
<!-- cache:begin -->
## Cache

\`bench/cache.sh\`, $(date -u +%Y-%m-%dT%H:%M:%SZ), lb $LB_SOURCE. One lb app with \`cache = true\` in front of nginx
(1 KiB body), plain HTTP, keep-alive, \`wrk -t 2 -c $CONNS\`, ${DURATION} s per point, median of $REPEAT rounds (each round
runs the three paths in turn), after ${WARMUP} s of warm-up per path; $PINNING; load average before the summary: $load.

| path | what lb does | req/s (median) | rounds | p50 latency (per round) |
|---|---|---:|---|---|
| hit \`/app1/cached\` | answers from memory, nginx not asked (\`X-Cache: HIT\`) | $hit | ${RESULTS[hit]% } | ${LAT[hit]% } |
| miss \`/app1/uncached\` | looks up, misses, proxies; not storable (\`X-Cache: MISS\`) | $miss | ${RESULTS[miss]% } | ${LAT[miss]% } |
| off \`/app2/uncached\` | proxies, app without cache | $off | ${RESULTS[off]% } | ${LAT[off]% } |

A hit serves **${ratio}x** the requests/s of a proxied miss; the lookup costs a miss ${cost}% against the same
request through an app without cache.
<!-- cache:end -->
EOF
)
printf '%s\n' "$section"
if [[ $WRITE == 1 ]]; then
  python3 - "$OUT" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
try:
    text = open(path, encoding="utf-8").read()
except FileNotFoundError:
    text = ""
pattern = re.compile(r"<!-- cache:begin -->.*?<!-- cache:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w", encoding="utf-8").write(text)
PY
  log "wrote the Cache section of $OUT"
fi
}

main "$@"
