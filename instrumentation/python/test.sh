#!/usr/bin/env bash
# Installs the pinned venvs (scripts/install-instrumentation-python.sh; quick
# when they are there) and runs the capture package's tests with pytest:
#   venv-mcp-sdk      tests/ against mcp 2.3.0 (+ the scenario runner for
#                     every stack, each in its own venv, when tests/test_scenarios.py exists)
#   venv-mcp-fastmcp  tests/ against fastmcp 4.2.3 on mcp 2.3.0
# Exits non-zero when an install or a test fails. Extra arguments go to pytest.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"

"$root/scripts/install-instrumentation-python.sh" || { echo "test.sh: install failed" >&2; exit 1; }

status=0
for venv in sdk fastmcp; do
  echo "== pytest in venv-mcp-$venv"
  (cd "$here" && PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" \
     "$cache/venv-mcp-$venv/bin/python" -m pytest -p no:cacheprovider -q "$@") || status=1
done
exit "$status"
