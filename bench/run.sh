#!/usr/bin/env bash
# lb against HAProxy, the seed's Apache->HAProxy chain and nginx, on loopback (issue 7).
#
#   sudo bench/run.sh                 # full run, about 25 min: REPEAT=3, 10 s per point, 60 s lb warm-up
#   sudo QUICK=1 bench/run.sh         # about 7 min: REPEAT=2, 5 s per point, 20 s warm-up
#
# Knobs (environment): REPEAT, DURATION (s per point), WARMUP (s of lb load before the warm rounds),
# COLD_SLICES (1-s slices measured right after lb starts), COLD_IDLE (s lb idles after its first answer before
# the cold slices: a standby taking over), LB_WARM_UP (lb's [node] warm_up, e.g. "5s"), LB_ENV (lb's environment, see below), CONNS ("64 1000"), TARGETS ("lb haproxy chain nginx"),
# QUIET_WAIT (s to wait, at most, for the machine to be idle before starting; default 180), QUIET_MAX (% busy
# with other work above which a point waits, default 25), QUIET_EACH (s at most per wait, default 60) and
# QUIET_BUDGET (s of such waiting in all, default 900),
# PROFILE=1 (perf record lb during one warm HTTPS point; report appended), LB_FROM=head|tree (build the last
# commit in a temp copy, the default, or the working tree), LB_DLL (use this lb.dll or native lb, no build), LB_AOT=1 (build lb with NativeAOT),
# OUT (default bench/RESULTS.md).
#
# CPU 0: wrk + the nginx backends + this script. CPU 1: the proxy under test (all four are started once and
# stay up; only the one being loaded does work). Everything listens on 127.0.0.1; every load is a bounded wrk run;
# only processes this script started are stopped, by PID; the temp dir is removed on exit.
set -euo pipefail

# The whole script is one function, parsed before it runs, so editing this file during a run cannot derail it.
main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
  REPEAT=${REPEAT:-2}; DURATION=${DURATION:-5}; WARMUP=${WARMUP:-20}
else
  REPEAT=${REPEAT:-3}; DURATION=${DURATION:-10}; WARMUP=${WARMUP:-60}
fi
COLD_SLICES=${COLD_SLICES:-10}
CONNS=${CONNS:-"64 1000"}
TARGETS=${TARGETS:-"lb haproxy chain nginx"}
PROFILE=${PROFILE:-0}
OUT=${OUT:-$HERE/RESULTS.md}
LOAD_CPU=0
PROXY_CPU=1
WRK_THREADS=2
COOKIE_APP=app2
PATH_UNDER_TEST=/app2/bench
# Issue 7 / TECH-NOTES runtime settings for lb (TieredPGO left at its default: on).
# LB_ENV="A=1 B=2" replaces them (LB_ENV="" runs lb with none: what the project's own runtimeconfig gives).
read -r -a LB_ENV <<< "${LB_ENV-DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_gcServer=0}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- preconditions ------------------------------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root (installs packages, raises ulimit -n)"
(( $(nproc --all) >= 2 )) || die "needs 2 CPUs (load generator on CPU 0, proxy on CPU 1)"

need_pkgs=()
for pair in wrk:wrk haproxy:haproxy nginx:nginx apache2:apache2 taskset:util-linux pgrep:procps \
            openssl:openssl curl:curl python3:python3 ss:iproute2; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [[ -x /usr/sbin/${pair%%:*} ]] || need_pkgs+=("${pair#*:}")
