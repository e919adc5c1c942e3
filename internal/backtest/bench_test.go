package backtest

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkBacktest stores MCPWATCH_BACKTEST_EVENTS (default 1,000,000)
// generated calls over 30 days in a fresh database of the test ClickHouse
// once (store batch inserts, as the ingest role writes them), then
// backtests a changed copy of a pack rule — stateful, diffed against the
// deployed version, so two engines run — over all of them per iteration,
// and reports events/min (docs/benchmarks.md):
//
//	go test ./internal/backtest -run '^$' -bench Backtest -benchtime 3x -timeout 30m
func BenchmarkBacktest(b *testing.B) {
	n := 1000000
	if v := os.Getenv("MCPWATCH_BACKTEST_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	st := migratedStore(b)
	const chunk = 50000
	span := 30 * 24 * time.Hour
	start := time.Now()
	for i := 0; i*chunk < n; i++ {
		m := min(chunk, n-i*chunk)
		cspan := span * time.Duration(m) / time.Duration(n)
		evs, _ := genEventsAt(m, genBase.Add(span*time.Duration(i*chunk)/time.Duration(n)), cspan, uint64(i), fmt.Sprintf("c%03d-", i))
		for j := 0; j < len(evs); j += 10000 {
			if err := st.InsertEvents(ctxT(b), evs[j:min(j+10000, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("stored %d events in %s", n, time.Since(start).Round(time.Second))
	pack := loadPack(b)
	const id = "mcp-agent-call-rate-spike"
	rule := changedRuleOf(b, pack, id, map[string]any{"count": 60})
	b.ReportAllocs()
	runs := 0
	for b.Loop() { // b.Loop: the events are stored once, not once per b.N
		runs++
		rep, err := Run(ctxT(b), st, Request{Rule: rule, Deployed: pack.Rule(id), Lists: pack.Lists,
			Since: genBase, Until: genBase.Add(span + time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Events != int64(n) {
			b.Fatalf("replayed %d events, want %d", rep.Events, n)
		}
		b.Logf("%d events in %d ms: %.0f events/min; findings new %d, deployed %d; diff %d only new, %d only deployed, %d both",
			rep.Events, rep.ElapsedMs, rep.EventsPerMinute(), rep.New.Findings, rep.Deployed.Findings, rep.Diff.OnlyNew, rep.Diff.OnlyDeployed, rep.Diff.Both)
	}
	b.ReportMetric(float64(n)*float64(runs)/b.Elapsed().Minutes(), "events/min")
}
