#!/usr/bin/env bash
# Runs the whole test suite and prints one closing line: "tests: P passed, F failed[, S skipped]".
# As root it first installs the Debian packages the tests need (tests/install-deps.sh, the one list); skipped
# tests are allowed only when not running as root (VRRP/failover tests need root; a test whose package is
# missing skips and names it).
set -uo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" = "0" ]; then
  tests/install-deps.sh 1>&2 || { echo "tests: 0 passed, 1 failed"; exit 1; }
fi
results=artifacts/test-results
rm -rf "$results" artifacts/reliability
dotnet build Lb.sln -c Release -nologo -clp:ErrorsOnly 1>&2 || { echo "tests: 0 passed, 1 failed"; exit 1; }
# One test project at a time (-m:1): the fault suites' full-speed clients (Host.Tests) starved the VRRP timing
# tests (Vrrp.Tests) when both ran at once on 2 cores (a SIGTERM handover lost a request in a full CI run).
dotnet test Lb.sln -c Release --no-build -nologo -m:1 "$@"
status=$?
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  line=$(grep -o '<Counters [^>]*>' "$trx")
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$line"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$line")
  nr=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$line")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${nr:-0}))
done
# The reliability table: rows recorded by hostile-input and fault tests (tests/Shared/Reliability.cs).
if compgen -G "artifacts/reliability/*.tsv" >/dev/null; then
  echo "reliability (area | what | cases | faults | requests | failed):"
  sort artifacts/reliability/*.tsv | awk -F'\t' '{ printf "  %-9s %-70s %9s %7s %9s %6s\n", $1, $2, $3, $4, $5, $6;
    c += $3; f += $4; r += $5; x += $6 } END { printf "  %-9s %-70s %9s %7s %9s %6s\n", "total", "", c, f, r, x }'
fi
# A crashed test host exits non-zero without counting a failure: count it as one.
if [ $status -ne 0 ] && [ $failed -eq 0 ]; then failed=1; fi
if [ "$(id -u)" = "0" ] && [ $skipped -gt 0 ]; then
  echo "$skipped test(s) were skipped while running as root: that is a failure here" >&2
  failed=$((failed + skipped))
fi
if [ $skipped -gt 0 ]; then
  echo "tests: $passed passed, $failed failed, $skipped skipped"
else
  echo "tests: $passed passed, $failed failed"
fi
[ $failed -eq 0 ]