done
if (( ${#need_pkgs[@]} )); then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  # The Debian packages enable their system services; this script never uses or stops those.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
[[ $PROFILE == 1 ]] && ! command -v perf >/dev/null && { apt-get update -qq; apt-get install -y -qq linux-perf >/dev/null || true; }
export PATH=$PATH:/usr/sbin

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# This shell, wrk, curl and the backends run on CPU 0; proxies are started with taskset -c 1.
taskset -cp $LOAD_CPU $$ >/dev/null

T=$(mktemp -d /tmp/lb-bench.XXXXXX)
chmod 755 "$T"
STARTED=()            # every PID this script started, stopped on exit
cleanup() {
  local p
  for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [[ -n ${KEEP_TMP:-} ]] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 19101 19102 19103 19201 19202 19203 19301 19302 19303 20080 20443 21080 21443 22080 22081 22443 23080 23443; do
  ss -ltnH "sport = :$port" | grep -q . && die "port $port is in use"
done

# ---- build lb -----------------------------------------------------------------------------------------
# LB_FROM=head (default): build the last commit in a temp copy, so colleagues' half-made edits in src/ cannot
# break or skew a run; if that commit does not build or lb does not answer, its parents are tried in turn.
# LB_FROM=tree: the working tree as it is. Either way lb is built as it is deployed (samples/systemd):
# `dotnet publish`.
LB_FROM=${LB_FROM:-head}
# LB_AOT=1: publish lb ahead of time (NativeAOT, one native binary) instead of the JIT build.
if [[ ${LB_AOT:-0} == 1 ]]; then LB_PUBLISH_AOT=(-r linux-x64 -p:PublishAot=true); LB_BUILT=lb; else LB_PUBLISH_AOT=(); LB_BUILT=lb.dll; fi
source "$HERE/lib/configs.sh"
write_tls
write_lb
# lb_command FILE: how to start lb from FILE: `dotnet lb.dll`, or the file itself for a NativeAOT build (LB_AOT=1).
lb_command() { if [[ $1 == *.dll ]]; then LB_CMD=(dotnet "$1"); else LB_CMD=("$1"); fi; }
lb_answers() { # dll or native binary: starts lb on the bench config, waits for any HTTP answer, stops it
  lb_command "$1"
  env "${LB_ENV[@]}" "${LB_CMD[@]}" run -c "$T/lb/lb.toml" > "$T/lb/try.log" 2>&1 &
  local pid=$! ok=1
  STARTED+=($pid)
  local deadline=$((SECONDS + 30))
  while (( SECONDS < deadline )); do
    curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:20443/" && { ok=0; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  (( ok == 0 )) || { tail -5 "$T/lb/try.log" >&2; return 1; }
}
if [[ -n ${LB_DLL:-} ]]; then
  LB_SOURCE="given LB_DLL"
elif [[ $LB_FROM == tree ]]; then
  log "building lb (Release) in the working tree"
  (cd "$ROOT" && dotnet publish src/Host.cs/Host.csproj -c Release -nologo -v q "${LB_PUBLISH_AOT[@]}" -o "$T/lb-publish" > "$T/build.log" 2>&1) \
    || { grep -E ' error ' "$T/build.log" | sort -u | head -5 >&2; die "the working tree does not build"; }
  LB_DLL=$T/lb-publish/$LB_BUILT
  LB_SOURCE="working tree$(cd "$ROOT" && git diff --quiet -- src || echo ' (uncommitted changes in src/)') at $(cd "$ROOT" && git rev-parse --short HEAD)"
  lb_answers "$LB_DLL" || die "lb built from the working tree does not answer"
else
  for rev in HEAD HEAD~1 HEAD~2 HEAD~3 HEAD~4 HEAD~5 HEAD~6 HEAD~7; do
    sha=$(cd "$ROOT" && git rev-parse --short "$rev")
    log "building lb (Release) from commit $sha ($rev)"
    rm -rf "$T/src-snapshot"; mkdir -p "$T/src-snapshot"
    (cd "$ROOT" && git archive "$rev") | tar -x -C "$T/src-snapshot"
    if ! (cd "$T/src-snapshot" && dotnet publish src/Host.cs/Host.csproj -c Release -nologo -v q "${LB_PUBLISH_AOT[@]}" -o "$T/src-snapshot/publish" > "$T/build.log" 2>&1); then
      grep -E ' error ' "$T/build.log" | sort -u | head -3 >&2 || true
      continue
    fi
    LB_DLL=$T/src-snapshot/publish/$LB_BUILT
    if lb_answers "$LB_DLL"; then
      LB_SOURCE="commit $sha ($rev)"
      [[ $rev == HEAD ]] || LB_SOURCE+=": later commits did not build or answer"
      break
    fi
    LB_DLL=
  done
  [[ -n $LB_DLL ]] || die "no recent commit builds an lb that answers (see $T/build.log)"
fi
[[ -f $LB_DLL ]] || die "no $LB_DLL"
LB_COMMIT=$LB_SOURCE
log "lb: $LB_DLL ($LB_SOURCE)"

# ---- configs -------------------------------------------------------------------------------------------
write_backend_nginx
write_haproxy haproxy "    bind 127.0.0.1:21443 ssl crt $T/tls/lb.pem alpn http/1.1
    bind 127.0.0.1:21080"
write_haproxy chainhaproxy "    bind 127.0.0.1:22081"
write_apache
write_nginx_proxy

nginx -t -q -p "$T/backend" -c "$T/backend/nginx.conf" -e "$T/backend/error.log" || die "backend nginx config"
nginx -t -q -p "$T/nginxproxy" -c "$T/nginxproxy/nginx.conf" -e "$T/nginxproxy/error.log" || die "nginx proxy config"
haproxy -c -q -f "$T/haproxy/haproxy.cfg" || die "haproxy config"
haproxy -c -q -f "$T/chainhaproxy/haproxy.cfg" || die "chain haproxy config"
apache2 -t -d "$T/apache" -f "$T/apache/apache2.conf" 2>&1 | grep -v 'Syntax OK' >&2 || true
lb_command "$LB_DLL"
"${LB_CMD[@]}" check -c "$T/lb/lb.toml" >&2 || die "lb config"

# ---- processes -----------------------------------------------------------------------------------------
declare -gA ROOTS     # target -> root PIDs whose process trees are measured

wait_http() { # url deadline_s
  local url=$1 deadline=$((SECONDS + $2))
  while (( SECONDS < deadline )); do
    curl -sk -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.05
  done
  return 1
}

start_backends() {
  nginx -p "$T/backend" -c "$T/backend/nginx.conf" -e "$T/backend/error.log" -g 'daemon off;' &
  STARTED+=($!)
  wait_http http://127.0.0.1:19303/ 20 || die "backends did not start"
}

LB_PID=
start_lb() {
  env "${LB_ENV[@]}" taskset -c $PROXY_CPU "${LB_CMD[@]}" run -c "$T/lb/lb.toml" >> "$T/lb/lb.log" 2>&1 &
  LB_PID=$!
  STARTED+=($LB_PID)
  ROOTS[lb]=$LB_PID
}
stop_lb() {
  kill -TERM "$LB_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do kill -0 "$LB_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$LB_PID" 2>/dev/null || true
  wait "$LB_PID" 2>/dev/null || true
}

start_others() {
  taskset -c $PROXY_CPU haproxy -db -f "$T/haproxy/haproxy.cfg" > "$T/haproxy/out.log" 2>&1 &
  STARTED+=($!); ROOTS[haproxy]=$!
  taskset -c $PROXY_CPU haproxy -db -f "$T/chainhaproxy/haproxy.cfg" > "$T/chainhaproxy/out.log" 2>&1 &
  STARTED+=($!); local chain_haproxy=$!
  taskset -c $PROXY_CPU apache2 -d "$T/apache" -f "$T/apache/apache2.conf" -DFOREGROUND > "$T/apache/out.log" 2>&1 &
  STARTED+=($!); ROOTS[chain]="$! $chain_haproxy"
  taskset -c $PROXY_CPU nginx -p "$T/nginxproxy" -c "$T/nginxproxy/nginx.conf" -e "$T/nginxproxy/error.log" -g 'daemon off;' &
  STARTED+=($!); ROOTS[nginx]=$!
  wait_http "https://127.0.0.1:21443$PATH_UNDER_TEST" 20 || die "haproxy did not start"
  wait_http "https://127.0.0.1:22443$PATH_UNDER_TEST" 20 || die "apache did not start"
  wait_http "https://127.0.0.1:23443$PATH_UNDER_TEST" 20 || die "nginx proxy did not start"
}

port_of() { # target scheme
  case $1:$2 in
    lb:https) echo 20443;; lb:http) echo 20080;;
    haproxy:https) echo 21443;; haproxy:http) echo 21080;;
    chain:https) echo 22443;; chain:http) echo 22080;;
    nginx:https) echo 23443;; nginx:http) echo 23080;;
  esac
}

