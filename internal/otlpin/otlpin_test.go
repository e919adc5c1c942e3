package otlpin

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		c    Class
		http int
		grpc codes.Code
	}{
		{Permanent, 400, codes.InvalidArgument},
		{Unauthenticated, 401, codes.Unauthenticated},
		{RateLimited, 429, codes.ResourceExhausted},
		{Unavailable, 503, codes.Unavailable},
		{TooLarge, 413, codes.ResourceExhausted},
		{UnsupportedMediaType, 415, codes.InvalidArgument},
		{MethodNotAllowed, 405, codes.InvalidArgument},
	}
	for _, tt := range tests {
		if got := tt.c.HTTPStatus(); got != tt.http {
			t.Errorf("class %d: HTTP %d, want %d", tt.c, got, tt.http)
		}
		if got := tt.c.GRPCCode(); got != tt.grpc {
			t.Errorf("class %d: gRPC %s, want %s", tt.c, got, tt.grpc)
		}
	}
	e := NewError(RateLimited, "r", 1500*time.Millisecond, nil, "slow down")
	if st := e.grpcStatus(); len(st.Details()) != 1 {
		t.Errorf("rate limited without RetryInfo: %v", st.Details())
	}
	if got := retryAfterHeader(1500 * time.Millisecond); got != "2" {
		t.Errorf("Retry-After for 1.5s = %q, want 2 (rounded up)", got)
	}
	if c := classify(io.EOF, time.Second); c.Class != Unavailable {
		t.Errorf("unknown errors must be retryable, got class %d", c.Class)
	}
}

func TestAuthenticator(t *testing.T) {
	t.Setenv("TOK_B", "bbb")
	a, err := newAuthenticator(AuthConfig{
		Tokens:            []TokenConfig{{Tenant: "a", Token: "aaa"}, {Tenant: "b", TokenEnv: "TOK_B"}},
		ClientCertTenants: map[string]string{"gw.example": "c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "other"}, DNSNames: []string{"gw.example"}}
	tests := []struct {
		authz  string
		chains [][]*x509.Certificate
		tenant string
		ok     bool
	}{
		{"Bearer aaa", nil, "a", true},
		{"bearer bbb", nil, "b", true},
		{"Bearer aaa ", nil, "a", true},
		{"Bearer nope", nil, "", false},
		{"Basic aaa", nil, "", false},
		{"aaa", nil, "", false},
		{"", nil, "", false},
		{"", [][]*x509.Certificate{{cert}}, "c", true},
		{"Bearer nope", [][]*x509.Certificate{{cert}}, "", false}, // a wrong token is not rescued by a cert
		{"", [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: "stranger"}}}}, "", false},
	}
	for _, tt := range tests {
		got, err := a.authenticate(tt.authz, tt.chains)
		if (err == nil) != tt.ok || got != tt.tenant {
			t.Errorf("authenticate(%q) = %q, %v; want %q ok=%v", tt.authz, got, err, tt.tenant, tt.ok)
		}
	}
	if len(a.tokens) != 2 || strings.Contains(string(a.tokens[0].sum[:]), "aaa") {
		t.Error("tokens must be kept only as hashes")
	}
	off, _ := newAuthenticator(AuthConfig{Disabled: true})
	if got, err := off.authenticate("", nil); err != nil || got != "" {
		t.Errorf("disabled auth: %q %v", got, err)
	}
}

func TestTenantLimiter(t *testing.T) {
	l := newTenantLimiter(LimitsConfig{TenantRate: 10, TenantBurst: 20, TenantRates: map[string]float64{"vip": -1}})
	now := time.Now()
	if ok, _ := l.allow("a", 20, now); !ok {
		t.Error("burst refused")
	}
	ok, wait := l.allow("a", 5, now)
	if ok || wait < 400*time.Millisecond || wait > 600*time.Millisecond {
		t.Errorf("over burst: ok=%v wait=%s, want refused with ~0.5s", ok, wait)
	}
	if ok, _ := l.allow("b", 20, now); !ok {
		t.Error("tenants must not share a bucket")
	}
	if ok, _ := l.allow("vip", 1e6, now); !ok {
		t.Error("unlimited override refused")
	}
	if ok, _ := l.allow("a", 5, now.Add(time.Second)); !ok {
		t.Error("bucket did not refill")
	}
	if ok, _ := l.allow("c", 1000, now); !ok {
		t.Error("a request larger than the burst must pass when the bucket is full")
	}
}

