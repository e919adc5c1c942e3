#!/usr/bin/env bash
# Installs everything mcpwatch's demo and tests need on a fresh Debian machine
# (run as root). Idempotent and quick on a second run: every component is
# skipped when it is already there. Installed into $MCPWATCH_CACHE (default
# ~/.cache/mcpwatch) unless it is a Debian package.
#
#   ClickHouse 18.16 server + client, Chromium + fonts, zip, python3-venv (apt)
#   Apache Kafka jars (KRaft broker for the integration suite)   (Maven Central)
#   Alertmanager (notification tests)                     (Go module proxy)
#   telemetrygen (the OTel project's OTLP load generator) (Go module proxy)
#   a stock OTel Collector (Collector Builder: kafkareceiver for the topic
#     compatibility test, the benchmark peer)              (Go module proxy)
#   chdb-core (current ClickHouse engine for schema checks) (PyPI, in a venv)
#   the Python MCP stacks (pinned venvs) and the TypeScript capture package's
#     npm packages, for the real-sender tests             (PyPI, npm)
#   grafana-plugin npm dependencies, when grafana-plugin/package.json exists
#
# Set MCPWATCH_SKIP_APT=1 to skip the apt step (e.g. not root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
export MCPWATCH_CACHE="$cache"
mkdir -p "$cache/bin" "$cache/logs"
export PATH="$cache/bin:$PATH"

failed=0
# step NAME CHECK INSTALL: runs INSTALL unless CHECK succeeds; prints one line.
step() {
  local name="$1" check="$2" install="$3" log="$cache/logs/install-$1.log"
  if eval "$check" >/dev/null 2>&1; then
    printf 'install-deps: %-14s ok (cached)\n' "$name"
    return 0
  fi
  local t0=$SECONDS
  if eval "$install" >"$log" 2>&1 && eval "$check" >/dev/null 2>&1; then
    printf 'install-deps: %-14s ok (installed in %ds)\n' "$name" $((SECONDS - t0))
  else
    printf 'install-deps: %-14s FAILED after %ds; log: %s\n' "$name" $((SECONDS - t0)) "$log"
    tail -n 30 "$log" | sed 's/^/    /'
    failed=1
  fi
}

# --- Debian packages --------------------------------------------------------
# zip/unzip: the Grafana plugin packaging step; python3-venv: the pinned
# venvs of the real-sender tests.
apt_pkgs=(clickhouse-server clickhouse-client chromium fonts-liberation zip unzip python3-venv)
apt_missing() {
  local p
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}
apt_install() {
  # shellcheck disable=SC2046
  local missing
  missing="$(apt_missing | tr '\n' ' ')"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  # The clickhouse-server postinst wants no running service; tests start
  # their own servers with generated configs.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
}
if [ "${MCPWATCH_SKIP_APT:-}" = 1 ]; then
  echo "install-deps: apt            skipped (MCPWATCH_SKIP_APT=1)"
else
  step apt '[ -z "$(apt_missing)" ] && [ -x /usr/sbin/clickhouse-server ]' apt_install
fi

# --- Apache Kafka jars ------------------------------------------------------
step kafka-jars 'bash "$root/scripts/install-kafka.sh" --check' 'bash "$root/scripts/install-kafka.sh"'

# --- Alertmanager -----------------------------------------------------------
step alertmanager 'bash "$root/scripts/install-alertmanager.sh" --check' 'bash "$root/scripts/install-alertmanager.sh"'

# --- telemetrygen -----------------------------------------------------------
telemetrygen_install() {
  GOBIN="$cache/bin" go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest ||
    GOBIN="$cache/bin" go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.155.0
}
step telemetrygen '[ -x "$cache/bin/telemetrygen" ]' telemetrygen_install

# --- stock OTel Collector (scripts/build-otelcol.sh) ---------------------------
step otelcol 'bash "$root/scripts/build-otelcol.sh" --check' 'bash "$root/scripts/build-otelcol.sh" >/dev/null'

# --- chdb-core (current ClickHouse engine, for scripts/chdb_check.py) --------
chdb_install() {
  rm -rf "$cache/venv"
  if python3 -m venv "$cache/venv"; then
    "$cache/venv/bin/pip" install -q --disable-pip-version-check chdb-core
  else
    # No venv module (Debian without python3-venv): install into a target
    # dir and give it the same entry point.
    rm -rf "$cache/venv" && mkdir -p "$cache/venv/bin"
    python3 -m pip install -q --disable-pip-version-check --target "$cache/venv/lib" chdb-core
    printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$@"\n' "$cache/venv/lib" >"$cache/venv/bin/python"
    chmod +x "$cache/venv/bin/python"
  fi
}
step chdb-core '"$cache/venv/bin/python" -c "import chdb"' chdb_install

# --- the MCP stacks of the real-sender tests (internal/realsenders) ----------
# Python: one venv per pinned requirements file (mcp 2.3.0, fastmcp 4.2.3,
# OpenLLMetry 0.62.4 on mcp 1.30.0); TypeScript: the capture package's npm
# packages (the MCP SDK, OpenLLMetry JS, tsc), pinned by its package-lock.json.
step mcp-python 'bash "$root/scripts/install-instrumentation-python.sh" --check' \
  'bash "$root/scripts/install-instrumentation-python.sh"'
ts="$root/instrumentation/typescript"
ts_stamp="$ts/node_modules/.mcpwatch-installed"
ts_fresh() {
  [ -f "$ts_stamp" ] && [ "$ts_stamp" -nt "$ts/package.json" ] && [ "$ts_stamp" -nt "$ts/package-lock.json" ]
}
step mcp-typescript ts_fresh '(cd "$ts" && npm install --no-audit --no-fund) && touch "$ts_stamp"'

# --- grafana-plugin npm dependencies (owned by grafana-plugin/) -------------
plugin="$root/grafana-plugin"
if [ -f "$plugin/package.json" ]; then
  stamp="$plugin/node_modules/.mcpwatch-installed"
  npm_fresh() {
    [ -f "$stamp" ] && [ "$stamp" -nt "$plugin/package.json" ] &&
      { [ ! -f "$plugin/package-lock.json" ] || [ "$stamp" -nt "$plugin/package-lock.json" ]; }
  }
  step grafana-npm npm_fresh '(cd "$plugin" && npm install --no-audit --no-fund) && touch "$stamp"'
else
  echo "install-deps: grafana-npm    skipped (no grafana-plugin/package.json)"
fi

if [ "$failed" != 0 ]; then
  echo "install-deps: some components failed to install" >&2
  exit 1
fi