# ---- measurement -----------------------------------------------------------------------------------------
tree_pids() { # root PIDs -> them and all their descendants
  local p c
  for p in "$@"; do
    [[ -d /proc/$p ]] || continue
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
  done
}

cpu_line() { # cpuN -> "user+nice+system busy" ticks of that CPU from /proc/stat
  awk -v c="$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
cpu_user_sys() { # cpuN -> user+nice+system ticks
  awk -v c="$1" '$1 == c { print $2 + $3 + $4; exit }' /proc/stat
}

cpu_ticks() { # root PIDs -> utime+stime of their trees, plus the roots' reaped children (cutime+cstime)
  local total=0 p f root
  for p in $(tree_pids "$@"); do
    read -r -a f 2>/dev/null < "/proc/$p/stat" || continue
    total=$((total + f[13] + f[14]))
    for root in "$@"; do [[ $p == "$root" ]] && total=$((total + f[15] + f[16])); done
  done
  echo "$total"
}

mem_kib() { # field (VmRSS|VmHWM) root PIDs -> sum over their trees
  local field=$1 total=0 p k v _
  shift
  for p in $(tree_pids "$@"); do
    while read -r k v _; do [[ $k == "$field:" ]] && total=$((total + v)); done 2>/dev/null < "/proc/$p/status" || true
  done
  echo "$total"
}

sample_rss() { # out-file root PIDs: max summed VmRSS every 0.5 s while $T/sampling exists
  local out=$1 max=0 now
  shift
  while [[ -e $T/sampling ]]; do
    now=$(mem_kib VmRSS "$@")
    (( now > max )) && max=$now
    sleep 0.5
  done
  echo "$max" > "$out"
}

parse_wrk() { # wrk output -> requests rps p50_ms p99_ms socket_errors non2xx
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000;
                     if (v ~ /s$/) return v * 1000; return v + 0 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    / requests in / { req = $1 }
    /^Requests\/sec/ { rps = $2 }
    /Socket errors/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx/ { non = $NF }
    END { printf "%d\t%.1f\t%.3f\t%.3f\t%d\t%d\n", req, rps, p50, p99, err, non }' "$1"
}

RAW=$T/raw.tsv
printf 'phase\tround\ttarget\tscheme\tcookie\tconns\tseconds\tt_since_start_s\trequests\trps\tp50_ms\tp99_ms\tsocket_errors\tnon2xx\tcpu_us_per_req\trss_peak_kib\thwm_kib\tforeign_cpu1_pct\tbusy_cpu0_pct\tloadavg1\n' > "$RAW"

# One bounded wrk run against a target; appends one row to $RAW and prints rps.
run_point() { # phase round target scheme cookie(0|1) conns seconds [t_since_start]
  local phase=$1 round=$2 target=$3 scheme=$4 cookie=$5 conns=$6 secs=$7 since=${8:-}
  local url="$scheme://127.0.0.1:$(port_of "$target" "$scheme")$PATH_UNDER_TEST"
  local roots=${ROOTS[$target]} hdr=() c0 c1 spid wrkline req cpu_us rss hwm
  (( cookie )) && hdr=(-H "Cookie: SRVID=${COOKIE_APP}_2")
  # shellcheck disable=SC2086
  c0=$(cpu_ticks $roots)
  local p1a p0a p1b p0b w0 w1 foreign1 busy0
  p1a=$(cpu_user_sys cpu$PROXY_CPU); p0a=$(cpu_line cpu$LOAD_CPU); w0=$(date +%s%N)
  touch "$T/sampling"
  # shellcheck disable=SC2086
  sample_rss "$T/rss.out" $roots &
  spid=$!
  timeout $((secs + 60)) taskset -c $LOAD_CPU wrk -t$WRK_THREADS -c"$conns" -d"${secs}s" --timeout 10s --latency \
    "${hdr[@]}" "$url" > "$T/wrk.out" 2>&1 || true
  rm -f "$T/sampling"
  wait "$spid" || true
  # shellcheck disable=SC2086
  c1=$(cpu_ticks $roots)
  p1b=$(cpu_user_sys cpu$PROXY_CPU); p0b=$(cpu_line cpu$LOAD_CPU); w1=$(date +%s%N)
  # Time on the proxy's CPU used by processes other than the target (other work on this machine), and how
  # busy the load generator's CPU was: both in % of the point's wall time.
  foreign1=$(awk -v a=$((p1b - p1a)) -v t=$((c1 - c0)) -v w=$(((w1 - w0) / 1000000)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { f = (a - t) * 1000 / hz / w * 100; if (f < 0) f = 0; printf "%.0f", f }')
  busy0=$(awk -v a=$((p0b - p0a)) -v w=$(((w1 - w0) / 1000000)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", a * 1000 / hz / w * 100 }')
  wrkline=$(parse_wrk "$T/wrk.out")
  req=$(cut -f1 <<< "$wrkline")
  cpu_us=$(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v r="$req" 'BEGIN { printf "%.1f", (r > 0) ? (d * 1e6 / hz / r) : 0 }')
  rss=$(cat "$T/rss.out")
  # shellcheck disable=SC2086
  hwm=$(mem_kib VmHWM $roots)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$round" "$target" "$scheme" "$cookie" "$conns" \
    "$secs" "$since" "$wrkline" "$cpu_us" "$rss" "$hwm" "$foreign1" "$busy0" "$(cut -d' ' -f1 /proc/loadavg)" >> "$RAW"
  cut -f2 <<< "$wrkline"
}

# Checks that a target routes, strips the prefix, answers 1 KiB, and pins by cookie; printed into RESULTS.md.
CHECKS=$T/checks.tsv
check_target() { # target
  local t=$1 scheme h code size path backend set_cookie pinned
  for scheme in https http; do
    h=$(curl -sk -D - -o "$T/body" -w '%{http_code} %{size_download}' "$scheme://127.0.0.1:$(port_of "$t" "$scheme")$PATH_UNDER_TEST" | tr -d '\r')
    code=$(tail -1 <<< "$h" | cut -d' ' -f1); size=$(tail -1 <<< "$h" | cut -d' ' -f2)
    path=$(grep -i '^x-backend-path:' <<< "$h" | awk '{print $2}')
    set_cookie=$(grep -i '^set-cookie:' <<< "$h" | cut -d' ' -f2- | head -1)
    trace=no; grep -qi '^x-backend-traceparent: ..' <<< "$h" && trace=yes
    backend=""
    for _ in 1 2 3 4; do
      backend+=$(curl -sk -D - -o /dev/null -H "Cookie: SRVID=${COOKIE_APP}_2" \
        "$scheme://127.0.0.1:$(port_of "$t" "$scheme")$PATH_UNDER_TEST" | tr -d '\r' | awk 'tolower($1)=="x-backend:" {printf "%s ", $2}')
    done
    pinned=no; [[ $backend == "19202 19202 19202 19202 " ]] && pinned=yes
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$scheme" "$code" "$size" "${path:-?}" "${set_cookie:-none}" "$pinned ($backend)" "$trace" >> "$CHECKS"
  done
}

# ---- run -------------------------------------------------------------------------------------------------
busy_pct() { # [seconds] -> % of both CPUs busy over that time (default 2 s)
  local a b
  a=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  sleep "${1:-2}"
  b=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; if (d <= 0) d = 1; printf "%.0f", (y[1] - x[1]) * 100 / d }'
}
# Other work on a shared machine skews every figure: wait (bounded) for it to calm down, and record it.
deadline=$((SECONDS + ${QUIET_WAIT:-180}))
BUSY_BEFORE=$(busy_pct)
while (( BUSY_BEFORE > 15 && SECONDS < deadline )); do
  log "machine is ${BUSY_BEFORE}% busy with other work; waiting (up to ${QUIET_WAIT:-180} s in all)"
  sleep 8
  BUSY_BEFORE=$(busy_pct)
done
log "machine ${BUSY_BEFORE}% busy before starting"
# Before each warm point and each fresh lb, wait (within QUIET_BUDGET seconds for the whole run) until other
# work leaves the CPUs mostly idle (< QUIET_MAX %); points are still flagged by their own noise columns.
echo 0 > "$T/quiet_waited"
wait_quiet() {
  local waited b here=0
  waited=$(cat "$T/quiet_waited")
  b=$(busy_pct 1)
  while (( b > ${QUIET_MAX:-25} && waited < ${QUIET_BUDGET:-900} && here < ${QUIET_EACH:-60} )); do
    sleep 2
    waited=$((waited + 3)); here=$((here + 3))
    b=$(busy_pct 1)
  done
  echo "$waited" > "$T/quiet_waited"
}
START_TS=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$SECONDS
log "temp dir $T; REPEAT=$REPEAT DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS='$CONNS' TARGETS='$TARGETS'"
start_backends
start_others
printf 'target\tscheme\tstatus\tbytes\tbackend saw\tSet-Cookie without cookie\tpinned by SRVID=%s_2\ttraceparent sent to backend\n' "$COOKIE_APP" > "$CHECKS"

# lb cold: a fresh process per repeat, loaded from the moment it answers, in 1-s slices.
STARTUP=$T/startup.tsv
printf 'repeat\tms_to_first_response\n' > "$STARTUP"
for r in $(seq 1 "$REPEAT"); do
  (( r > 1 )) && stop_lb
  wait_quiet
  t_start=$(date +%s%N)
  start_lb
  wait_http "https://127.0.0.1:20443$PATH_UNDER_TEST" 60 || { cat "$T/lb/lb.log" >&2; die "lb did not start"; }
  t_ready=$(date +%s%N)
  printf '%s\t%s\n' "$r" $(((t_ready - t_start) / 1000000)) >> "$STARTUP"
  log "lb cold $r/$REPEAT: first response after $(((t_ready - t_start) / 1000000)) ms"
  # COLD_IDLE=S: lb idles S seconds before its first load, as a standby does before it takes over.
  if (( ${COLD_IDLE:-0} > 0 )); then log "  idle ${COLD_IDLE} s (standby)"; sleep "$COLD_IDLE"; fi
  for s in $(seq 1 "$COLD_SLICES"); do
    since=$(awk -v a="$t_start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    rps=$(run_point cold "$r" lb https 0 64 1 "$since")
    log "  slice $s at ${since}s: $rps req/s"
  done
done
check_target lb
for t in haproxy chain nginx; do [[ " $TARGETS " == *" $t "* ]] && check_target "$t"; done

# lb warm-up: WARMUP seconds more under load (alternating HTTPS/HTTP, 5-s slices), on top of the cold slices.
slices=$(( (WARMUP + 4) / 5 ))
for s in $(seq 1 "$slices"); do
  scheme=https; (( s % 2 == 0 )) && scheme=http
  since=$(awk -v a="$t_start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  rps=$(run_point warmup 0 lb "$scheme" 0 64 5 "$since")
  log "lb warm-up $s/$slices ($scheme) at ${since}s: $rps req/s"
done

# Warm rounds: every point runs each target in turn; the order rotates per round.
read -r -a order <<< "$TARGETS"
for r in $(seq 1 "$REPEAT"); do
  for conns in $CONNS; do
    for scheme in https http; do
      for cookie in 0 1; do
        for i in "${!order[@]}"; do
          t=${order[$(( (i + r - 1) % ${#order[@]} ))]}
          wait_quiet
          rps=$(run_point warm "$r" "$t" "$scheme" "$cookie" "$conns" "$DURATION")
          log "round $r/$REPEAT $t $scheme cookie=$cookie c=$conns: $rps req/s"
        done
      done
    done
  done
done

PROFILE_TXT=
LB_ENV_MEASURED="${LB_ENV[*]}"
if [[ $PROFILE == 1 ]] && command -v perf >/dev/null; then
  # A perf map needs the env at lb's start: restart lb with it, warm it, then sample it under HTTPS load.
  stop_lb
  # W^X off so perf can attribute JIT-compiled code through /tmp/perf-PID.map (else it is "memfd:doublemapper").
  LB_ENV+=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
  start_lb
  wait_http "https://127.0.0.1:20443$PATH_UNDER_TEST" 60 || die "lb did not restart"
  for s in $(seq 1 $(( (WARMUP + 4) / 5 ))); do run_point profile-warmup 0 lb https 0 64 5 >/dev/null; done
  perf record -F 499 -e cpu-clock -g -p "$LB_PID" -o "$T/perf.data" -- sleep "$DURATION" > /dev/null 2>&1 &
  ppid=$!
  run_point profile 0 lb https 0 64 "$DURATION" >/dev/null
  wait "$ppid" || true
  PROFILE_TXT=$T/profile.txt
  perf report -i "$T/perf.data" --no-children -g none --sort dso,sym --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | cut -c1-160 | head -45 > "$PROFILE_TXT" || true
  perf report -i "$T/perf.data" --no-children -g none --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15 > "$T/profile-dso.txt" || true
  rm -f "/tmp/perf-$LB_PID.map" "/tmp/perfinfo-$LB_PID.map"
  log "profile taken"
fi

# ---- report ----------------------------------------------------------------------------------------------
VERSIONS=$T/versions.txt
{
  echo "haproxy: $(haproxy -v 2>&1 | head -1)"
  echo "nginx: $(nginx -v 2>&1 | head -1)"
  echo "apache2: $(apache2 -v 2>&1 | head -1)"
  echo "dotnet: $(dotnet --version) (runtime $(dotnet --list-runtimes | awk '/Microsoft.AspNetCore.App/ {v=$2} END {print v}') ASP.NET Core)"
  echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "openssl: $(openssl version)"
  echo "certificate: self-signed, $(openssl x509 -in "$T/tls/lb.crt" -noout -text | awk -F': ' '/Public Key Algorithm/ {a=$2} /Public-Key:/ {gsub(/^ +/, ""); k=$0} END {print a, k}')"
  echo "kernel: $(uname -r)"
  echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo) x $(nproc --all)"
  echo "lb: built from $LB_SOURCE"
  echo "machine busy with other work just before the run: ${BUSY_BEFORE}% of both CPUs; waited $(cat "$T/quiet_waited") s in all for quiet (< ${QUIET_MAX:-25}% busy) before points"
} > "$VERSIONS"
# The raw rows go beside the report: bench/results/last-run.tsv for bench/RESULTS.md, else OUT with .tsv.
if [[ $OUT -ef $HERE/RESULTS.md || $OUT == "$HERE/RESULTS.md" ]]; then
  mkdir -p "$HERE/results"; cp "$RAW" "$HERE/results/last-run.tsv"
else
  cp "$RAW" "${OUT%.md}.tsv"
fi
python3 "$HERE/lib/report.py" --raw "$RAW" --checks "$CHECKS" --startup "$STARTUP" --versions "$VERSIONS" \
  --out "$OUT" --date "$START_TS" --quick "$QUICK" --repeat "$REPEAT" --duration "$DURATION" --warmup "$WARMUP" \
  --cold-slices "$COLD_SLICES" --lb-env "$LB_ENV_MEASURED" --elapsed $((SECONDS - T0)) \
  --profile "${PROFILE_TXT:-}" --profile-dso "$( [[ -n $PROFILE_TXT ]] && echo "$T/profile-dso.txt")" \
  --wrk "wrk -t$WRK_THREADS -c{64,1000} -d${DURATION}s --timeout 10s --latency [-H 'Cookie: SRVID=${COOKIE_APP}_2'] {https,http}://127.0.0.1:PORT$PATH_UNDER_TEST"
log "wrote $OUT in $((SECONDS - T0)) s"
}

main "$@"; exit $?
