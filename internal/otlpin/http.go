package otlpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

const (
	ctProto = "application/x-protobuf"
	ctJSON  = "application/json"
)

// HTTPHandler serves POST /v1/traces, /v1/logs and /v1/metrics (ignored).
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, "traces") })
	mux.HandleFunc("/v1/logs", func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, "logs") })
	mux.HandleFunc("/v1/metrics", func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, "metrics") })
	return mux
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request, signal string) {
	ct := "text/plain"
	code, err := r.handleHTTP(w, req, signal, &ct)
	if err != nil {
		e := classify(err, r.cfg.Limits.RetryAfter)
		code = e.Class.HTTPStatus()
		r.m.Rejected.WithLabelValues(e.Reason).Inc()
		if e.Class == Unavailable && e.Reason == "internal" {
			r.log.Error("cannot process OTLP/HTTP request", "signal", signal, "err", err)
		}
		writeHTTPError(w, e, ct)
	}
	r.m.Requests.WithLabelValues("http", signal, strconv.Itoa(code)).Inc()
}

// handleHTTP does the request; on success it has written the response.
// *ct is set to the response encoding as soon as it is known.
//
// Order matters: credentials are checked from the headers before a byte of
// the body is read; body bytes are reserved against the in-flight budget
// as they arrive, within a total deadline; then consumeBody decodes with
// the nesting depth bounded and the decoded size reserved before it is
// allocated.
func (r *Receiver) handleHTTP(w http.ResponseWriter, req *http.Request, signal string, ct *string) (int, error) {
	// One deadline for the whole body: a trickle cannot stretch it.
	_ = http.NewResponseController(w).SetReadDeadline(nowFunc().Add(r.cfg.Limits.BodyTimeout))
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, NewError(MethodNotAllowed, "method", 0, nil, "method %s not allowed; OTLP/HTTP uses POST", req.Method)
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || (mt != ctProto && mt != ctJSON) {
		return 0, NewError(UnsupportedMediaType, "content_type", 0, nil,
			"unsupported Content-Type %q; use application/x-protobuf or application/json", req.Header.Get("Content-Type"))
	}
	*ct = mt
	var verified [][]*x509.Certificate
	if req.TLS != nil {
		verified = req.TLS.VerifiedChains
	}
	tenant, err := r.auth.authenticate(req.Header.Get("Authorization"), verified)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch"`)
		return 0, err
	}
	max := r.cfg.Limits.MaxRequestBytes
	if req.ContentLength > max {
		return 0, NewError(TooLarge, "too_large", 0, nil, "request body of %d bytes exceeds the limit of %d bytes", req.ContentLength, max)
	}
	l := &lease{b: r.budget, tenant: tenant}
	defer l.release()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 16<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := readBody(w, req, max, buf, l); err != nil {
		return 0, err
	}
	body := buf.Bytes()
	if signal == "metrics" { // accepted and ignored, never decoded
		resp := pmetricotlp.NewExportResponse()
		return writeHTTPResponse(w, mt, resp.MarshalProto, resp.MarshalJSON)
	}
	ctx := req.Context()
	switch signal {
	case "traces":
		return exportHTTP(ctx, r, w, tracesSignal, mt, body, tenant, l)
	default:
		return exportHTTP(ctx, r, w, logsSignal, mt, body, tenant, l)
	}
}

// explainEncoding adds to a decoding error what the body looks like when
// it is in the other encoding than its Content-Type says.
func explainEncoding(err error, mt string, body []byte) error {
	var e *Error
	if !errors.As(err, &e) || e.Reason != "malformed" {
		return err
	}
	first := bytes.TrimLeft(body, " \t\r\n")
	looksJSON := len(first) > 0 && (first[0] == '{' || first[0] == '[')
	switch {
	case mt == ctJSON && len(first) > 0 && !looksJSON:
		e.Msg += "; the body is not JSON (protobuf? then send Content-Type: application/x-protobuf)"
	case mt == ctProto && looksJSON:
		e.Msg += "; the body looks like JSON (then send Content-Type: application/json)"
	}
	return e
}

func (r *Receiver) checkRate(tenant string, n int) error {
	if ok, wait := r.rate.allow(tenant, n, nowFunc()); !ok {
		return NewError(RateLimited, "rate_limited", wait, nil, "tenant %q is over its rate limit; retry later", tenant)
	}
	return nil
}

