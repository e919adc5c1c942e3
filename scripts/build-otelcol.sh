#!/usr/bin/env bash
# Builds the peer OTel Collector for the comparison benchmark: otlpreceiver →
# batchprocessor → contrib's kafkaexporter, with the OpenTelemetry Collector
# Builder. Builder, core and contrib versions must match (v0.155.0 works here;
# a newer builder against contrib v0.155 does not). Output:
#   $MCPWATCH_CACHE/bin/otelcol-peer   (default ~/.cache/mcpwatch/bin)
# Idempotent; takes ~2 min the first time. Prints the binary path.
set -euo pipefail
version="${OTELCOL_VERSION:-0.155.0}"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
bin="$cache/bin/otelcol-peer"
if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$version" ]; then
  echo "$bin"
  exit 0
fi
[ "${1:-}" = --check ] && exit 1
mkdir -p "$cache/bin" "$cache/otelcol"
if [ ! -x "$cache/bin/ocb-$version" ]; then
  GOBIN="$cache/otelcol/gobin" go install "go.opentelemetry.io/collector/cmd/builder@v$version" >&2
  mv "$cache/otelcol/gobin/builder" "$cache/bin/ocb-$version"
fi
work="$cache/otelcol/build-$version"
rm -rf "$work"
mkdir -p "$work"
cat >"$work/manifest.yaml" <<YAML
dist:
  name: otelcol-peer
  description: Peer OTel Collector for mcpwatch benchmarks (otlp -> batch -> kafka)
  output_path: $work/out
  version: $version
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver v$version
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor v$version
exporters:
  - gomod: github.com/open-telemetry/opentelemetry-contrib-placeholder v0.0.0
YAML
# (sed keeps the contrib path out of the heredoc's line length)
sed -i "s#github.com/open-telemetry/opentelemetry-contrib-placeholder v0.0.0#github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter v$version#" "$work/manifest.yaml"
"$cache/bin/ocb-$version" --config "$work/manifest.yaml" >&2
cp "$work/out/otelcol-peer" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$version" >"$bin.version"
echo "$bin"
