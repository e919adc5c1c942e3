#!/usr/bin/env bash
# Everything the Grafana plugin needs, in order; exits non-zero on the first
# failure. Called from the repository's scripts/test.sh as
# `bash grafana-plugin/scripts/test.sh`; runs from any directory.
#   npm install (if needed) → typecheck → eslint → jest → webpack build →
#   backend linux/amd64 + linux/arm64 → zip → go vet + go test (real
#   ClickHouse, started by the tests unless MCPWATCH_TEST_CLICKHOUSE is set;
#   includes the dashboards/ test) → browser tests (host server + Chromium).
# Set MCPWATCH_SKIP_BROWSER=1 to leave out the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGIN_DIR=$(pwd)
ID=mcpwatch-mcpwatch-app
VERSION=$(node -p 'require("./package.json").version')
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "npm install"
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci fails on this lockfile (other platforms' optional @swc/core-* are missing), so npm install.
  npm install --no-audit --no-fund --loglevel=error
fi

step "typecheck"
npx tsc --noEmit
step "lint"
npx eslint src browser --max-warnings 0
step "jest"
npx jest --ci

step "frontend build"
npx webpack --mode production --config webpack.config.js

step "backend build (linux/amd64, linux/arm64)"
export CGO_ENABLED=0
for arch in amd64 arm64; do
  GOOS=linux GOARCH=$arch go build -trimpath -ldflags="-s -w" -o "dist/gpx_mcpwatch_linux_$arch" ./pkg
done
chmod 0755 dist/gpx_mcpwatch_linux_*

step "zip"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r dist "$tmp/$ID"
rm -f "$tmp/$ID"/*.map "$tmp/$ID"/datasource/*.map
rm -f "$ID"-*.zip
(cd "$tmp" && zip -qr "$PLUGIN_DIR/$ID-$VERSION.zip" "$ID")
unzip -l "$ID-$VERSION.zip" > "$tmp/zip.txt"
for f in module.js plugin.json datasource/module.js datasource/plugin.json gpx_mcpwatch_linux_amd64 gpx_mcpwatch_linux_arm64; do
  grep -q " $ID/$f\$" "$tmp/zip.txt" || { echo "zip lacks $ID/$f" >&2; exit 1; }
done

step "go vet + go test (real ClickHouse)"
go vet ./pkg/... ./cmd/... ./internal/... # not ./...: that walks node_modules
go test -count=1 ./pkg/... ./cmd/... ./internal/...

if [ "${MCPWATCH_SKIP_BROWSER:-}" != "1" ]; then
  step "browser tests"
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "Chromium missing: apt-get install -y chromium fonts-liberation" >&2; exit 1; }
  npx webpack --config browser/host.webpack.js >/dev/null
  go build -o "$tmp/hostserver" ./cmd/hostserver
  node browser/e2e.mjs "$tmp/hostserver"
fi
step "plugin CI passed"
