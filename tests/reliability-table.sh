#!/usr/bin/env bash
# Prints the README's reliability table (Markdown) from the rows the last ./test.sh run recorded in
# artifacts/reliability/*.tsv (tests/Shared/Reliability.cs, tests/Rules.Tests/Reliability.fs), with a total row.
# Paste its output between the README's "reliability table" markers.
set -euo pipefail
cd "$(dirname "$0")/.."
compgen -G "artifacts/reliability/*.tsv" >/dev/null || { echo "no rows in artifacts/reliability: run ./test.sh first" >&2; exit 1; }
echo "| area | what was tried | cases tried | faults injected | requests sent | requests failed |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
sort artifacts/reliability/*.tsv | awk -F'\t' '
  function n(x,   s, out) { s = sprintf("%d", x); out = ""; while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) } return s out }
  { printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, n($3), n($4), n($5), n($6); c += $3; f += $4; r += $5; x += $6 }
  END { printf "| **total** | | **%s** | **%s** | **%s** | **%s** |\n", n(c), n(f), n(r), n(x) }'
