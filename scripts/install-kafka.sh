#!/usr/bin/env bash
# Installs the Apache Kafka broker jars (test infrastructure only) from Maven
# Central into $MCPWATCH_CACHE/kafka/lib (default ~/.cache/mcpwatch/kafka/lib).
# Idempotent: does nothing when the jars of the pinned version are there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${MCPWATCH_CACHE:-$HOME/.cache/mcpwatch}"
lib="$cache/kafka/lib"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
if [ -f "$lib/kafka_2.13-$version.jar" ] && [ -f "$lib/.complete" ]; then
  exit 0
fi
# --check: report (exit status) whether it is installed, install nothing.
[ "${1:-}" = --check ] && exit 1
command -v mvn >/dev/null || { echo "install-kafka: mvn (Maven) is required" >&2; exit 1; }
command -v java >/dev/null || { echo "install-kafka: java (17) is required" >&2; exit 1; }
tmp="$lib.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
touch "$tmp/.complete"
rm -rf "$lib"
mv "$tmp" "$lib"
trap - EXIT
