package collector

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mcpwatch/mcpwatch/internal/otlpin"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// Ingress security regressions (docs/security.md, "Ingress (collector)").

const betaToken = "beta-token-0123"

// trickler is an OTLP/HTTP request on a raw connection that announces a
// body of length bytes, sends head of it at once, then a byte every
// interval until stop: a slow sender, or a slowloris.
type trickler struct {
	conn net.Conn
	resp chan string // the status line, or the read error
}

func trickle(t *testing.T, addr, token string, length, head int, interval time.Duration, stop <-chan struct{}) *trickler {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tr := &trickler{conn: conn, resp: make(chan string, 1)}
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			line = "error: " + err.Error()
		}
		tr.resp <- strings.TrimSpace(line)
	}()
	fmt.Fprintf(conn, "POST /v1/traces HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n", token, length)
	_, _ = conn.Write(make([]byte, head))
	go func() {
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()
	return tr
}

func twoTenants(cfg *Config) {
	cfg.Receiver.Auth.Tokens = append(cfg.Receiver.Auth.Tokens, otlpin.TokenConfig{Tenant: "beta", Token: betaToken})
}

// TestSecurityTenantLockout (issue #14 item 2): 32 connections of one
// tenant announce a full-size body and trickle it; another tenant's
// requests all succeed meanwhile, and readiness stays honest (the
// collector is not full: one tenant is at its share).
func TestSecurityTenantLockout(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		twoTenants(cfg)
		cfg.Receiver.Limits.MaxRequestBytes = 1 << 20
		cfg.Receiver.Limits.MaxInFlightBytes = 12 << 20
		cfg.Receiver.Limits.MaxTenantInFlightBytes = 3 << 20 // room for one gRPC message of 1 MiB: 2 MiB + 128 KiB
		cfg.Receiver.Limits.BodyTimeout = 5 * time.Minute
	})
	waitReady(t, c)
	stop := make(chan struct{})
	defer close(stop)
	for i := 0; i < 32; i++ {
		trickle(t, c.HTTPAddr(), testToken, 1<<20, 128<<10, 500*time.Millisecond, stop) // 4 MiB at once: more than the share
	}
	waitFor(t, "the slow tenant to hold its share", func() bool { return inFlight(t, c) >= 3<<20-(256<<10) })
	for i := 0; i < 20; i++ {
		r := post(t, c, "/v1/traces", "application/x-protobuf", protoBody(t, mcpTraces(10, 100)), map[string]string{"Authorization": "Bearer " + betaToken})
		if r.code != http.StatusOK {
			t.Fatalf("request %d of the other tenant while the slow one trickles: %d %s", i, r.code, trimmed(r.body))
		}
	}
	if _, err := grpcExport(t, c, mcpTraces(10, 100), betaToken); err != nil {
		t.Errorf("gRPC request of the other tenant: %v", err)
	}
	if code, body := httpGet(t, "http://"+c.AdminAddr()+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %q while one tenant holds its share, want 200", code, body)
	}
	if n := inFlight(t, c); n > 3<<20 {
		t.Errorf("%v bytes in flight, more than the slow tenant's share", n)
	}
}

// TestSecurityBodyTrickle: a body sent a byte at a time is cut at the
// body deadline, however steadily the bytes come: 408 on HTTP, an error on
// gRPC; its bytes are released.
func TestSecurityBodyTrickle(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.Receiver.Limits.BodyTimeout = time.Second })
	waitReady(t, c)
	stop := make(chan struct{})
	defer close(stop)
	tr := trickle(t, c.HTTPAddr(), testToken, 1<<20, 1000, 100*time.Millisecond, stop)
	if got := <-tr.resp; !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Errorf("trickled body: %q, want HTTP/1.1 408", got)
	}
	waitFor(t, "the trickled bytes to be released", func() bool { return inFlight(t, c) == 0 })

	// gRPC: the client's connection writes a byte every 100 ms once the
	// stream's headers are out, so the message trickles.
	cc, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			return &slowWriter{Conn: conn, fast: 2048, every: 100 * time.Millisecond}, err
		}),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawBytesCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testToken), time.Minute)
	defer cancel()
	body := protoBody(t, mcpTraces(10, 1000))
	var resp []byte
	err = cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &body, &resp)
	t.Logf("trickled gRPC message: %v", err)
	if code := status.Code(err); code == codes.OK || code == codes.DeadlineExceeded && ctx.Err() != nil {
		t.Errorf("trickled gRPC message: %v, want the server to end it at its body deadline", err)
	}
}

// slowWriter passes the first fast bytes, then writes a byte per every.
type slowWriter struct {
	net.Conn
	fast    int
	every   time.Duration
	written int
}

