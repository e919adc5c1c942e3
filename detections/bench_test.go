package detections_test

import (
	"context"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
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
	// Pass i is shifted by i corpus spans: event time keeps moving forward
	// as in a long-running analyzer (replaying the same timestamps would
	// fill threshold windows with "later" events and fire them spuriously).
	span := evs[len(evs)-1].Time.Sub(evs[0].Time) + time.Minute
	buf := make([]event.Event, 500)
	for i := 0; i < b.N; i++ {
		// A fresh engine per pass would measure learning; one engine over
		// repeated passes measures the steady state (baselines known).
		for j := 0; j < len(evs); j += 500 {
			batch := buf[:copy(buf, evs[j:min(j+500, len(evs))])]
			for k := range batch {
				batch[k].Time = batch[k].Time.Add(time.Duration(i) * span)
			}
			if _, err := eng.Detect(ctx, batch); err != nil {
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
