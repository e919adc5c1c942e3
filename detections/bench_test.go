package detections_test

import (
	"context"
	"testing"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// BenchmarkPack measures the whole rule pack per event on realistic traffic
// (scenario.Eval: benign sessions of three profiles with attacks embedded),
// fed in analyzer-sized batches of 500. Reports wall ns/event, process CPU
// ns/event (includes GC; meaningful on a loaded machine) and events/s.
func BenchmarkPack(b *testing.B) {
	p, err := detect.Load(detections.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	evs := scenario.Eval(1, 12000).Plain()
	eng, err := detect.New(p, detect.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	n := 0
	for i := 0; i < b.N; i++ {
		// A fresh engine per pass would measure learning; one engine over
		// repeated passes measures the steady state (baselines known).
		for j := 0; j < len(evs); j += 500 {
			if _, err := eng.Detect(ctx, evs[j:min(j+500, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
		n += len(evs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/event")
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
