package collector

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// gRPC side of issue #14 item 2: grpc reads a message whole before the
// handler runs, so a stream reserves what grpc may buffer for it, in its
// tenant's share (otlpin.admitStream, otlpin.Receiver.receive).

// heldCall is an OTLP/gRPC export on its own connection that writes the
// first fast bytes of the connection at once, then a byte every interval:
// a message announced whole and then held back.
type heldCall struct {
	conn   atomic.Pointer[countingConn] // set by grpc's dialer
	cancel context.CancelFunc
	cc     *grpc.ClientConn
	done   chan error
}

// countingConn passes the first fast bytes, then writes a byte per every;
// fastWritten counts the bytes of the first part that went out.
type countingConn struct {
	net.Conn
	fast        int64
	every       time.Duration
	fastWritten atomic.Int64
	closed      atomic.Bool
}

func (w *countingConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := int64(len(p))
		if left := w.fast - w.fastWritten.Load(); left <= 0 {
			if w.closed.Load() {
				return n, net.ErrClosed
			}
			time.Sleep(w.every)
			k = 1
		} else {
			k = min(k, left)
		}
		m, err := w.Conn.Write(p[:k])
		if left := w.fast - w.fastWritten.Load(); left > 0 {
			w.fastWritten.Add(int64(min(m, int(left))))
		}
		n, p = n+m, p[m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (w *countingConn) Close() error {
	w.closed.Store(true)
	return w.Conn.Close()
}

func holdCall(t *testing.T, addr, token string, body []byte, fast int64, every time.Duration) *heldCall {
	t.Helper()
	h := &heldCall{done: make(chan error, 1)}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			cc := &countingConn{Conn: conn, fast: fast, every: every}
			h.conn.Store(cc)
			return cc, nil
		}),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawBytesCodec{}), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	h.cc = cc
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token))
	h.cancel = cancel
	go func() {
		var resp []byte
		h.done <- cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &body, &resp)
	}()
	t.Cleanup(h.close)
	return h
}

func (h *heldCall) close() {
	h.cancel()
	if c := h.conn.Load(); c != nil {
		_ = c.Close() // grpc's Close waits for its writer, which may be trickling
	}
	_ = h.cc.Close()
}

// sent is how much of its first part the call's connection wrote.
func (h *heldCall) sent() int64 {
	if c := h.conn.Load(); c != nil {
		return c.fastWritten.Load()
	}
	return 0
}

// TestSecurityGRPCTenantShare: one tenant opens 48 gRPC streams that
// announce 1 MiB messages and trickle them. Its streams reserve its share
// (128 KiB each once admitted; 2 MiB + 128 KiB while grpc reads a message)
// and those past it are refused at once with RESOURCE_EXHAUSTED and
// RetryInfo (which OTLP exporters honour). The other tenant's gRPC and
// HTTP exports all succeed meanwhile, readiness stays 200, and when the
// slow streams end every byte they reserved is released.
func TestSecurityGRPCTenantShare(t *testing.T) {
	k := testbed.Kfake(t)
	const share = 4 << 20
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		twoTenants(cfg)
		cfg.Receiver.Limits.MaxRequestBytes = 1 << 20
		cfg.Receiver.Limits.MaxInFlightBytes = 32 << 20
		cfg.Receiver.Limits.MaxTenantInFlightBytes = share // 32 admitted streams, or 1 reading + 15
		cfg.Receiver.Limits.BodyTimeout = 5 * time.Minute
	})
	waitReady(t, c)
	body := make([]byte, 1<<20-64)
	var calls []*heldCall
	for i := 0; i < 48; i++ {
		calls = append(calls, holdCall(t, c.GRPCAddr(), testToken, body, 4<<10, 200*time.Millisecond))
	}
	refused := map[int]error{}
	waitFor(t, "16 of the slow tenant's streams to be refused", func() bool {
		for i, h := range calls {
			select {
			case err := <-h.done:
				refused[i] = err
			default:
			}
		}
		return len(refused) >= 16
	})
	for i, err := range refused {
		st, _ := status.FromError(err)
		var retry *errdetails.RetryInfo
		for _, d := range st.Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
		if st.Code() != codes.ResourceExhausted || retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
			t.Errorf("stream %d past the tenant's share: %v (details %v), want RESOURCE_EXHAUSTED with RetryInfo", i, err, st.Details())
		}
	}
	if n := inFlight(t, c); n > share || n < share-(2<<20+128<<10) {
		t.Errorf("%v bytes in flight while the slow tenant holds its share of %d", n, share)
	}

	for i := 0; i < 10; i++ {
		if _, err := grpcExport(t, c, mcpTraces(10, 100), betaToken); err != nil {
			t.Errorf("gRPC request %d of the other tenant while the slow one holds its share: %v", i, err)
		}
		r := post(t, c, "/v1/traces", "application/x-protobuf", protoBody(t, mcpTraces(10, 100)), map[string]string{"Authorization": "Bearer " + betaToken})
		if r.code != http.StatusOK {
			t.Errorf("HTTP request %d of the other tenant: %d %s", i, r.code, trimmed(r.body))
		}
	}
	if code, body := httpGet(t, "http://"+c.AdminAddr()+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %q while one tenant holds its share, want 200", code, body)
	}
	if n := inFlight(t, c); n > share {
		t.Errorf("%v bytes in flight, more than the slow tenant's share", n)
	}

	for _, h := range calls {
		h.close()
	}
	waitFor(t, "every reservation to be released", func() bool { return inFlight(t, c) == 0 })
	for i, h := range calls {
		if _, ok := refused[i]; ok {
			continue
		}
		if err := <-h.done; status.Code(err) == codes.OK {
			t.Errorf("held stream %d succeeded", i)
		}
	}
}

