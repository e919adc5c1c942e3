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
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
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
	// benchRequests per measured run: 1600 requests are 800k spans, ~2 s
	// at the rates seen here (400 requests ended in 0.5 s, too short a
	// window on a shared machine). MCPWATCH_BENCH_REQUESTS overrides it.
	defaultBenchRequests = 1600
)

var benchRequests = func() int {
	if n, err := strconv.Atoi(os.Getenv("MCPWATCH_BENCH_REQUESTS")); err == nil && n > 0 {
		return n
	}
	return defaultBenchRequests
}()

type target struct {
	cpus     string // CPUs the process may run on (taskset list; "" = any)
	pid      int    // process to account CPU for (0 = none)
	admin    string // mcpwatch admin address (profiling)
	name     string
	httpAddr string
	grpcAddr string
	topic    string
	brokers  []string
	events   bool // mcpwatch audit events (mcpwatch) or OTLP spans (peer)
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
func benchBodies(tb testing.TB, n int) [][]byte {
	var bodies [][]byte
	for i := 0; i < n; i++ {
		td := mcpTraces(benchSpansPerRequest, 200)
		sps := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for j := 0; j < sps.Len(); j += 10 {
			sps.At(j).Attributes().PutStr("gen_ai.tool.call.arguments", `{"url":"https://x","headers":{"Authorization":"Bearer `+ghToken+`"}}`)
		}
		// MCPWATCH_BENCH_AGENTS=500: every span of a request from another
		// agent (the collector's worst case: no two events share a record);
		// default 5 agents per request.
		if agents, err := strconv.Atoi(os.Getenv("MCPWATCH_BENCH_AGENTS")); err == nil && agents > 0 {
			for j := 0; j < sps.Len(); j++ {
				sps.At(j).Attributes().PutStr("gen_ai.agent.id", fmt.Sprintf("agent-%d-%d", i, j%agents))
			}
		}
		bodies = append(bodies, protoBody(tb, td))
	}
	return bodies
}

// runLoad sends n requests from benchConns connections; interval > 0 paces
// the total request rate. Failed requests are not retried (and counted).
func runLoad(tb testing.TB, tg target, transport string, n int, interval time.Duration, bodies [][]byte) loadResult {
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
				ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testToken)
				send = func(i int) error {
					ctx, cancel := context.WithTimeout(ctx, time.Minute)
					defer cancel()
					// the request encoded once, like the HTTP bodies
					return cc.Invoke(ctx, traceExportMethod, &preEncoded{b: bodies[i%len(bodies)]}, &preEncoded{})
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

// traceExportMethod is OTLP's gRPC trace export method.
const traceExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// preEncoded is a gRPC message already encoded as protobuf: pdata's
// registered "proto" codec sends the bytes of anything with SizeProto and
// MarshalProto as they are, so a benchmark's gRPC client encodes its
// requests once, as its HTTP client does, instead of marshalling 500 spans
// of pdata per request in the CPU the collectors are measured on. As a
// response it keeps nothing.
type preEncoded struct{ b []byte }

func (m *preEncoded) SizeProto() int              { return len(m.b) }
func (m *preEncoded) MarshalProto(buf []byte) int { return copy(buf, m.b) }
func (m *preEncoded) UnmarshalProto([]byte) error { return nil }

// countSpansInKafka consumes the topic to its end and counts spans: the
// events in each record for mcpwatch, the spans inside each OTLP record
// for the peer.
func countSpansInKafka(tb testing.TB, tg target) int {
	n, _ := countInKafka(tb, tg)
	return n
}

// countInKafka is countSpansInKafka and the bytes of the records' values
// (uncompressed).
func countInKafka(tb testing.TB, tg target) (n, size int) {
	for _, r := range readTopic(tb, tg.brokers, tg.topic) {
		size += len(r.Value)
		if tg.events {
			evs, err := event.Unmarshal(r.Value)
			if err != nil {
				tb.Fatalf("cannot decode mcpwatch record: %v", err)
			}
			n += len(evs)
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
	return n, size
}

// collectorBin builds cmd/collector once per benchmark process, so that
// mcpwatch runs as its own process like the peer does (a fair share of the
// CPU on a busy machine, and CPU accounting per process).
var collectorBin = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(testbed.CacheDir(), "bench") // overwritten by every run
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "collector")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mcpwatch/mcpwatch/cmd/collector").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cannot build cmd/collector: %v\n%s", err, out)
	}
	return bin, nil
})

