package collector

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestApacheKafka runs the SDK → collector → Kafka path against a real
// Apache Kafka broker (KRaft), including the producer's idempotence, acks=all
// and compressed batches (the default codec, snappy, which the broker
// decompresses to validate) under the broker's real message limit, and a broker
// restart.
func TestApacheKafka(t *testing.T) {
	k := testbed.ApacheKafka(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.Kafka.Partitions = 3 })
	waitReady(t, c)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.HTTPAddr()),
		otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(authHeader()), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	emitSpans(t, exp, 20)
	checkToolCalls(t, decodeAll(t, readTopic(t, k.Brokers, testTopic)), 20)

	// Large requests: 500 spans with 1 KiB arguments span several batches.
	big := mcpTraces(500, 1024)
	if r := postTraces(t, c, big); r.code != 200 {
		t.Fatalf("500-span request: %d %s", r.code, trimmed(r.body))
	}
	if k.Kind == "external" {
		return
	}
	k.Stop()
	if r := postTraces(t, c, mcpTraces(5, 10)); r.code != 503 {
		t.Errorf("broker stopped: %d, want 503", r.code)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c)
	after := mcpTraces(50, 100)
	waitFor(t, "a request accepted after the broker restart", func() bool { return postTraces(t, c, after).code == 200 })
	in := map[string]bool{}
	for _, e := range decodeAll(t, readTopic(t, k.Brokers, testTopic)) {
		in[e.TraceID+"/"+e.SpanID] = true
	}
	for _, key := range append(spanKeys(big), spanKeys(after)...) {
		if !in[key] {
			t.Fatalf("accepted span %s missing after broker restart", key)
		}
	}
}
