package collector

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// End-to-end benchmarks (docs/benchmarks.md): requests of 500 MCP spans
// with arguments and results, over OTLP/HTTP and gRPC, from 8 connections,
// into a collector producing to kfake; what reached Kafka is consumed and
// counted. The peer is a stock OTel Collector (otlpreceiver → batch
// (send_batch_max_size 1000) → kafkaexporter) on the same load and broker.

const (
	benchSpansPerRequest = 500
	benchConns           = 8
	benchRequests        = 400 // 200k spans per measured run
)

type target struct {
	name     string
	httpAddr string
	grpcAddr string
	topic    string
	brokers  []string
	perEvent bool // one event per record (mcpwatch) or OTLP batches (peer)
}

type loadResult struct {
	ok, failed int
	elapsed    time.Duration
	lat        []time.Duration
}

func (r loadResult) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

// benchBodies are a few distinct 500-span requests (arguments ~300 B with a
// secret to redact, results ~100 B).
func benchBodies(tb testing.TB, n int) ([][]byte, []ptraceotlp.ExportRequest) {
	var bodies [][]byte
	var reqs []ptraceotlp.ExportRequest
	for i := 0; i < n; i++ {
		td := mcpTraces(benchSpansPerRequest, 200)
		sps := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for j := 0; j < sps.Len(); j += 10 {
			sps.At(j).Attributes().PutStr("gen_ai.tool.call.arguments", `{"url":"https://x","headers":{"Authorization":"Bearer `+ghToken+`"}}`)
		}
		bodies = append(bodies, protoBody(tb, td))
		reqs = append(reqs, ptraceotlp.NewExportRequestFromTraces(td))
	}
	return bodies, reqs
}

