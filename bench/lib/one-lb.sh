# One lb in front of the nginx backends, for the single-target scripts (bench/split.sh, bench/memory.sh; sourced).
# Pinning as bench/run.sh: this shell, wrk and nginx on CPU 0, lb on CPU 1. Loopback only. Every process started
# here is in STARTED and stopped by PID on exit, and the temp dir $T is removed.
#
#   start_one_lb NAME    NAME names the temp dir and the messages. Reads LB_DLL (an lb.dll or a native lb; empty:
#                        publish the working tree) and LB_ENV (array). Sets T, LB (lb's PID), LB_CMD.

#   prepare_lb NAME ROOT the part of it a script with its own config and backends needs (bench/upload.sh): the temp
#                        dir T, STARTED with its stop-by-PID trap, this shell on CPU 0, and LB_CMD (publishing ROOT
#                        when LB_DLL is empty).

prepare_lb() {
  local name=$1 root=$2
  T=$(mktemp -d "/tmp/lb-$name.XXXXXX")
  STARTED=()
  trap 'for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; sleep 1; for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
  taskset -cp 0 $$ >/dev/null

  if [[ -z ${LB_DLL:-} ]]; then
    (cd "$root" && dotnet publish src/Host.cs/Host.csproj -c Release -nologo -v q -o "$T/publish" > "$T/build.log" 2>&1) \
      || { grep -E ' error ' "$T/build.log" | sort -u | head -5 >&2; exit 1; }
    LB_DLL=$T/publish/lb.dll
  fi
  if [[ $LB_DLL == *.dll ]]; then LB_CMD=(dotnet "$LB_DLL"); else LB_CMD=("$LB_DLL"); fi
}

start_one_lb() {
  local name=$1 root here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  root=$(cd "$here/../.." && pwd)
  export PATH=$PATH:/usr/sbin
  for tool in wrk nginx taskset curl; do
    command -v $tool >/dev/null || { echo "$name: needs $tool (bench/run.sh installs it)" >&2; exit 1; }
  done
  ulimit -n "$(ulimit -Hn)"   # 1,000 connections need more than the usual 1,024 descriptors

  prepare_lb "$name" "$root"
  source "$here/configs.sh"
  write_tls
  write_lb
  write_backend_nginx

  nginx -p "$T/backend" -c "$T/backend/nginx.conf" -e "$T/backend/error.log" -g 'daemon off;' &
  STARTED+=($!)
  env "${LB_ENV[@]}" taskset -c 1 "${LB_CMD[@]}" run -c "$T/lb/lb.toml" > "$T/lb.log" 2>&1 &
  LB=$!
  STARTED+=($LB)
  for _ in $(seq 1 150); do curl -sk -o /dev/null --max-time 1 https://127.0.0.1:20443/app2/ && break; sleep 0.2; done
  [[ $(curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:20443/app2/bench) == 200 ]] \
    || { echo "$name: /app2/bench is not forwarded" >&2; exit 1; }
}

lb_ticks() { awk '{print $14 + $15}' "/proc/$LB/stat"; } # lb's utime + stime, in clock ticks