// readBody reads at most max bytes from the wire and, with gzip, at most
// max decompressed bytes (no gzip bombs), reserving them in l as they
// arrive.
func readBody(w http.ResponseWriter, req *http.Request, max int64, buf *bytes.Buffer, l *lease) error {
	body := http.MaxBytesReader(w, req.Body, max)
	var src io.Reader = body
	// Content-Encoding values are case-insensitive (RFC 9110 8.4.1).
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body) // streamed: what is held is the decompressed body, reserved below
		if err != nil {
			return readError(err, max, "cannot read gzip body")
		}
		defer zr.Close()
		src = zr
	default:
		return NewError(UnsupportedMediaType, "content_encoding", 0, nil, "unsupported Content-Encoding %q; use gzip or none", req.Header.Get("Content-Encoding"))
	}
	n, err := buf.ReadFrom(io.LimitReader(reservingReader{src, l}, max+1))
	if err != nil {
		return readError(err, max, "cannot read request body")
	}
	if n > max {
		return NewError(TooLarge, "too_large", 0, nil, "decompressed request body exceeds the limit of %d bytes", max)
	}
	return nil
}

// readError classifies an error reading a body: over the size limit, over
// the in-flight budget, past the body deadline, or malformed.
func readError(err error, max int64, what string) error {
	var e *Error
	var ne net.Error
	switch {
	case tooLarge(err):
		return NewError(TooLarge, "too_large", 0, nil, "request body exceeds the limit of %d bytes", max)
	case errors.As(err, &e):
		return e
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return NewError(Timeout, "body_timeout", 0, err, "request body not received within receiver.limits.body_timeout")
	}
	return NewError(Permanent, "malformed", 0, err, "%s", what)
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func unmarshal(mt string, body []byte, fromProto, fromJSON func([]byte) error) (err error) {
	defer func() { // pdata must never take the process down on hostile input
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while decoding: %v", p)
		}
	}()
	if mt == ctJSON {
		return fromJSON(body)
	}
	return fromProto(body)
}

// otlpSignal is what the receivers need to know of a signal (traces or
// logs): its direct decoder and its pdata request and response types.
type otlpSignal[Req otlpRequest, Resp otlpResponse] struct {
	name     string
	direct   func(string, event.MapOptions) (event.Batch, int, bool)
	request  func() Req
	items    func(Req) int // spans or log records
	consume  func(Consumer, context.Context, string, Req) (Result, error)
	response func(Result) Resp
}

type otlpRequest interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}

type otlpResponse interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

var (
	tracesSignal = &otlpSignal[ptraceotlp.ExportRequest, ptraceotlp.ExportResponse]{
		name:    "traces",
		direct:  event.TracesFromProtoString,
		request: ptraceotlp.NewExportRequest,
		items:   func(q ptraceotlp.ExportRequest) int { return q.Traces().SpanCount() },
		consume: func(c Consumer, ctx context.Context, tenant string, q ptraceotlp.ExportRequest) (Result, error) {
			return c.ConsumeTraces(ctx, tenant, q.Traces())
		},
		response: tracesResponse,
	}
	logsSignal = &otlpSignal[plogotlp.ExportRequest, plogotlp.ExportResponse]{
		name:    "logs",
		direct:  event.LogsFromProtoString,
		request: plogotlp.NewExportRequest,
		items:   func(q plogotlp.ExportRequest) int { return q.Logs().LogRecordCount() },
		consume: func(c Consumer, ctx context.Context, tenant string, q plogotlp.ExportRequest) (Result, error) {
			return c.ConsumeLogs(ctx, tenant, q.Logs())
		},
		response: logsResponse,
	}
)

// exportHTTP serves an OTLP/HTTP export of sig and writes the response.
func exportHTTP[Req otlpRequest, Resp otlpResponse](ctx context.Context, r *Receiver, w http.ResponseWriter,
	sig *otlpSignal[Req, Resp], mt string, body []byte, tenant string, l *lease) (int, error) {
	res, err := consumeBody(ctx, r, "http", sig, mt, request{b: body}, tenant, l)
	if err != nil {
		return 0, err
	}
	resp := sig.response(res)
	return writeHTTPResponse(w, mt, resp.MarshalProto, resp.MarshalJSON)
}

