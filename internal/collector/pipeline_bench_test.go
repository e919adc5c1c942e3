package collector

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

// processCPU returns the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPipelineStages measures the collector's CPU per request of 500
// MCP spans, stage by stage, without network or Kafka. decode+map and
// encode are the collector's path; decode (pdata), map (FromTraces) and
// marshal (event.Marshal per event) the previous one, kept for comparison
// and still used for JSON (ns/op is per
// request; ns/span is wall time and cpu-ns/span the process's CPU time
// (GC included) per span: on this shared machine wall time also counts
// waiting for a core).
func BenchmarkPipelineStages(b *testing.B) {
	bodies := benchBodies(b, 1)
	body := bodies[0]
	red, err := redact.New(redact.Config{})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, f func()) {
		b.ReportAllocs()
		cpu0 := processCPU()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f()
		}
		b.StopTimer()
		spans := float64(b.N * benchSpansPerRequest)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/spans, "cpu-ns/span")
	}
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		run(b, func() {
			r := ptraceotlp.NewExportRequest()
			if err := r.UnmarshalProto(body); err != nil {
				b.Fatal(err)
			}
		})
	})
	// decode+map: what the receiver runs on OTLP/HTTP protobuf and gRPC
	// traces (event.TracesFromProto, no pdata); compare with decode + map.
	b.Run("decode+map", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		run(b, func() {
			batch, _, ok := event.TracesFromProto(body, event.MapOptions{Tenant: "t", ReceivedAt: time.Now()})
			if !ok {
				b.Fatal("direct decoder declined the request")
			}
			batch.Release() // as publish does

		})
	})
	req := ptraceotlp.NewExportRequest()
	_ = req.UnmarshalProto(body)
	b.Run("map", func(b *testing.B) {
		run(b, func() {
			event.FromTraces(req.Traces(), event.MapOptions{Tenant: "t", ReceivedAt: time.Now()})
		})
	})
	batch := event.FromTraces(req.Traces(), event.MapOptions{Tenant: "t", ReceivedAt: time.Now()})
	var enc0 event.ValueEncoder
	b.Run("redact", func(b *testing.B) {
		evs := make([]event.Event, len(batch.Events))
		run(b, func() {
			copy(evs, batch.Events)
			for j := range evs {
				red.Apply(&evs[j])
			}
		})
	})
	// encode: what publish runs (one value per event into a per-request arena).
	b.Run("encode", func(b *testing.B) {
		var enc event.ValueEncoder
		run(b, func() {
			for j := range batch.Events {
				enc.Encode(&batch.Events[j])
			}
			enc.Reuse() // as publish does once Kafka acked every record
		})
	})
	// compress-<codec>: a codec over the request's keys and values (about
	// a produce batch's bytes) with franz-go's compressor, as the producer
	// runs it; ratio = compressed / raw bytes. decompress-<codec>: what each
	// consumer of the topic pays for it.
	var raw []byte
	for j := range batch.Events {
		raw = appendPartitionKey(raw, &batch.Events[j])
		raw = append(raw, enc0.Encode(&batch.Events[j])...)
	}
	dec := kgo.DefaultDecompressor()
	for _, name := range []string{"snappy", "lz4", "zstd"} {
		codec := map[string]kgo.CompressionCodec{"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[name]
		c, err := kgo.DefaultCompressor(codec)
		if err != nil {
			b.Fatal(err)
		}
		var dst bytes.Buffer
		out, typ := c.Compress(&dst, raw)
		packed := bytes.Clone(out)
		b.Run("compress-"+name, func(b *testing.B) {
			var dst bytes.Buffer
			b.SetBytes(int64(len(raw)))
			run(b, func() { c.Compress(&dst, raw) })
			b.ReportMetric(float64(len(packed))/float64(len(raw)), "ratio")
		})
		b.Run("decompress-"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			run(b, func() {
				if _, err := dec.Decompress(packed, typ); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("marshal", func(b *testing.B) {
		run(b, func() {
			for j := range batch.Events {
				if _, err := event.Marshal(batch.Events[j : j+1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
