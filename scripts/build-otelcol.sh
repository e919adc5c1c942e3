#!/usr/bin/env bash
# Builds the peer OTel Collector for the comparison benchmark: otlpreceiver →
# batchprocessor → contrib's kafkaexporter, with the OpenTelemetry Collector
# Builder. It also has contrib's kafkareceiver and the otlphttp exporter, for
# the test that a stock collector reads our topic (internal/collector
# TestOtelcolKafkaReceiverReadsTopic). Builder, core and contrib versions must match (v0.155.0 works here;
# a newer builder against contrib v0.155 does not). Output:
#   $MCPWATCH_CACHE/bin/otelcol-peer   (default ~/.cache/mcpwatch/bin)
# Idempotent; takes ~2 min the first time. Prints the binary path.
set -euo pipefail
version="${OTELCOL_VERSION:-0.155.0}"
# what the cached binary was built with: the version and the component set
stamp="$version+kafkareceiver+otlphttp"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
bin="$cache/bin/otelcol-peer"
if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$stamp" ]; then
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
  - gomod: CONTRIB/receiver/kafkareceiver v$version
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor v$version
exporters:
  - gomod: CONTRIB/exporter/kafkaexporter v$version
  - gomod: go.opentelemetry.io/collector/exporter/otlphttpexporter v$version
YAML
# (sed keeps the contrib path out of the heredoc's line length)
sed -i "s#CONTRIB/#github.com/open-telemetry/opentelemetry-collector-contrib/#" "$work/manifest.yaml"
"$cache/bin/ocb-$version" --config "$work/manifest.yaml" >&2
cp "$work/out/otelcol-peer" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$stamp" >"$bin.version"
echo "$bin"
