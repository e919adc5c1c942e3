package collector

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestBadInputGetsClear4xx(t *testing.T) {
	k := testbed.Kfake(t)
	const limit = 1 << 20
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.Limits.MaxRequestBytes = limit
		cfg.Receiver.Limits.MaxInFlightBytes = 8 * limit
	})
	waitReady(t, c)

	good := protoBody(t, mcpTraces(2, 10))
	huge := mcpTraces(1, 10)
	huge.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("huge", strings.Repeat("A", 900<<10))
	bigArgs := mcpTraces(1, 900<<10) // arguments near the request limit

	badUTF8 := mcpTraces(1, 10)
	sp := badUTF8.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.Attributes().PutStr("gen_ai.tool.name", "read\xff\xfefile")
	sp.Attributes().PutStr("gen_ai.tool.call.arguments", "{\"p\":\"\xc3\x28\"}")

	nested := mcpTraces(1, 10)
	deep := strings.Repeat(`{"a":[`, 5000) + "1" + strings.Repeat(`]}`, 5000)
	nested.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("gen_ai.tool.call.arguments", deep)

	deepAttr := mcpTraces(1, 10)
	m := deepAttr.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmptyMap("deep")
	for i := 0; i < 500; i++ {
		m = m.PutEmptyMap("d")
	}

	tests := []struct {
		name     string
		path, ct string
		hdr      map[string]string
		body     []byte
		want     []int // acceptable statuses
		wantMsg  string
	}{
		{name: "malformed protobuf", ct: "application/x-protobuf", body: []byte{0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2}, want: []int{400}, wantMsg: "cannot decode OTLP traces"},
		{name: "malformed json", ct: "application/json", body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":`), want: []int{400}, wantMsg: "cannot decode OTLP traces"},
		{name: "json of the wrong shape", ct: "application/json", body: []byte(`{"resourceSpans":"nope"}`), want: []int{400}},
		{name: "wrong content type", ct: "text/plain", body: good, want: []int{415}, wantMsg: "Content-Type"},
		{name: "no content type", ct: "", body: good, want: []int{415}},
		{name: "unsupported encoding", ct: "application/x-protobuf", hdr: map[string]string{"Content-Encoding": "br"}, body: good, want: []int{415}, wantMsg: "Content-Encoding"},
		{name: "bad gzip", ct: "application/x-protobuf", hdr: map[string]string{"Content-Encoding": "gzip"}, body: []byte("not gzip"), want: []int{400}},
		{name: "oversize body", ct: "application/x-protobuf", body: make([]byte, limit+1), want: []int{413}, wantMsg: "exceeds the limit"},
		{name: "logs path, garbage", path: "/v1/logs", ct: "application/x-protobuf", body: []byte{0xff, 0xff}, want: []int{400}},
		{name: "huge extra attribute", ct: "application/x-protobuf", body: protoBody(t, huge), want: []int{200}},
		{name: "huge arguments", ct: "application/x-protobuf", body: protoBody(t, bigArgs), want: []int{200}},
		{name: "invalid utf-8", ct: "application/x-protobuf", body: protoBody(t, badUTF8), want: []int{200, 400}},
		{name: "deeply nested argument json", ct: "application/x-protobuf", body: protoBody(t, nested), want: []int{200}},
		{name: "deeply nested attribute", ct: "application/x-protobuf", body: protoBody(t, deepAttr), want: []int{400}, wantMsg: "nests deeper than 64 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := authHeader()
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			path := tt.path
			if path == "" {
				path = "/v1/traces"
			}
			r := post(t, c, path, tt.ct, tt.body, hdr)
			ok := false
			for _, w := range tt.want {
				ok = ok || r.code == w
			}
			if !ok {
				t.Errorf("status %d (%s), want one of %v", r.code, trimmed(r.body), tt.want)
			}
			if r.code >= 400 {
				msg := statusMessage(t, r)
				if msg == "" || (tt.wantMsg != "" && !strings.Contains(msg, tt.wantMsg)) {
					t.Errorf("error message %q does not explain (want %q)", msg, tt.wantMsg)
				}
			}
			// The process keeps serving.
			if g := post(t, c, "/v1/traces", "application/x-protobuf", good, authHeader()); g.code != http.StatusOK {
				t.Fatalf("good request after %s: %d %s", tt.name, g.code, trimmed(g.body))
			}
		})
	}

	r := post(t, c, "/v1/traces", "application/json", nil, authHeader())
	if r.code != 200 && r.code != 400 {
		t.Errorf("empty JSON body: %d", r.code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.HTTPAddr()+"/v1/traces", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}

// statusMessage decodes the google.rpc.Status of an error response in the
// response's encoding.
func statusMessage(t *testing.T, r httpResult) string {
	t.Helper()
	ct := r.header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/x-protobuf"):
		var st spb.Status
		if err := proto.Unmarshal(r.body, &st); err != nil {
			t.Errorf("error body is not a google.rpc.Status: %v", err)
		}
		return st.GetMessage()
	case strings.HasPrefix(ct, "application/json"):
		var st struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Errorf("error body is not JSON: %v", err)
		}
		return st.Message
	default:
		return string(r.body)
	}
}