func TestBudgetSharesPerTenant(t *testing.T) {
	b := newBudget(LimitsConfig{MaxInFlightBytes: 100, MaxTenantInFlightBytes: 40, RetryAfter: time.Second})
	class := func(err error) Class {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("not an *Error: %v", err)
		}
		return e.Class
	}
	if err := b.reserve("a", 41, 41); class(err) != TooLarge {
		t.Errorf("more than a tenant's share: %v, want TooLarge (never fits)", err)
	}
	if err := b.reserve("a", 40, 40); err != nil {
		t.Fatal(err)
	}
	if err := b.reserve("a", 1, 1); class(err) != RateLimited {
		t.Errorf("tenant a over its share: %v, want RateLimited (RESOURCE_EXHAUSTED + RetryInfo, 429)", err)
	}
	if !b.lastFull().IsZero() {
		t.Error("one tenant at its share made the whole budget full")
	}
	for _, tn := range []string{"b", "c"} {
		if err := b.reserve(tn, 30, 30); err != nil {
			t.Errorf("tenant %s while a holds its share: %v", tn, err)
		}
	}
	if err := b.reserve("d", 1, 1); class(err) != Unavailable || b.lastFull().IsZero() {
		t.Errorf("budget full: %v, lastFull %v", err, b.lastFull())
	}
	if err := b.reserve("", 1, 1); err == nil {
		t.Error("auth disabled (no tenant) got past the global cap")
	}
	b.release("a", 40)
	b.release("b", 30)
	b.release("c", 30)
	// A request reserved step by step (the direct decoder grows its lease)
	// that passes the tenant's share could never fit: too large, not full.
	l := &lease{b: b, tenant: "e"}
	if err := l.grow(30); err != nil {
		t.Fatal(err)
	}
	if err := l.grow(11); class(err) != TooLarge {
		t.Errorf("a lease growing past the tenant's share: %v, want TooLarge", err)
	}
	l.release()
	if b.inFlight() != 0 || len(b.tenants) != 0 {
		t.Errorf("after release: %d in flight, tenants %v", b.inFlight(), b.tenants)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Auth: AuthConfig{Disabled: true}}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults with auth disabled: %v", err)
	}
	err := (Config{
		GRPC:   ListenerConfig{Endpoint: "-"},
		HTTP:   ListenerConfig{Endpoint: "-", TLS: ServerTLSConfig{RequireClientCert: true}},
		Auth:   AuthConfig{ClientCertTenants: map[string]string{"x": "y"}},
		Limits: LimitsConfig{TenantRate: -5},
	}).WithDefaults().Validate()
	for _, w := range []string{"both disabled", "require_client_cert", "client_cert_tenants", "tenant_rate"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want error mentioning %q, got %v", w, err)
		}
	}

	// Reading a gRPC message takes 2 × max_request_bytes + 128 KiB: the
	// default share leaves room for it; a smaller one is an error, unless
	// gRPC is off.
	tokens := []TokenConfig{{Tenant: "a", Token: "t"}}
	small := LimitsConfig{MaxRequestBytes: 8 << 20, MaxInFlightBytes: 32 << 20}
	c := Config{Auth: AuthConfig{Tokens: tokens}, Limits: small}.WithDefaults()
	if err := c.Validate(); err != nil || c.Limits.MaxTenantInFlightBytes != 16<<20+grpcPendingBytes {
		t.Errorf("default share for 8 MiB requests in 32 MiB: %d, %v; want room for one gRPC message", c.Limits.MaxTenantInFlightBytes, err)
	}
	small.MaxTenantInFlightBytes = 8 << 20
	if err := (Config{Auth: AuthConfig{Tokens: tokens}, Limits: small}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "gRPC message") {
		t.Errorf("a share below one gRPC message: %v, want an error naming it", err)
	}
	if err := (Config{GRPC: ListenerConfig{Endpoint: "-"}, Auth: AuthConfig{Tokens: tokens}, Limits: small}).WithDefaults().Validate(); err != nil {
		t.Errorf("the same share without gRPC: %v", err)
	}
}

// countingConsumer stands in for the collector: these tests and the fuzz
// target exercise decoding and status mapping only (the real pipeline is
// tested in internal/collector).
type countingConsumer struct{ spans, logs int }

func (c *countingConsumer) ConsumeTraces(_ context.Context, _ string, td ptrace.Traces) (Result, error) {
	c.spans += td.SpanCount()
	return Result{}, nil
}

func (c *countingConsumer) ConsumeLogs(_ context.Context, _ string, ld plog.Logs) (Result, error) {
	c.logs += ld.LogRecordCount()
	return Result{}, nil
}

