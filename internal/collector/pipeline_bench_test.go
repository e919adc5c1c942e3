package collector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

// BenchmarkPipelineStages measures the collector's CPU per request of 500
// MCP spans, stage by stage, without network or Kafka (ns/op is per
// request; ns/span is reported).
func BenchmarkPipelineStages(b *testing.B) {
	bodies, _ := benchBodies(b, 1)
	body := bodies[0]
	red, err := redact.New(redact.Config{})
	if err != nil {
		b.Fatal(err)
	}
	per := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSpansPerRequest), "ns/span")
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			r := ptraceotlp.NewExportRequest()
			if err := r.UnmarshalProto(body); err != nil {
				b.Fatal(err)
			}
		}
		per(b)
	})
	req := ptraceotlp.NewExportRequest()
	_ = req.UnmarshalProto(body)
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			event.FromTraces(req.Traces(), event.MapOptions{Tenant: "t", ReceivedAt: time.Now()})
		}
		per(b)
	})
	batch := event.FromTraces(req.Traces(), event.MapOptions{Tenant: "t", ReceivedAt: time.Now()})
	b.Run("redact", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			evs := append([]event.Event(nil), batch.Events...)
			for j := range evs {
				red.Apply(&evs[j])
			}
		}
		per(b)
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for j := range batch.Events {
				if _, err := event.Marshal(batch.Events[j : j+1]); err != nil {
					b.Fatal(err)
				}
			}
		}
		per(b)
	})
}