func trimmed(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func TestPartialSuccess(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	td := mcpTraces(3, 10)
	// An MCP span without a trace id cannot be normalized.
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetTraceID(pcommon.NewTraceIDEmpty())
	for _, ct := range []string{"application/x-protobuf", "application/json"} {
		var body []byte
		var err error
		if ct == "application/json" {
			body, err = ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		} else {
			body, err = ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		}
		if err != nil {
			t.Fatal(err)
		}
		r := post(t, c, "/v1/traces", ct, body, authHeader())
		if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), ct) {
			t.Fatalf("%s: %d %s", ct, r.code, r.header.Get("Content-Type"))
		}
		resp := ptraceotlp.NewExportResponse()
		if ct == "application/json" {
			err = resp.UnmarshalJSON(r.body)
		} else {
			err = resp.UnmarshalProto(r.body)
		}
		if err != nil {
			t.Fatalf("%s: cannot decode response: %v", ct, err)
		}
		ps := resp.PartialSuccess()
		if ps.RejectedSpans() != 1 || !strings.Contains(ps.ErrorMessage(), "invalid_trace_id") {
			t.Errorf("%s: partial success %d %q, want 1 rejected with the reason", ct, ps.RejectedSpans(), ps.ErrorMessage())
		}
	}
	if n := len(decodeAll(t, readTopic(t, k.Brokers, testTopic))); n != 4 {
		t.Errorf("%d events in Kafka, want 4 (2 good spans × 2 requests)", n)
	}
}

// TestInFlightBoundAnswers503 holds one request in flight (Kafka's produce
// handler blocked) and checks that a second one is refused with a
// retryable 503 instead of queueing without bound. Each request of ~46 KB
// reserves ~115 KB, the estimate of its decoded size: two do not fit.
func TestInFlightBoundAnswers503(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Receiver.GRPC.Endpoint = "-" // HTTP only: reading a gRPC message would need 2 × 64 KiB + 128 KiB
		cfg.Receiver.Limits.MaxRequestBytes = 64 << 10
		cfg.Receiver.Limits.MaxInFlightBytes = 200 << 10
		cfg.Receiver.Limits.MaxTenantInFlightBytes = 200 << 10
	})
	waitReady(t, c)
	release := make(chan struct{})
	cl := k.Cluster()
	cl.ControlKey(0, func(kmsg.Request) (kmsg.Response, error, bool) { // 0 = Produce
		cl.SleepControl(func() { <-release })
		return nil, nil, false
	})
	first := make(chan httpResult, 1)
	go func() { first <- postTraces(t, c, mcpTraces(20, 2000)) }()
	waitFor(t, "the first request to be in flight", func() bool { return inFlight(t, c) > 0 })
	r := postTraces(t, c, mcpTraces(20, 2000))
	close(release)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("second request while the first holds the in-flight budget: %d, want 503 with Retry-After", r.code)
	}
	if f := <-first; f.code != http.StatusOK {
		t.Errorf("first request: %d %s", f.code, trimmed(f.body))
	}
}

func inFlight(t testing.TB, c *Collector) float64 {
	mfs, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "mcpwatch_collector_in_flight_bytes" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

func TestGRPCOversizeAndKeepsServing(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.Receiver.Limits.MaxRequestBytes = 1 << 20 })
	waitReady(t, c)
	_, err := grpcExport(t, c, mcpTraces(3, 600<<10), testToken) // ~1.8 MB
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversize gRPC request: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := grpcExport(t, c, mcpTraces(3, 10), testToken); err != nil {
		t.Errorf("good gRPC request afterwards: %v", err)
	}
}
