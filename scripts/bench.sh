#!/usr/bin/env bash
# `make bench`: runs the repository's Go benchmarks COUNT times each (default
# 5), one package at a time (the machine has 2 cores), and prints the median
# of every reported figure (ns/op, B/op, allocs/op and the b.ReportMetric
# units such as events/s or p99_ms).
#
#   BENCH=regex      which benchmarks (default .)
#   PKGS="./x/..."   which packages (default ./...)
#   COUNT=5          runs per benchmark
#   BENCHTIME=1s     go test -benchtime
# Raw output is kept in $MCPWATCH_CACHE/bench/last.txt.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
export MCPWATCH_CACHE="$cache"
export PATH="$cache/bin:$PATH"
bash scripts/install-deps.sh >/dev/null || { echo "bench: install-deps failed" >&2; exit 1; }
# The peer OTel Collector for the collector comparison (cached after the first build).
echo "bench: peer collector at $(bash scripts/build-otelcol.sh)"
mkdir -p "$cache/bench"
raw="$cache/bench/last.txt"
# shellcheck disable=SC2086
go test -p 1 -run='^$' -bench="${BENCH:-.}" -benchmem -count="${COUNT:-5}" \
  -benchtime="${BENCHTIME:-1s}" -timeout 60m ${PKGS:-./...} 2>&1 | tee "$raw"
status=${PIPESTATUS[0]}
echo
echo "Medians over ${COUNT:-5} runs (go test -bench='${BENCH:-.}' -count=${COUNT:-5} -benchtime=${BENCHTIME:-1s}):"
awk '
  /^pkg: / { pkg = $2 }
  /^Benchmark/ {
    name = $1; sub(/-[0-9]+$/, "", name)
    key = pkg " " name
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    for (i = 3; i + 1 <= NF; i += 2) {
      u = $(i + 1); k = key SUBSEP u
      if (!(k in cnt)) { units[key] = units[key] " " u }
      vals[k, ++cnt[k]] = $i
    }
  }
  function median(k,   m, i, j, t, a) {
    m = cnt[k]
    for (i = 1; i <= m; i++) a[i] = vals[k, i] + 0
    for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END {
    for (o = 1; o <= n; o++) {
      key = order[o]; split(units[key], us, " "); line = ""
      for (x = 1; x in us; x++) line = line sprintf("  %.6g %s", median(key SUBSEP us[x]), us[x])
      printf "%-70s%s\n", key, line
    }
  }' "$raw"
exit "$status"
