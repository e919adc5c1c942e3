package collector

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestOtelcolKafkaReceiverReadsTopic: a stock OpenTelemetry Collector
// (contrib's kafkareceiver, encoding otlp_proto — what a SIEM pipeline
// would run) reads the events topic and forwards every event, as an OTLP
// log record with our attributes, to an OTLP/HTTP endpoint served here.
// The collector binary is the benchmark peer (scripts/build-otelcol.sh,
// built by scripts/install-deps.sh).
func TestOtelcolKafkaReceiverReadsTopic(t *testing.T) {
	bin := filepath.Join(testbed.CacheDir(), "bin", "otelcol-peer")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no OTel Collector at %s (bash scripts/build-otelcol.sh builds it): %v", bin, err)
	}
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	const spans = 300 // 5 agents: records hold several events each
	if r := post(t, c, "/v1/traces", "application/x-protobuf", protoBody(t, mcpTraces(spans, 50)), authHeader()); r.code != 200 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	recs := readTopic(t, k.Brokers, testTopic)
	inKafka := decodeAll(t, recs)
	if len(recs) >= len(inKafka) {
		t.Fatalf("%d records for %d events: nothing grouped, the test would not cover grouped records", len(recs), len(inKafka))
	}

	// The OTLP/HTTP endpoint the stock collector exports to.
	var mu sync.Mutex
	seen := map[string]int{} // mcpwatch.event_id -> times received
	tools := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		req := plogotlp.NewExportRequest()
		if err == nil {
			err = req.UnmarshalProto(raw)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		rls := req.Logs().ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for l := 0; l < lrs.Len(); l++ {
					a := lrs.At(l).Attributes()
					if v, ok := a.Get("mcpwatch.event_id"); ok {
						seen[v.Str()]++
					}
					if v, ok := a.Get("gen_ai.tool.name"); ok {
						tools[v.Str()] = true
					}
				}
			}
		}
		mu.Unlock()
		out, _ := plogotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer srv.Close()

	cfg := fmt.Sprintf(`receivers:
  kafka:
    brokers: [%q]
    group_id: otelcol-reads-mcpwatch
    initial_offset: earliest
    logs: {topics: [%q], encoding: otlp_proto}
exporters:
  otlphttp:
    endpoint: %q
service:
  telemetry: {logs: {level: warn}, metrics: {level: none}}
  pipelines:
    logs: {receivers: [kafka], exporters: [otlphttp]}
`, k.Brokers[0], testTopic, srv.URL)
	startProcess(t, "otelcol", bin, cfg, "", nil, target{})

	waitFor(t, "the stock collector to forward every event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= len(inKafka)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, e := range inKafka {
		if seen[e.EventID] == 0 {
			t.Errorf("event %s in Kafka never reached the stock collector's exporter", e.EventID)
		}
	}
	if len(seen) != spans || !tools["read_file"] {
		t.Errorf("the stock collector forwarded %d distinct events (want %d), tools %v", len(seen), spans, tools)
	}
}