func (w *slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := len(p)
		if w.written >= w.fast {
			time.Sleep(w.every)
			k = 1
		} else {
			k = min(k, w.fast-w.written)
		}
		m, err := w.Conn.Write(p[:k])
		n, w.written, p = n+m, w.written+m, p[m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestSecurityReadinessWhenFull: when the whole in-flight budget is taken
// and requests are refused for it, /readyz says so (503), and says ready
// again once it drains.
func TestSecurityReadinessWhenFull(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.Limits.MaxRequestBytes = 256 << 10
		cfg.Receiver.Limits.MaxInFlightBytes = 1 << 20
		cfg.Receiver.Limits.MaxTenantInFlightBytes = 1 << 20 // one tenant may take it all
		cfg.Receiver.Limits.BodyTimeout = 5 * time.Minute
	})
	waitReady(t, c)
	stop := make(chan struct{})
	var trs []*trickler
	for i := 0; i < 8; i++ {
		trs = append(trs, trickle(t, c.HTTPAddr(), testToken, 256<<10, 200<<10, time.Second, stop))
	}
	waitFor(t, "a request refused for the full budget", func() bool {
		code, body := httpGet(t, "http://"+c.AdminAddr()+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "in-flight budget full")
	})
	close(stop)
	for _, tr := range trs {
		tr.conn.Close()
	}
	waitFor(t, "ready again", func() bool {
		code, _ := httpGet(t, "http://"+c.AdminAddr()+"/readyz")
		return code == http.StatusOK
	})
}

// TestSecurityHeaderSlowloris: headers sent a line at a time are cut at
// header_timeout without an answer, while other senders are served.
func TestSecurityHeaderSlowloris(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.Receiver.Limits.HeaderTimeout = time.Second })
	waitReady(t, c)
	var conns []net.Conn
	done := make(chan string, 8)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 8; i++ {
		conn, err := net.Dial("tcp", c.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
		fmt.Fprintf(conn, "POST /v1/traces HTTP/1.1\r\nHost: c\r\n")
		go func() {
			b := make([]byte, 64)
			n, err := conn.Read(b)
			done <- fmt.Sprintf("%q %v", b[:n], err)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if _, err := fmt.Fprintf(conn, "X-Slow-%d: y\r\n", j); err != nil {
						return
					}
				}
			}
		}()
	}
	if r := postTraces(t, c, mcpTraces(2, 10)); r.code != http.StatusOK {
		t.Errorf("request while 8 connections trickle headers: %d", r.code)
	}
	for range conns {
		if got := <-done; !strings.Contains(got, "EOF") && !strings.Contains(got, "reset") {
			t.Errorf("slow headers: %s, want the connection closed without an answer", got)
		}
	}
}

// TestSecurityTenantSpoofing: an authenticated sender cannot choose its
// tenant with the resource attribute mcpwatch.tenant, on any transport or
// encoding.
func TestSecurityTenantSpoofing(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, twoTenants)
	waitReady(t, c)
	spoofed := func() ptrace.Traces {
		td := mcpTraces(1, 10)
		td.ResourceSpans().At(0).Resource().Attributes().PutStr("mcpwatch.tenant", "beta")
		return td
	}
	if r := postTraces(t, c, spoofed()); r.code != 200 {
		t.Fatalf("protobuf: %d", r.code)
	}
	js, _ := ptraceotlp.NewExportRequestFromTraces(spoofed()).MarshalJSON()
	if r := post(t, c, "/v1/traces", "application/json", js, authHeader()); r.code != 200 {
		t.Fatalf("JSON: %d", r.code)
	}
	if _, err := grpcExport(t, c, spoofed(), testToken); err != nil {
		t.Fatalf("gRPC: %v", err)
	}
	evs := decodeAll(t, readTopic(t, k.Brokers, testTopic))
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for _, e := range evs {
		if e.Tenant != testTenant {
			t.Errorf("event of tenant %q, want the token's tenant %q", e.Tenant, testTenant)
		}
	}
}

// TestSecurityGzipBomb: 64 MiB of zeros in ~64 KiB of gzip is refused
// after reading at most the limit, over HTTP (any case of the encoding
// name) and gRPC.
func TestSecurityGzipBomb(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.Receiver.Limits.MaxRequestBytes = 1 << 20 })
	waitReady(t, c)
	zeros := make([]byte, 64<<20)
	bomb := gzipBytes(zeros)
	for _, enc := range []string{"gzip", "GZIP"} {
		r := post(t, c, "/v1/traces", "application/x-protobuf", bomb, map[string]string{"Authorization": "Bearer " + testToken, "Content-Encoding": enc})
		if msg := statusMessage(t, r); r.code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "exceeds the limit") {
			t.Errorf("HTTP gzip bomb (%s): %d %q, want 413 naming the limit", enc, r.code, msg)
		}
	}
	cc, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawBytesCodec{}), grpc.UseCompressor("gzip"), grpc.MaxCallSendMsgSize(128<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testToken)
	var resp []byte
	err = cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &zeros, &resp)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC gzip bomb: %v, want RESOURCE_EXHAUSTED", err)
	}
	if r := postTraces(t, c, mcpTraces(2, 10)); r.code != http.StatusOK {
		t.Errorf("a good request afterwards: %d", r.code)
	}
}

