#!/usr/bin/env bash
# Runs ./test.sh while stress-ng keeps both cores 60 % busy, RUNS times in a row (default 3), and reports each run's
# closing line and failed tests. A test that passes only on a quiet machine fails here (issue 22: CI machines are
# never quiet). Exit 0 only when every run is green.
#
#   sudo tests/stress-run.sh            # three runs
#   RUNS=1 LOAD=80 tests/stress-run.sh  # one run at 80 % per core
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
LOAD=${LOAD:-60}
# Bounded: stress-ng stops by itself after this long even if this script is killed.
BOUND_S=${BOUND_S:-7200}

if ! command -v stress-ng >/dev/null; then
  if [ "$(id -u)" = "0" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
  else
    echo "stress-run: stress-ng is not installed (Debian package stress-ng; run as root to install it)" >&2
    exit 2
  fi
fi

stress_pid=
stop_stress() { [ -n "$stress_pid" ] && kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null; stress_pid=; }
trap stop_stress EXIT

green=0
for run in $(seq 1 "$RUNS"); do
  stress-ng --cpu 2 --cpu-load "$LOAD" --timeout "${BOUND_S}s" --quiet &
  stress_pid=$!
  log=$(mktemp /tmp/stress-run.XXXXXX)
  started=$(date +%s)
  ./test.sh >"$log" 2>&1
  status=$?
  stop_stress
  took=$(( $(date +%s) - started ))
  last=$(tail -n 1 "$log")
  echo "run $run/$RUNS under stress-ng --cpu 2 --cpu-load $LOAD (${took} s): $last"
  grep -E '^\s+Failed ' "$log" | sed 's/^/  /' | head -20
  if [ $status -eq 0 ]; then green=$((green + 1)); else echo "  full output: $log"; continue; fi
  rm -f "$log"
done
echo "stress-run: $green of $RUNS runs green"
[ "$green" -eq "$RUNS" ]
