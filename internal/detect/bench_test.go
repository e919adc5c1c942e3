package detect_test

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// BenchmarkPackPerEvent runs the whole embedded rule pack over realistic
// events (the scenario evaluation corpus: benign sessions plus attacks) and
// reports ns, CPU ns and allocations per event.
//
// The corpus (~13k events, 10 days) is replayed as one continuous stream:
// pass k is shifted by k corpus spans, so event time never goes backwards
// (replaying the same timestamps again would fill threshold windows with
// events from "later" passes and fire them spuriously) and state is carried
// across passes like a long-running analyzer's. Events are fed in
// analyzer-sized batches of 500 (copying a batch, ~1% of the time, is
// measured too); the first pass (learning, cold state) is part of the
// measurement.
func BenchmarkPackPerEvent(b *testing.B) {
	corpus := scenario.Eval(1, 10000).Plain()
	span := corpus[len(corpus)-1].Time.Sub(corpus[0].Time) + time.Minute
	const batch = 500
	for _, tc := range []struct {
		name    string
		noIndex bool
		workers int
	}{{"indexed", false, 0}, {"indexed-1-worker", false, 1}, {"no-index", true, 0}} {
		b.Run(tc.name, func(b *testing.B) {
			pack, err := detect.Load(detections.FS, ".")
			if err != nil {
				b.Fatal(err)
			}
			eng, err := detect.New(pack, detect.Options{DisableIndex: tc.noIndex, Workers: tc.workers})
			if err != nil {
				b.Fatal(err)
			}
			// The stream is built batch by batch in one reused buffer (like
			// the analyzer's batches): a pre-built stream of b.N×500 events
			// would be a large live heap that the GC scans during the loop.
			buf := make([]event.Event, batch)
			next := 0
			fill := func() {
				for j := range buf {
					pass, k := next/len(corpus), next%len(corpus)
					buf[j] = corpus[k]
					buf[j].Time = buf[j].Time.Add(time.Duration(pass) * span)
					next++
				}
			}
			ctx := context.Background()
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			findings := 0
			for i := 0; i < b.N; i++ {
				fill()
				out, err := eng.Detect(ctx, buf)
				if err != nil {
					b.Fatal(err)
				}
				findings += len(out)
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			n := float64(b.N * batch)
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/n, "ns/event")
			// CPU time (user+system, all threads incl. GC) per event: on a
			// shared machine wall time also counts waiting for a core.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/n, "cpu-ns/event")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/event")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/event")
			b.ReportMetric(float64(findings), "findings")
			b.ReportMetric(float64(len(pack.Rules)), "rules")
		})
	}
}

// BenchmarkPackSingleEvent evaluates the pack on one typical tools/call
// event repeatedly (steady state, no state growth).
func BenchmarkPackSingleEvent(b *testing.B) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	eng, err := detect.New(pack, detect.Options{})
	if err != nil {
		b.Fatal(err)
	}
	evs := scenario.Benign(1, 2000).Plain()
	var ev []event.Event
	for _, e := range evs {
		if e.Method == "tools/call" && len(e.Arguments) > 40 {
			ev = append(ev, e)
			if len(ev) == 1 {
				break
			}
		}
	}
	b.Logf("event: %s %s %d bytes args", ev[0].ToolName, ev[0].Arguments, len(ev[0].Arguments))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev[0].Time = ev[0].Time.Add(time.Second)
		if _, err := eng.Detect(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// processCPU is the CPU time (user + system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
