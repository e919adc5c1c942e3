#!/usr/bin/env bash
# The test command (`make test`, `.ci/run`): installs what the tests need, then
# runs every check. Every step runs even when an earlier one failed; the run
# fails if any step failed. The last line is "N passed, N failed" (steps).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
export MCPWATCH_CACHE="$cache"
export PATH="$cache/bin:$PATH"

# Every process this run starts carries this marker in its environment, so
# that at the end we can stop exactly those (and nothing else) if a test left
# one behind.
export MCPWATCH_TESTRUN="$$-$(date +%s%N)"
reap() {
  local pid env
  for env in /proc/[0-9]*/environ; do
    pid="${env#/proc/}"; pid="${pid%/environ}"
    [ "$pid" = "$$" ] && continue
    if grep -qsxz "MCPWATCH_TESTRUN=$MCPWATCH_TESTRUN" "$env" 2>/dev/null; then
      echo "test.sh: stopping leftover process $pid: $(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline | cut -c1-120)"
      kill -TERM "$pid" 2>/dev/null
    fi
  done
}
# Servers shared by a test binary (internal/testbed) die with it; their temp
# dirs are removed here once their owner is gone.
sweep() {
  local d pid
  for d in "${TMPDIR:-/tmp}"/mcpwatch-testbed-*; do
    [ -f "$d/owner.pid" ] || continue
    pid="$(cat "$d/owner.pid" 2>/dev/null)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
    rm -rf "$d"
  done
}
trap 'reap; sweep' EXIT

passed=0 failed=0 failed_steps=()
# step NAME CMD...: runs CMD, records the result.
# TEST_STEPS="gofmt schema-chdb ..." runs only the named steps (for local use;
# prefixes match, e.g. "fuzz plugin"); unset = every step.
step() {
  local name="$1"; shift
  local t0=$SECONDS
  if [ -n "${TEST_STEPS:-}" ]; then
    local want match=0
    for want in $TEST_STEPS; do
      case "$name" in "$want"*) match=1 ;; esac
    done
    [ "$match" = 1 ] || return 0
  fi
  echo
  echo "=== step: $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "=== step: $name: ok ($((SECONDS - t0))s)"
  else
    failed=$((failed + 1))
    failed_steps+=("$name")
    echo "=== step: $name: FAILED ($((SECONDS - t0))s)"
  fi
}

gofmt_check() {
  local out
  out="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*'))"
  if [ -n "$out" ]; then
    echo "not gofmt-ed:"; echo "$out"; return 1
  fi
}

# fuzz_smoke PKG TARGET: runs a fuzz target briefly when it exists.
fuzz_smoke() {
  local pkg="$1" target="$2"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-15s}" "$pkg"
}
has_fuzz() { grep -qs "^func $2(" "$1"/*_test.go; }

# The analyzer's rule subcommands exist once cmd/analyzer implements them.
has_rules_cmd() { grep -qs 'subcommands\["rules"\]' cmd/analyzer/*.go; }

plugin_npm_script() {
  [ -f grafana-plugin/package.json ] || return 1
  node -e 'const s=(require("./grafana-plugin/package.json").scripts||{}); for (const n of ["ci","test"]) if (s[n]) { console.log(n); process.exit(0) } process.exit(1)'
}

# queries_chdb: the query corpora (every statement of the analyzer, the
# incident store, the sealer, the baseline store and the plugin backend, as
# run on ClickHouse 18.16 by TestQueryCorpus and TestPluginQueryCorpus)
# replayed and compared on chdb, plus the cluster profile's DDL parsed.
queries_chdb() {
  local dir rc
  dir="$(mktemp -d "${TMPDIR:-/tmp}/mcpwatch-corpus-XXXXXX")"
  MCPWATCH_QUERY_CORPUS="$dir" go test ./internal/store -run '^TestQueryCorpus$' -count=1 &&
    (cd grafana-plugin && MCPWATCH_QUERY_CORPUS="$dir" go test ./pkg/plugin -run '^TestPluginQueryCorpus$' -count=1) &&
    "$cache/venv/bin/python" scripts/chdb_queries.py "$dir/main.json" "$dir/plugin.json"
  rc=$?
  rm -rf "$dir"
  return $rc
}

# security_suite: the TestSecurity* tests of both Go modules (docs/security.md).
security_suite() {
  go test ./... -run '^TestSecurity' -count=1 -timeout 10m -p 2 &&
    (cd grafana-plugin && go test ./... -run '^TestSecurity' -count=1 -timeout 5m)
}

# The whole run is one function so that bash has parsed all of it before it
# starts (editing this file during a run cannot change the run).
main() {
  step install-deps bash scripts/install-deps.sh
  step go-vet go vet ./...
  step gofmt gofmt_check
  # The security suite (docs/security.md) runs as its own step: every test
  # named TestSecurity* in either Go module, one regression test per class of
  # hostile or careless input.
  step go-test go test ./... -count=1 -timeout 15m -p 2 -skip '^TestSecurity'
  step security security_suite
  for t in FuzzFromTraces FuzzFromLogs FuzzDirectTraces FuzzDirectLogs FuzzDecoder; do
    if has_fuzz internal/event "$t"; then step "fuzz-$t" fuzz_smoke ./internal/event "$t"; fi
  done
  if has_rules_cmd; then
    step rules-lint go run ./cmd/analyzer rules lint
    step rules-test go run ./cmd/analyzer rules test
  fi
  step schema-chdb "$cache/venv/bin/python" scripts/chdb_check.py schema
  step queries-chdb queries_chdb
  # The MCP capture packages, each tested in its own ecosystem against the
  # real SDK (instrumentation/*/test.sh installs its pinned dependencies).
  for d in instrumentation/*/; do
    if [ -f "$d/test.sh" ]; then step "instrumentation-$(basename "$d")" bash "$d/test.sh"; fi
  done
  # Hook for grafana-plugin/ (its own Go module and npm project): its npm
  # "ci" script (or "test") runs its whole suite, Go backend included; without
  # one, at least its Go tests run here.
  if script="$(plugin_npm_script)"; then
    step "plugin-npm-$script" npm --prefix grafana-plugin run --silent "$script"
  elif [ -f grafana-plugin/go.mod ]; then
    step plugin-go-test bash -c 'cd grafana-plugin && go vet ./... && go test ./... -count=1 -timeout 10m'
  fi

  reap
  sweep
  trap - EXIT
  echo
  if [ "$failed" -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
main "$@"; exit
