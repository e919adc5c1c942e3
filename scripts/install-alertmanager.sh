#!/usr/bin/env bash
# Builds Prometheus Alertmanager (test infrastructure: the notification tests
# send real alerts to it) into $MCPWATCH_CACHE/bin/alertmanager.
# `go install .../cmd/alertmanager` fails because the module lacks the built
# UI, so build from a writable copy of the module with a placeholder
# ui/app/dist/index.html. Idempotent: does nothing when the binary exists.
set -euo pipefail
version="${ALERTMANAGER_VERSION:-v0.34.2}"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
bin="$cache/bin/alertmanager"
if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
# --check: report (exit status) whether it is installed, install nothing.
[ "${1:-}" = --check ] && exit 1
mkdir -p "$cache/bin"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
src="$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/alertmanager@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$src" ] || { echo "install-alertmanager: cannot download the module" >&2; exit 1; }
cp -r "$src" "$work/am"
chmod -R u+w "$work/am"
mkdir -p "$work/am/ui/app/dist"
printf '<!doctype html><title>Alertmanager</title><p>UI not built (mcpwatch test build).</p>\n' > "$work/am/ui/app/dist/index.html"
(cd "$work/am" && GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" ./cmd/alertmanager)
mv "$bin.tmp" "$bin"
echo "$version" > "$bin.version"