// runLoad sends n requests from benchConns connections; interval > 0 paces
// the total request rate. Failed requests are not retried (and counted).
func runLoad(tb testing.TB, tg target, transport string, n int, interval time.Duration, bodies [][]byte, reqs []ptraceotlp.ExportRequest) loadResult {
	var next atomic.Int64
	var mu sync.Mutex
	res := loadResult{}
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < benchConns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var send func(i int) error
			switch transport {
			case "http":
				tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				cl := &http.Client{Transport: tr, Timeout: time.Minute}
				send = func(i int) error {
					req, _ := http.NewRequest(http.MethodPost, "http://"+tg.httpAddr+"/v1/traces", bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Content-Type", "application/x-protobuf")
					req.Header.Set("Authorization", "Bearer "+testToken)
					resp, err := cl.Do(req)
					if err != nil {
						return err
					}
					_, _ = io_Copy(resp)
					if resp.StatusCode != 200 {
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					return nil
				}
			case "grpc":
				cc, err := grpc.NewClient(tg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					panic(err)
				}
				defer cc.Close()
				client := ptraceotlp.NewGRPCClient(cc)
				ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testToken)
				send = func(i int) error {
					ctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					_, err := client.Export(ctx, reqs[i%len(reqs)])
					return err
				}
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d)
					}
				}
				t0 := time.Now()
				err := send(i)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.failed++
				} else {
					res.ok++
					res.lat = append(res.lat, d)
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// countSpansInKafka consumes the topic to its end and counts spans: one per
// record for mcpwatch, the spans inside each OTLP record for the peer.
func countSpansInKafka(tb testing.TB, tg target) int {
	n := 0
	for _, r := range readTopic(tb, tg.brokers, tg.topic) {
		if tg.perEvent {
			n++
			continue
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(r.Value); err != nil {
			// the peer may be configured to write logs; try that
			lreq := plogotlp.NewExportRequest()
			if lerr := lreq.UnmarshalProto(r.Value); lerr != nil {
				tb.Fatalf("cannot decode peer record: %v", err)
			}
			n += lreq.Logs().LogRecordCount()
			continue
		}
		n += req.Traces().SpanCount()
	}
	return n
}

func benchCollector(b *testing.B) target {
	k := testbed.Kfake(b)
	c := startCollector(b, k.Brokers, func(cfg *Config) {
		cfg.Receiver.Limits.TenantRate = -1
		cfg.Receiver.Limits.MaxInFlightBytes = 1 << 30
		cfg.Kafka.Partitions = 12
		cfg.ProduceTimeout = 30 * time.Second
	})
	waitReady(b, c)
	return target{name: "mcpwatch", httpAddr: c.HTTPAddr(), grpcAddr: c.GRPCAddr(), topic: testTopic, brokers: k.Brokers, perEvent: true}
}

// otelcolPath finds the peer binary built by scripts/build-otelcol.sh.
func otelcolPath() string {
	if p := os.Getenv("MCPWATCH_OTELCOL"); p != "" {
		return p
	}
	for _, name := range []string{"otelcol-peer", "otelcol-mcpwatch-peer", "otelcol"} {
		p := filepath.Join(testbed.CacheDir(), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// benchPeer starts the stock OTel Collector against a fresh kfake.
func benchPeer(b *testing.B, bin string) target {
	k := testbed.Kfake(b)
	topic := "otelcol.spans"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := k.CreateTopic(ctx, topic, 12); err != nil {
		b.Fatal(err)
	}
	httpAddr, grpcAddr := freeAddr(b), freeAddr(b)
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
processors:
  batch:
    send_batch_size: 1000
    send_batch_max_size: 1000
exporters:
  kafka:
    brokers: [%q]
    traces: {topic: %q, encoding: otlp_proto}
    producer: {compression: lz4, required_acks: -1, max_message_bytes: 1000000}
service:
  telemetry: {logs: {level: warn}, metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [kafka]}
`, grpcAddr, httpAddr, strings.Join(k.Brokers, ","), topic)
	path := filepath.Join(b.TempDir(), "otelcol.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatalf("cannot start peer: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if b.Failed() {
			b.Logf("peer logs:\n%s", logs.String())
		}
	})
	waitFor(b, "the peer to listen", func() bool {
		resp, err := http.Post("http://"+httpAddr+"/v1/traces", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return target{name: "otelcol", httpAddr: httpAddr, grpcAddr: grpcAddr, topic: topic, brokers: k.Brokers}
}

// measure runs one fixed load against tg and returns spans/s that reached
// Kafka and the p99 request latency.
func measure(b *testing.B, tg target, transport string, bodies [][]byte, reqs []ptraceotlp.ExportRequest) (float64, time.Duration, loadResult) {
	res := runLoad(b, tg, transport, benchRequests, 0, bodies, reqs)
	var inKafka int
	if tg.perEvent {
		inKafka = countSpansInKafka(b, tg)
	} else {
		// the peer acks before its batches reach Kafka; wait until they
		// stop growing (not a timed assertion: we count what arrived)
		last := -1
		for {
			inKafka = countSpansInKafka(b, tg)
			if inKafka == last || inKafka >= res.ok*benchSpansPerRequest {
				break
			}
			last = inKafka
			time.Sleep(time.Second)
		}
	}
	if res.failed > 0 {
		b.Logf("%s/%s: %d of %d requests failed", tg.name, transport, res.failed, benchRequests)
	}
	return float64(inKafka) / res.elapsed.Seconds(), res.p(0.99), res
}

// BenchmarkEndToEnd measures mcpwatch and the peer on the same load in
// the same run: `go test -run '^$' -bench EndToEnd -benchtime 1x -count 5
// ./internal/collector/`. Each iteration is one load of benchRequests
// requests per target and transport.
func BenchmarkEndToEnd(b *testing.B) {
	bodies, reqs := benchBodies(b, 8)
	peer := otelcolPath()
	for _, transport := range []string{"http", "grpc"} {
		b.Run(transport, func(b *testing.B) {
			var ours, theirs, ourP99, theirP99 float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				tg := benchCollector(b)
				b.StartTimer()
				sps, p99, _ := measure(b, tg, transport, bodies, reqs)
				ours += sps
				ourP99 += float64(p99.Milliseconds())
				if peer != "" {
					b.StopTimer()
					pt := benchPeer(b, peer)
					b.StartTimer()
					sps, p99, _ := measure(b, pt, transport, bodies, reqs)
					theirs += sps
					theirP99 += float64(p99.Milliseconds())
				}
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ours/n, "spans/s")
			b.ReportMetric(ourP99/n, "p99_ms")
			if peer != "" {
				b.ReportMetric(theirs/n, "peer_spans/s")
				b.ReportMetric(theirP99/n, "peer_p99_ms")
				b.ReportMetric(ours/theirs, "ratio")
			} else {
				b.Log("peer OTel Collector binary not found (scripts/build-otelcol.sh, or MCPWATCH_OTELCOL): reporting mcpwatch only")
			}
		})
	}
}

// BenchmarkPaced20k measures request latency at a paced 20k events/s (40
// requests of 500 spans per second over 8 connections, HTTP), 5 s per run.
func BenchmarkPaced20k(b *testing.B) {
	bodies, reqs := benchBodies(b, 8)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tg := benchCollector(b)
		b.StartTimer()
		res := runLoad(b, tg, "http", 200, 25*time.Millisecond, bodies, reqs)
		inKafka := countSpansInKafka(b, tg)
		b.ReportMetric(float64(res.p(0.99).Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(res.p(0.50).Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(inKafka)/res.elapsed.Seconds(), "spans/s")
		if res.failed > 0 {
			b.Errorf("%d requests failed at 20k events/s", res.failed)
		}
	}
	b.ReportMetric(0, "ns/op")
}

var _ = kgo.NewClient
var _ ptrace.Traces