// benchCollectorProcess starts cmd/collector against a fresh kfake, on
// the CPUs cpus ("" = any).
func benchCollectorProcess(b *testing.B, cpus string) target {
	bin, err := collectorBin()
	if err != nil {
		b.Fatal(err)
	}
	k := testbed.Kfake(b)
	httpAddr, grpcAddr, adminAddr := freeAddr(b), freeAddr(b), freeAddr(b)
	cfg := fmt.Sprintf(`receiver:
  grpc: {endpoint: %q}
  http: {endpoint: %q}
  auth:
    tokens: [{tenant: %s, token: %s}]
  limits: {tenant_rate: -1, max_in_flight_bytes: 1073741824}
kafka: {brokers: [%q], partitions: 12, producer: {compression: %s}}
admin: {endpoint: %q, pprof: true}
produce_timeout: 30s
log: {level: warn}
`, grpcAddr, httpAddr, testTenant, testToken, strings.Join(k.Brokers, ","), benchCompression(), adminAddr)
	return startProcess(b, "mcpwatch", bin, cfg, "http://"+adminAddr+"/readyz", strings.Fields(os.Getenv("MCPWATCH_BENCH_COLLECTOR_FLAGS")), target{
		cpus: cpus, name: "mcpwatch", admin: adminAddr, httpAddr: httpAddr, grpcAddr: grpcAddr, topic: testTopic, brokers: k.Brokers, events: true})
}

// startProcess runs bin --config <cfg> until the benchmark (or test) ends
// and waits until readyURL, if any, answers 200 to a GET (or to an empty
// OTLP POST).
func startProcess(b testing.TB, name, bin, cfg, readyURL string, flags []string, tg target) target {
	path := filepath.Join(b.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	var logs bytes.Buffer
	args := append([]string{"--config", path}, flags...)
	cmd := exec.Command(bin, args...)
	if tg.cpus != "" { // taskset execs bin in its own process: pid and CPU accounting are bin's
		cmd = exec.Command("taskset", append([]string{"-c", tg.cpus, bin}, args...)...)
	}
	if name == "mcpwatch" { // e.g. MCPWATCH_BENCH_COLLECTOR_ENV="GOGC=400"
		cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("MCPWATCH_BENCH_COLLECTOR_ENV"))...)
	}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatalf("cannot start %s: %v", name, err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if b.Failed() {
			b.Logf("%s logs:\n%s", name, logs.String())
		}
	})
	if readyURL == "" {
		tg.pid = cmd.Process.Pid
		return tg
	}
	waitFor(b, name+" to be ready", func() bool {
		var resp *http.Response
		var err error
		if strings.HasSuffix(readyURL, "/v1/traces") {
			resp, err = http.Post(readyURL, "application/json", strings.NewReader("{}"))
		} else {
			resp, err = http.Get(readyURL)
		}
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tg.pid = cmd.Process.Pid
	return tg
}

// cpuSeconds is the user+system CPU time of process pid so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ut, st float64
	fmt.Sscan(f[11], &ut)  // field 14 utime
	fmt.Sscan(f[12], &st)  // field 15 stime
	return (ut + st) / 100 // USER_HZ
}

// machineCPU is the CPU time of all CPUs so far by /proc/stat column
// (user nice system idle iowait irq softirq steal), in seconds.
func machineCPU() [8]float64 {
	var t [8]float64
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		if i == len(t) {
			break
		}
		t[i], _ = strconv.ParseFloat(f, 64)
		t[i] /= 100 // USER_HZ
	}
	return t
}