func newTestReceiver(t testing.TB) *Receiver {
	r, err := New(Config{Auth: AuthConfig{Disabled: true}, Limits: LimitsConfig{MaxRequestBytes: 1 << 20, TenantRate: -1}},
		&countingConsumer{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// FuzzHTTPHandler: no body, content type or encoding may crash the
// receiver or produce a 5xx.
func FuzzHTTPHandler(f *testing.F) {
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}`), "application/json", "", "/v1/traces")
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00}, "application/x-protobuf", "", "/v1/logs")
	f.Add([]byte{0x1f, 0x8b, 0x08}, "application/x-protobuf", "gzip", "/v1/traces")
	f.Add([]byte(`{}`), "application/json", "", "/v1/metrics")
	r := newTestReceiver(f)
	h := r.HTTPHandler()
	f.Fuzz(func(t *testing.T, body []byte, ct, enc, path string) {
		switch path {
		case "/v1/traces", "/v1/logs", "/v1/metrics":
		default:
			path = "/v1/traces"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q %q: %s", w.Code, ct, enc, w.Body.String())
		}
	})
}

// TestGRPCReservesDecodedEstimate: while a gRPC request is consumed, the
// in-flight budget holds the estimate of its decoded size, not its wire size.
func TestGRPCReservesDecodedEstimate(t *testing.T) {
	r := newTestReceiver(t)
	r.cfg.GRPC.Endpoint = "127.0.0.1:0"
	r.cfg.HTTP.Endpoint = "-"
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()
	var seen atomic.Int64
	r.cons = sizeProbe{r: r, seen: &seen}
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName(strings.Repeat("x", 1000))
	sp.Attributes().PutEmptySlice("l").AppendEmpty().SetStr("v")
	req := ptraceotlp.NewExportRequestFromTraces(td)
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	body, _ := req.MarshalProto()
	sh, err := scanShape(body, kTracesRequest, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seen.Load(), sh.pdataBytes(len(body)); got != want || want <= int64(len(body)) {
		t.Errorf("in-flight bytes during the request = %d, want the decoded estimate %d (wire %d)", got, want, len(body))
	}
	if n := r.budget.inFlight(); n != 0 {
		t.Errorf("%d bytes still in flight after the answer", n)
	}
}

// sizeProbe records the receiver's in-flight bytes while a request runs.
type sizeProbe struct {
	r    *Receiver
	seen *atomic.Int64
}

func (p sizeProbe) ConsumeTraces(context.Context, string, ptrace.Traces) (Result, error) {
	p.seen.Store(p.r.budget.inFlight())
	return Result{}, nil
}

func (p sizeProbe) ConsumeLogs(context.Context, string, plog.Logs) (Result, error) {
	return Result{}, nil
}

// TestLeaseWaitsForRoom: a gRPC stream's lease waits for room for its
// message instead of failing (the share or the budget frees up when
// another request ends), gives up with the last refusal when its context
// ends, never waits for what could never fit, and gives back what it holds
// above a message's size.
func TestLeaseWaitsForRoom(t *testing.T) {
	b := newBudget(LimitsConfig{MaxInFlightBytes: 200, MaxTenantInFlightBytes: 60, RetryAfter: time.Second})
	first := &lease{b: b, tenant: "a"}
	if err := first.grow(40); err != nil {
		t.Fatal(err)
	}
	second := &lease{b: b, tenant: "a"}
	if err := second.grow(10); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- second.waitAtLeast(context.Background(), 50) }()
	select {
	case err := <-got:
		t.Fatalf("the second lease did not wait for the tenant's share: %v", err)
	case <-time.After(50 * time.Millisecond): // not a timed assertion: it must still be waiting
	}
	first.release()
	if err := <-got; err != nil || second.held != 50 {
		t.Fatalf("after the first lease's release: %v, held %d, want 50", err, second.held)
	}
	second.shrink(5)
	if b.inFlight() != 5 || second.held != 5 {
		t.Errorf("after shrinking to 5: %d in flight, held %d", b.inFlight(), second.held)
	}

	ctx, cancel := context.WithCancel(context.Background())
	third := &lease{b: b, tenant: "a"}
	if err := third.grow(55); err != nil {
		t.Fatal(err)
	}
	go func() { got <- second.waitAtLeast(ctx, 50) }()
	cancel()
	var e *Error
	if err := <-got; !errors.As(err, &e) || e.Class != RateLimited {
		t.Errorf("waiting past its context: %v, want the share's refusal (RateLimited)", err)
	}
	if err := second.waitAtLeast(context.Background(), 61); !errors.As(err, &e) || e.Class != TooLarge {
		t.Errorf("a message that could never fit the share: %v, want TooLarge at once", err)
	}
	second.release()
	third.release()
	if b.inFlight() != 0 || len(b.tenants) != 0 {
		t.Errorf("after release: %d in flight, tenants %v", b.inFlight(), b.tenants)
	}
}