// consumeBody decodes a request of sig and hands it to the consumer. A
// consumer of batches gets protobuf mapped by the direct decoder, whose
// one walk bounds the nesting depth and reserves in l what it allocates
// before it does (directLimits). JSON, other consumers and what the direct
// decoder declines (malformed, too deep, an encoding it does not read) go
// through the shape check on the wire, then pdata, with the shape's
// memory estimate reserved first.
func consumeBody[Req otlpRequest, Resp otlpResponse](ctx context.Context, r *Receiver, transport string,
	sig *otlpSignal[Req, Resp], mt string, in request, tenant string, l *lease) (Result, error) {
	var n int
	var consume func() (Result, error)
	if bc, ok := r.cons.(BatchConsumer); ok && mt == ctProto {
		// What the events slice: the string, a copy of the body unless
		// the request came as one (gRPC), which is all that is held then.
		held := int64(len(in.s))
		if in.s == "" {
			held = 2 * int64(len(in.b))
		}
		if err := l.atLeast(held); err != nil {
			return Result{}, err
		}
		var refused error
		b, bn, ok := r.direct(sig.direct, in.string(), tenant, r.directLimits(l, &refused))
		if refused != nil {
			return Result{}, refused
		}
		if ok {
			n, consume = bn, func() (Result, error) { return bc.ConsumeBatch(ctx, sig.name, b) }
		}
	}
	body := in.b
	if consume == nil && body == nil && in.s != "" {
		// The shape check and pdata read bytes: a copy of the string.
		if err := l.atLeast(2 * int64(len(in.s))); err != nil {
			return Result{}, err
		}
		body = []byte(in.s)
	}
	if consume == nil {
		var sh shape
		var err error
		if mt == ctJSON {
			sh, err = scanJSONShape(body, sig.name, r.cfg.Limits.MaxValueDepth)
		} else {
			sh, err = scanShape(body, kindOf(sig.name), r.cfg.Limits.MaxValueDepth)
		}
		if err != nil {
			return Result{}, explainEncoding(err, mt, body)
		}
		if err := l.atLeast(sh.pdataBytes(len(body))); err != nil {
			return Result{}, err
		}
		req := sig.request()
		if err := unmarshal(mt, body, req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return Result{}, explainEncoding(NewError(Permanent, "malformed", 0, err, "cannot decode OTLP %s (%s)", sig.name, mt), mt, body)
		}
		n, consume = sig.items(req), func() (Result, error) { return sig.consume(r.cons, ctx, tenant, req) }
	}
	r.m.Items.WithLabelValues(transport, sig.name).Add(float64(n))
	if err := r.checkRate(tenant, n); err != nil {
		return Result{}, err
	}
	return consume()
}

// request is a request's body as bytes (b: OTLP/HTTP's pooled buffer) or
// as a string (s: OTLP/gRPC's one copy out of grpc's buffers).
type request struct {
	b []byte
	s string
}

// string is the body as a string: s, or a copy of b.
func (q request) string() string {
	if q.s != "" {
		return q.s
	}
	return string(q.b)
}

func tracesResponse(res Result) ptraceotlp.ExportResponse {
	resp := ptraceotlp.NewExportResponse()
	if res.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(res.Rejected)
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return resp
}

func logsResponse(res Result) plogotlp.ExportResponse {
	resp := plogotlp.NewExportResponse()
	if res.Rejected > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(res.Rejected)
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	return resp
}

func writeHTTPResponse(w http.ResponseWriter, mt string, toProto, toJSON func() ([]byte, error)) (int, error) {
	var b []byte
	var err error
	if mt == ctJSON {
		b, err = toJSON()
	} else {
		b, err = toProto()
	}
	if err != nil {
		return 0, fmt.Errorf("cannot encode OTLP response: %w", err)
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return http.StatusOK, nil
}

// writeHTTPError writes a google.rpc.Status in the request's encoding, as
// the OTLP/HTTP spec asks, with Retry-After on retryable statuses.
func writeHTTPError(w http.ResponseWriter, e *Error, mt string) {
	st := e.grpcStatus().Proto()
	var b []byte
	switch mt {
	case ctJSON:
		b, _ = protojson.Marshal(st)
	case ctProto:
		b, _ = proto.Marshal(st)
	default: // the request's encoding is unknown
		b = []byte(e.Error() + "\n")
		mt = "text/plain; charset=utf-8"
	}
	if e.retryable() {
		w.Header().Set("Retry-After", retryAfterHeader(e.RetryAfter))
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(e.Class.HTTPStatus())
	_, _ = w.Write(b)
}