// buildCollector builds cmd/collector into a temp dir.
// startSecurityCollector runs a real collector process (built from this
// tree) on Kafka (kfake) with both transports and its admin endpoint, the
// tenant testTenant plus moreTokens (", {tenant: …, token: …}") and
// receiverExtra (lines under receiver:, indented by two spaces).
func startSecurityCollector(t *testing.T, moreTokens, receiverExtra string) (tg target, grpcAddr, httpAddr, adminAddr string) {
	t.Helper()
	bin := buildCollector(t)
	k := testbed.Kfake(t)
	httpAddr, grpcAddr, adminAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`receiver:
  grpc: {endpoint: %q}
  http: {endpoint: %q}
  auth:
    tokens: [{tenant: %s, token: %s}%s]
%skafka: {brokers: [%q]}
admin: {endpoint: %q}
log: {level: warn}
`, grpcAddr, httpAddr, testTenant, testToken, moreTokens, receiverExtra, strings.Join(k.Brokers, ","), adminAddr)
	tg = startProcess(t, "mcpwatch", bin, cfg, "http://"+adminAddr+"/readyz", nil, target{})
	return tg, grpcAddr, httpAddr, adminAddr
}

func buildCollector(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "collector")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mcpwatch/mcpwatch/cmd/collector").CombinedOutput(); err != nil {
		t.Fatalf("cannot build cmd/collector: %v\n%s", err, out)
	}
	return bin
}

// scrapeGauge reads an unlabelled metric from a /metrics endpoint.
func scrapeGauge(t *testing.T, url, name string) float64 {
	t.Helper()
	code, body := httpGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", url, code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in %s", name, url)
	return 0
}

// TestSecurityGRPCHeldMessagesMemory: with the default limits (8 MiB
// messages, a tenant's share of 64 MiB), one tenant opens 48 gRPC streams
// on 48 connections, each sending all but the last 4 KiB of an 8 MiB
// message at once and then a byte every 200 ms. grpc would hold 48 ×
// 8 MiB = 384 MiB of it; each stream now waits for room in its tenant's
// share before grpc reads its message, so the peak RSS of the real
// collector process grows by less than that share. The other tenant is
// served meanwhile, and the in-flight gauge returns to 0 after.
func TestSecurityGRPCHeldMessagesMemory(t *testing.T) {
	tg, grpcAddr, httpAddr, adminAddr := startSecurityCollector(t, ", {tenant: beta, token: "+betaToken+"}", "  limits: {body_timeout: 5m}\n")
	metrics := "http://" + adminAddr + "/metrics"
	const share = 64 << 20 // 256 MiB / 4

	base := peakRSS(t, tg.pid)
	body := make([]byte, 8<<20-64)
	const fast = 8<<20 - 4<<10
	var calls []*heldCall
	for i := 0; i < 48; i++ {
		calls = append(calls, holdCall(t, grpcAddr, testToken, body, fast, 200*time.Millisecond))
	}
	// Until every connection has sent all it could: its whole first part,
	// or what its stream's flow-control window let through.
	var last int64 = -1
	waitFor(t, "the held streams to stop sending", func() bool {
		time.Sleep(500 * time.Millisecond)
		var sum int64
		for _, h := range calls {
			sum += h.sent()
		}
		stalled := sum == last && sum > 0
		last = sum
		return stalled
	})
	peak := peakRSS(t, tg.pid)
	held := scrapeGauge(t, metrics, "mcpwatch_collector_in_flight_bytes")
	t.Logf("48 held 8 MiB messages: %d MiB sent, peak RSS +%d MiB, %.0f MiB reserved", last>>20, (peak-base)>>20, held/(1<<20))
	if peak-base > share {
		t.Errorf("peak RSS grew by %d MiB, more than the tenant's share of %d MiB", (peak-base)>>20, share>>20)
	}
	if held > share {
		t.Errorf("%.0f bytes reserved, more than the tenant's share", held)
	}

	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+betaToken), 30*time.Second)
	defer cancel()
	req := protoBody(t, mcpTraces(10, 100))
	var resp []byte
	if err := cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &req, &resp, grpc.ForceCodec(rawBytesCodec{})); err != nil {
		t.Errorf("gRPC request of the other tenant: %v", err)
	}
	hr, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(req))
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Authorization", "Bearer "+betaToken)
	if r, err := http.DefaultClient.Do(hr); err != nil || r.StatusCode != http.StatusOK {
		t.Errorf("HTTP request of the other tenant: %v %v", r, err)
	} else {
		r.Body.Close()
	}

	for _, h := range calls {
		h.close()
	}
	waitFor(t, "every reservation to be released", func() bool {
		return scrapeGauge(t, metrics, "mcpwatch_collector_in_flight_bytes") == 0
	})
}

// TestSecurityGRPCHeaderListBounded: gRPC headers are read before the tap
// can refuse a stream, so their size is bounded as OTLP/HTTP's are (1 MiB,
// net/http's default): a request with 2 MiB of metadata is refused even
// with a valid token (grpc's default would take 16 MiB), a normal one still
// succeeds.
func TestSecurityGRPCHeaderListBounded(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	cc, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	export := func(pad int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken, "x-pad", strings.Repeat("a", pad))
		_, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(mcpTraces(1, 1)))
		return err
	}
	if err := export(1 << 10); err != nil {
		t.Fatalf("a request with 1 KiB of metadata: %v", err)
	}
	if err := export(2 << 20); err == nil {
		t.Fatal("a request with 2 MiB of metadata was accepted, want it refused by the header list bound")
	}
}
