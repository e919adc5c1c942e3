package analyzer

import (
	"context"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// BenchmarkRepartitionWork is BenchmarkRepartitionCost without Kafka,
// ClickHouse or the analyzer's loops: the detection work per event of one
// engine that applies every rule, against the ingest engine's split plus
// the step gate (steps.go) and the inputs encoded into records, decoded and applied by a detect engine
// (the same code the roles run). It leaves out the Kafka client's and the
// transactions' share, so it bounds the repartition's extra from below, but
// it runs in one goroutine and alternates the two in one process, so it is
// far less sensitive to the machine's load. Medians of b.N passes.
//
//	go test -run '^$' -bench RepartitionWork -benchtime 5x ./internal/analyzer/
func BenchmarkRepartitionWork(b *testing.B) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	corpus := scenario.Eval(1, 30000).Plain()
	const batch = 2000
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var single, split []float64
	inputs := 0
	for i := 0; i < b.N; i++ {
		evs := append([]event.Event(nil), corpus...)
		one, _ := detect.New(pack, detect.Options{Workers: 1})
		t0 := cpu()
		for s := 0; s < len(evs); s += batch {
			if _, err := one.Detect(context.Background(), evs[s:min(s+batch, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
		single = append(single, float64(cpu()-t0)/float64(len(evs)))

		evs = append([]event.Event(nil), corpus...)
		in, _ := detect.New(pack, detect.Options{Workers: 1, Repartition: true})
		det, _ := detect.New(pack, detect.Options{Workers: 1})
		gate := detect.NewStepGate() // the steps topic's notices, learned at once
		dec := &inputDecoder{undecodable: func(*kgo.Record, error) { b.Fatal("undecodable input") }}
		inputs = 0
		t0 = cpu()
		for s := 0; s < len(evs); s += batch {
			_, ins, err := in.DetectSplit(context.Background(), evs[s:min(s+batch, len(evs))])
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range detect.StepNotices(pack, ins) {
				gate.Learn(pack, n)
			}
			ins, _ = gate.Filter(pack, ins)
			inputs += len(ins)
			recs, err := inputRecords("detect", 6, pack, ins)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				det.Apply(dec.decode(r))
			}
			if _, err := det.Changelog(); err != nil {
				b.Fatal(err)
			}
		}
		split = append(split, float64(cpu()-t0)/float64(len(evs)))
	}
	med := func(x []float64) float64 { sort.Float64s(x); return x[len(x)/2] }
	s, p := med(single), med(split)
	b.ReportMetric(s, "single_cpu-ns/event")
	b.ReportMetric(p, "split_cpu-ns/event")
	b.ReportMetric(100*(p-s)/s, "%_extra_cpu")
	b.ReportMetric(float64(inputs), "inputs/run")
}
