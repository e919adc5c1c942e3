# mcpwatch — the two commands of the README, and a few helpers.
# Both `make demo` and `make test` install what they need (scripts/install-deps.sh).

.PHONY: demo test bench deps build otelcol

## demo: bring up the whole pipeline locally, replay a scenario, print what it found (ARGS=--keep to stay up)
demo:
	bash scripts/install-deps.sh
	go run ./cmd/demo $(ARGS)

## test: every test (unit, integration, fuzz smoke, rule tests, schema check, plugin)
test:
	bash scripts/test.sh

## bench: the Go benchmarks, 5 runs each, with medians
bench:
	bash scripts/bench.sh

## deps: install the test and demo dependencies only
deps:
	bash scripts/install-deps.sh

## build: compile every binary
build:
	go build ./...

## otelcol: build the peer OTel Collector used by the comparison benchmark
otelcol:
	bash scripts/build-otelcol.sh
