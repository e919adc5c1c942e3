// Package realsenders holds the real-sender tests (issue 12, item 7): the
// MCP stacks people run today — the official MCP Python SDK alone and with
// the capture middleware, fastmcp, OpenLLMetry Python, and the TypeScript
// SDK with the capture package or OpenLLMetry JS — run a scripted agent
// session with planted attacks and export OTLP to the real mcpwatch
// collector, which produces to Kafka (kfake); the analyzer (all three roles,
// the shipped rule pack, enrichment) writes to a real ClickHouse. The tests
// then read ClickHouse and compare with what the scenario runner says it
// did.
//
// The runners are instrumentation/python/scenarios/run.py (in the pinned
// venvs of scripts/install-instrumentation-python.sh) and
// instrumentation/typescript's dist/scenarios/run.js (npm packages pinned by
// its package-lock.json); scripts/install-deps.sh installs both. A missing
// runtime fails the stack's test.
//
// The package has no non-test code; this file only documents it.
package realsenders