// otelcolPath finds the peer binary built by scripts/build-otelcol.sh.
func otelcolPath() string {
	if p, ok := os.LookupEnv("MCPWATCH_OTELCOL"); ok { // "" or a missing file: no peer
		if _, err := os.Stat(p); err != nil {
			return ""
		}
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

// benchPeer starts the stock OTel Collector against a fresh kfake, on the
// CPUs cpus ("" = any).
func benchPeer(b *testing.B, bin, cpus string) target {
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
    producer: {compression: %s, required_acks: -1, max_message_bytes: 1000000}
service:
  telemetry: {logs: {level: warn}, metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [kafka]}
`, grpcAddr, httpAddr, strings.Join(k.Brokers, ","), topic, benchCompression())
	return startProcess(b, "otelcol", bin, cfg, "http://"+httpAddr+"/v1/traces", nil,
		target{cpus: cpus, name: "otelcol", httpAddr: httpAddr, grpcAddr: grpcAddr, topic: topic, brokers: k.Brokers})
}

// measure runs one fixed load against tg and returns spans/s that reached
// Kafka and the p99 request latency.
// The last value is the share of the machine's CPU (%) that other
// processes (not the server, not this one) used during the load: a run
// where it is high measured the machine's other work too.
func measure(b *testing.B, tg target, transport string, bodies [][]byte) (float64, time.Duration, float64, float64) {
	cpu0, self0 := cpuSeconds(tg.pid), cpuSeconds(os.Getpid())
	mach0 := machineCPU()
	// MCPWATCH_BENCH_PROFILE=file.pprof saves a 3 s CPU profile of the
	// mcpwatch process taken during the load.
	if out := os.Getenv("MCPWATCH_BENCH_PROFILE"); out != "" && tg.admin != "" {
		go func() {
			resp, err := http.Get("http://" + tg.admin + "/debug/pprof/profile?seconds=3")
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			_ = os.WriteFile(out, buf.Bytes(), 0o600)
		}()
	}
	res := runLoad(b, tg, transport, benchRequests, 0, bodies)
	loadCPU, loadSelf := cpuSeconds(tg.pid)-cpu0, cpuSeconds(os.Getpid())-self0
	mach1 := machineCPU()
	var mach [8]float64
	for i := range mach {
		mach[i] = mach1[i] - mach0[i]
	}
	var inKafka, kafkaBytes int
	if tg.events {
		inKafka, kafkaBytes = countInKafka(b, tg)
	} else {
		// the peer acks before its batches reach Kafka; wait until they
		// stop growing (not a timed assertion: we count what arrived)
		last := -1
		for {
			inKafka, kafkaBytes = countInKafka(b, tg)
			if inKafka == last || inKafka >= res.ok*benchSpansPerRequest {
				break
			}
			last = inKafka
			time.Sleep(time.Second)
		}
	}
	cpu := cpuSeconds(tg.pid) - cpu0 // includes the peer's asynchronous export
	busy := mach[0] + mach[1] + mach[2] + mach[5] + mach[6] + mach[7]
	other := max(busy-loadCPU-loadSelf, 0) * 100 / max(busy+mach[3]+mach[4], 0.01)
	if os.Getenv("MCPWATCH_BENCH_VERBOSE") != "" {
		b.Logf("%s/%s: load %.2fs, p50 %v; CPU during the load: server %.2fs, this process (clients + kfake) %.2fs, other processes %.2fs, idle %.2fs; server CPU incl. export %.2fs; %.0f bytes of record value per span",
			tg.name, transport, res.elapsed.Seconds(), res.p(0.5), loadCPU, loadSelf, busy-loadCPU-loadSelf, mach[3]+mach[4], cpu, float64(kafkaBytes)/float64(max(inKafka, 1)))
	}
	if res.failed > 0 {
		b.Logf("%s/%s: %d of %d requests failed", tg.name, transport, res.failed, benchRequests)
	}
	cpuPerSpan := 0.0
	if inKafka > 0 {
		cpuPerSpan = cpu * 1e6 / float64(inKafka)
	}
	return float64(inKafka) / res.elapsed.Seconds(), res.p(0.99), cpuPerSpan, other
}

// splitCPUs gives the server under test its own CPUs, apart from the
// load (the benchmark process: clients and kfake), so that the figure is
// the server's and not the machine's: on 2 cores shared by both, the
// load's ~1 µs of CPU per span took a quarter of the machine and the
// throughput of both servers was set by their CPU per span plus the
// load's. The upper half of the CPUs this process may use goes to the
// server, the rest to this process (all its threads, and GOMAXPROCS),
// until the benchmark ends. MCPWATCH_BENCH_PIN=off leaves everything on
// every CPU, as before 2026-12-08. It returns the server's CPUs as a
// taskset list, "" when not split (one CPU, or no taskset).
func splitCPUs(b *testing.B) string {
	if os.Getenv("MCPWATCH_BENCH_PIN") == "off" {
		return ""
	}
	cpus := allowedCPUs()
	if len(cpus) < 2 {
		b.Logf("one CPU: the server and the load share it")
		return ""
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Logf("no taskset: the server and the load share every CPU")
		return ""
	}
	load, server := cpus[:len(cpus)/2], cpus[len(cpus)/2:]
	pin := func(list []int) {
		// twice: a thread started while taskset walks the threads
		for i := 0; i < 2; i++ {
			if out, err := exec.Command("taskset", "-a", "-p", "-c", cpuList(list), strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
				b.Fatalf("taskset: %v\n%s", err, out)
			}
		}
	}
	pin(load)
	procs := runtime.GOMAXPROCS(len(load))
	b.Cleanup(func() {
		pin(cpus)
		runtime.GOMAXPROCS(procs)
	})
	if os.Getenv("MCPWATCH_BENCH_VERBOSE") != "" {
		b.Logf("server on CPUs %s, load (clients + kfake) on CPUs %s", cpuList(server), cpuList(load))
	}
	return cpuList(server)
}

// allowedCPUs are the CPUs this process may run on (Cpus_allowed_list).
func allowedCPUs() []int {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(st), "\n") {
		if list, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(strings.TrimSpace(list))
		}
	}
	return nil
}

// parseCPUList reads a kernel CPU list ("0-3,6,8-9"); nil if malformed.
func parseCPUList(list string) []int {
	var cpus []int
	for _, r := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil || z < a {
				return nil
			}
		}
		for c := a; c <= z; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// BenchmarkEndToEnd measures mcpwatch and the peer on the same load in
// the same run: `go test -run '^$' -bench EndToEnd -benchtime 1x -count 5
// ./internal/collector/`. Each iteration is one load of benchRequests
// requests per target and transport.
// benchCompression is the Kafka codec of both collectors (the same, so
// the ratio compares collectors, not codecs): MCPWATCH_BENCH_COMPRESSION,
// else mcpwatch's default.
func benchCompression() string {
	if c := os.Getenv("MCPWATCH_BENCH_COMPRESSION"); c != "" {
		return c
	}
	return kafka.DefaultCompression
}

func BenchmarkEndToEnd(b *testing.B) {
	bodies := benchBodies(b, 8)
	peer := otelcolPath()
	serverCPUs := splitCPUs(b)
	for _, transport := range []string{"http", "grpc"} {
		b.Run(transport, func(b *testing.B) {
			var ours, theirs, ourP99, theirP99, ourCPU, theirCPU, other float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				tg := benchCollectorProcess(b, serverCPUs)
				b.StartTimer()
				sps, p99, cpu, oth := measure(b, tg, transport, bodies)
				other = max(other, oth)
				ours += sps
				ourP99 += float64(p99.Milliseconds())
				ourCPU += cpu
				if peer != "" {
					b.StopTimer()
					pt := benchPeer(b, peer, serverCPUs)
					b.StartTimer()
					sps, p99, cpu, oth := measure(b, pt, transport, bodies)
					other = max(other, oth)
					theirs += sps
					theirP99 += float64(p99.Milliseconds())
					theirCPU += cpu
				}
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ours/n, "spans/s")
			b.ReportMetric(ourP99/n, "p99_ms")
			b.ReportMetric(ourCPU/n, "cpu_us/span")
			b.ReportMetric(other, "max_other_cpu_%")
			if peer != "" {
				b.ReportMetric(theirs/n, "peer_spans/s")
				b.ReportMetric(theirP99/n, "peer_p99_ms")
				b.ReportMetric(theirCPU/n, "peer_cpu_us/span")
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
	bodies := benchBodies(b, 8)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tg := benchCollectorProcess(b, "")
		b.StartTimer()
		res := runLoad(b, tg, "http", 200, 25*time.Millisecond, bodies)
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
