#!/usr/bin/env bash
# BenchmarkDotNet for the Rules hot path (bench/Rules.Bench): routing decision, path normalise/strip,
# Location and Set-Cookie rewrites, cookie parse, persistence, round robin; time and bytes per call.
#
#   bench/rules.sh                  # --job short, all benchmarks, about 3 min
#   JOB=medium bench/rules.sh       # any BenchmarkDotNet job; FILTER='*Decide*' to run a subset
#
# Writes (or replaces) the "Rules hot path" section of bench/RESULTS.md; bench/run.sh keeps that section.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
JOB=${JOB:-short}
FILTER=${FILTER:-*}
OUT=${OUT:-$HERE/RESULTS.md}
ART=$(mktemp -d /tmp/lb-rules-bench.XXXXXX)
trap 'rm -rf "$ART"' EXIT

dotnet build "$HERE/Rules.Bench" -c Release -nologo -v q
# BenchmarkDotNet looks for the project from the working directory.
cd "$HERE/Rules.Bench"
# Exact bytes per decision and the size of one Decision.Forward object (not timed, so load does not matter).
allocations=$(dotnet bin/Release/net10.0/Rules.Bench.dll allocations)
one_object=$(awk -F': ' '/^one Decision.Forward object/ {print $2+0}' <<< "$allocations")
dotnet bin/Release/net10.0/Rules.Bench.dll --filter "$FILTER" --job "$JOB" --artifacts "$ART" \
  --exporters github csv > "$ART/console.log" 2>&1 || { tail -40 "$ART/console.log" >&2; exit 1; }

table=$(sed -e "s/&#39;/'/g" -e 's/&gt;/>/g' -e 's/&lt;/</g' -e 's/&amp;/\&/g' "$ART"/results/*-report-github.md)
csvfile=$(ls "$ART"/results/*-report.csv | head -1)
# Routing.Decide forward: mean ns and bytes, for run.sh's target check.
marker=$(python3 - "$csvfile" "$one_object" <<'EOF'
import csv, re, sys
def ns(v):
    v = v.replace(",", "").strip()
    m = re.match(r"([0-9.]+)\s*(ns|us|μs|ms|s)", v)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"ns": 1, "us": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]
def b(v):
    v = v.replace(",", "").strip()
    if v in ("-", ""):
        return 0
    m = re.match(r"([0-9.]+)\s*(B|KB|MB)", v)
    return int(float(m.group(1)) * {"B": 1, "KB": 1024, "MB": 1048576}[m.group(2)])
for r in csv.DictReader(open(sys.argv[1])):
    if r["Method"].startswith("'Routing.Decide forward /app2/bench'") or r["Method"] == "'Routing.Decide forward /app2/bench'":
        print(f"<!-- routing: mean_ns={ns(r['Mean']):.1f} allocated_bytes={b(r['Allocated'])} one_object_bytes={sys.argv[2]} -->")
        break
EOF
)

section=$(cat <<EOF
<!-- rules:begin -->
## Rules hot path (BenchmarkDotNet)

\`bench/rules.sh\` (job \`$JOB\`), $(date -u +%Y-%m-%dT%H:%M:%SZ), lb commit $(cd "$ROOT" && git rev-parse --short HEAD).
One call per operation on the bench config (3 apps x 3 servers); "Allocated" is bytes per call (MemoryDiagnoser).
Issue 7 asks for a routing decision in at most 500 ns with at most one allocation. A forward decision's one
unavoidable object is its \`Decision.Forward\` (the plan is a struct inside it); a decision allocating no more
than that object's size allocates only it. On a machine shared with other work, read Error/StdDev before the
Mean; "Allocated" does not depend on load. Exact bytes per call (\`Rules.Bench.dll allocations\`, 100,000 calls):

\`\`\`
$allocations
\`\`\`
$marker

$table
<!-- rules:end -->
EOF
)

python3 - "$OUT" "$section" <<'EOF'
import os, re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else "# lb benchmark results\n\n"
if re.search(r"<!-- rules:begin -->.*?<!-- rules:end -->", text, re.S):
    text = re.sub(r"<!-- rules:begin -->.*?<!-- rules:end -->", lambda _: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
EOF
echo "$table"
echo "wrote the Rules section of $OUT" >&2