// TestSecurityManyAttributes: one span with 100 000 attributes is
// answered (not a crash, not a hang) and the collector keeps serving.
func TestSecurityManyAttributes(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	td := mcpTraces(1, 10)
	a := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	raw := a.AsRaw()
	for i := 0; i < 100000; i++ {
		raw[fmt.Sprintf("attr.%d", i)] = "v"
	}
	if err := a.FromRaw(raw); err != nil { // PutStr one by one is quadratic
		t.Fatal(err)
	}
	r := postTraces(t, c, td)
	resp := ptraceotlp.NewExportResponse()
	if r.code != http.StatusOK || resp.UnmarshalProto(r.body) != nil {
		t.Fatalf("100 000 attributes: %d %s", r.code, trimmed(r.body))
	}
	inKafka := len(decodeAll(t, readTopic(t, k.Brokers, testTopic)))
	t.Logf("%d events in Kafka, %d rejected %q", inKafka, resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
	if rej := resp.PartialSuccess().RejectedSpans(); inKafka+int(rej) != 1 {
		t.Errorf("%d events in Kafka, %d rejected (%q): want the span accounted for once", inKafka, rej, resp.PartialSuccess().ErrorMessage())
	}
	if r := postTraces(t, c, mcpTraces(2, 10)); r.code != http.StatusOK {
		t.Errorf("a good request afterwards: %d", r.code)
	}
}

// minimalSpans are n MCP spans with nothing but ids, a name and
// mcp.method.name: ~60 bytes each on the wire, ~1 KiB each as events.
func minimalSpans(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	sps := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < n; i++ {
		sp := sps.AppendEmpty()
		sp.SetTraceID([16]byte{1, byte(i >> 16), byte(i >> 8), byte(i)})
		sp.SetSpanID([8]byte{1, byte(i >> 16), byte(i >> 8), byte(i)})
		sp.SetName("tools/list")
		sp.Attributes().PutStr("mcp.method.name", "tools/list")
	}
	return td
}

// TestSecurityManySpans: 100 000 spans in one request would hold ~110 MB
// as events, over a tenant's in-flight share (64 MiB by default): refused
// before decoding with 413 and a message to send smaller requests; the
// same spans in ten requests are all accepted.
func TestSecurityManySpans(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	r := postTraces(t, c, minimalSpans(100000))
	if msg := statusMessage(t, r); r.code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "send smaller requests") {
		t.Errorf("100 000 spans in one request: %d %q, want 413 asking for smaller requests", r.code, msg)
	}
	for i := 0; i < 10; i++ {
		td := minimalSpans(10000)
		sps := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for j := 0; j < sps.Len(); j++ { // distinct ids across requests
			id := sps.At(j).TraceID()
			id[15] = byte(i + 1)
			sps.At(j).SetTraceID(id)
		}
		if r := postTraces(t, c, td); r.code != http.StatusOK {
			t.Fatalf("request %d of 10 000 spans: %d %s", i, r.code, trimmed(r.body))
		}
	}
	if n := len(decodeAll(t, readTopic(t, k.Brokers, testTopic))); n != 100000 {
		t.Errorf("%d events in Kafka, want 100 000", n)
	}
}

// TestSecurityEncodingMismatch (issue #14 item 6): a body in the other
// encoding than its Content-Type gets 400 with a message saying so (the
// error body used to be empty), and Content-Encoding is matched in any case.
func TestSecurityEncodingMismatch(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	pb := protoBody(t, mcpTraces(2, 10))
	js, _ := ptraceotlp.NewExportRequestFromTraces(mcpTraces(2, 10)).MarshalJSON()
	for _, tt := range []struct {
		name, ct string
		body     []byte
		want     string
	}{
		{"protobuf sent as JSON", "application/json", pb, "application/x-protobuf"},
		{"JSON sent as protobuf", "application/x-protobuf", js, "application/json"},
	} {
		r := post(t, c, "/v1/traces", tt.ct, tt.body, authHeader())
		msg := statusMessage(t, r)
		if r.code != http.StatusBadRequest || !strings.Contains(msg, "Content-Type: "+tt.want) {
			t.Errorf("%s: %d %q, want 400 suggesting Content-Type: %s", tt.name, r.code, msg, tt.want)
		}
	}
	for _, enc := range []string{"GZIP", "Gzip", " gzip"} {
		r := post(t, c, "/v1/traces", "application/x-protobuf", gzipBytes(pb), map[string]string{"Authorization": "Bearer " + testToken, "Content-Encoding": enc})
		if r.code != http.StatusOK {
			t.Errorf("Content-Encoding %q: %d %s", enc, r.code, trimmed(r.body))
		}
	}
}
