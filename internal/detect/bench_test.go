package detect_test

import (
	"context"
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
// reports ns and allocations per event.
func BenchmarkPackPerEvent(b *testing.B) {
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
			events := scenario.Eval(1, 10000).Plain()
			eng, err := detect.New(pack, detect.Options{DisableIndex: tc.noIndex, Workers: tc.workers})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			n := 0
			for i := 0; i < b.N; i++ {
				j := (i * 500) % len(events)
				k := min(j+500, len(events))
				if _, err := eng.Detect(ctx, events[j:k]); err != nil {
					b.Fatal(err)
				}
				n += k - j
			}
			b.StopTimer()
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "ns/event")
			// CPU time (user+system, all threads incl. GC) per event: on a
			// shared machine wall time also counts waiting for a core.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(n), "cpu-ns/event")
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
