#!/usr/bin/env bash
# Installs the Python MCP stacks that instrumentation/python tests and runs,
# one venv per requirements file, every package pinned:
#
#   venv-mcp-sdk          mcp 2.3.0 (+ OTel SDK, OTLP/HTTP exporter, pytest,
#                         hatchling, opentelemetry-instrumentation)
#   venv-mcp-fastmcp      fastmcp 4.2.3 on mcp 2.3.0
#   venv-mcp-openllmetry  opentelemetry-instrumentation-mcp 0.62.4 on mcp 1.30.0
#
# under ${MCPWATCH_CACHE:-~/.cache/mcpwatch}. The capture package itself is not
# installed into them (the venvs are shared by every checkout): test.sh and
# scenarios/run.py put instrumentation/python/src on sys.path.
#
#   scripts/install-instrumentation-python.sh            install what is missing or stale
#   scripts/install-instrumentation-python.sh --check    exit 0 when everything is installed
#   scripts/install-instrumentation-python.sh sdk        only the named venvs
#
# Idempotent and quick on a second run: a venv whose stamp (sha256 of its
# requirements file and the interpreter version) matches is left alone. A stale
# venv is rebuilt from scratch so it holds exactly the pinned set. Concurrent
# runs are serialised per venv with flock. Needs python3 (3.10+) with venv, and
# PyPI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
reqdir="$root/instrumentation/python/requirements"
python="${MCPWATCH_PYTHON:-python3}"

check=0
names=()
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    sdk|fastmcp|openllmetry) names+=("$arg") ;;
    *) echo "install-instrumentation-python: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(sdk fastmcp openllmetry)

# Packages each venv must hold (found, not imported: a cheap sanity check
# beyond the stamp, e.g. against a half-deleted venv).
probe() {
  case "$1" in
    sdk) echo "mcp mcp_types opentelemetry.sdk opentelemetry.exporter.otlp.proto.http pytest uvicorn hatchling" ;;
    fastmcp) echo "fastmcp mcp opentelemetry.sdk opentelemetry.exporter.otlp.proto.http pytest uvicorn" ;;
    openllmetry) echo "opentelemetry.instrumentation.mcp mcp opentelemetry.sdk opentelemetry.exporter.otlp.proto.http uvicorn" ;;
  esac
}

pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
stamp_of() { echo "$(sha256sum "$reqdir/$1.txt" | cut -d' ' -f1) python-$pyver"; }

is_ok() {
  local name="$1" venv="$cache/venv-mcp-$1"
  [ -x "$venv/bin/python" ] || return 1
  [ "$(cat "$venv/.mcpwatch-stamp" 2>/dev/null)" = "$(stamp_of "$name")" ] || return 1
  "$venv/bin/python" - $(probe "$name") >/dev/null 2>&1 <<'PY'
import importlib.util, sys
sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)
PY
}

install_one() {
  local name="$1" venv="$cache/venv-mcp-$1"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --no-input -q -r "$reqdir/$name.txt"
  "$venv/bin/pip" check
  stamp_of "$name" >"$venv/.mcpwatch-stamp"
}

mkdir -p "$cache/logs"
failed=0
for name in "${names[@]}"; do
  [ -f "$reqdir/$name.txt" ] || { echo "install-instrumentation-python: no $reqdir/$name.txt" >&2; exit 2; }
  venv="$cache/venv-mcp-$name"
  if [ "$check" = 1 ]; then
    if is_ok "$name"; then
      printf 'install-instrumentation-python: %-22s ok\n' "venv-mcp-$name"
    else
      printf 'install-instrumentation-python: %-22s MISSING or stale (%s)\n' "venv-mcp-$name" "$venv"
      failed=1
    fi
    continue
  fi
  log="$cache/logs/install-venv-mcp-$name.log"
  t0=$SECONDS
  # One installer per venv at a time (the cache is shared between checkouts).
  exec 9>"$cache/venv-mcp-$name.lock"
  flock 9
  if is_ok "$name"; then
    printf 'install-instrumentation-python: %-22s ok (cached)\n' "venv-mcp-$name"
  elif install_one "$name" >"$log" 2>&1 && is_ok "$name"; then
    printf 'install-instrumentation-python: %-22s ok (installed in %ds)\n' "venv-mcp-$name" $((SECONDS - t0))
  else
    printf 'install-instrumentation-python: %-22s FAILED after %ds; log: %s\n' "venv-mcp-$name" $((SECONDS - t0)) "$log"
    tail -n 30 "$log" | sed 's/^/    /'
    failed=1
  fi
  exec 9>&-
done
exit "$failed"
