package otlpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
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
func (r *Receiver) handleHTTP(w http.ResponseWriter, req *http.Request, signal string, ct *string) (int, error) {
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
	var verified = req.TLS
	var tenant string
	if verified != nil {
		tenant, err = r.auth.authenticate(req.Header.Get("Authorization"), verified.VerifiedChains)
	} else {
		tenant, err = r.auth.authenticate(req.Header.Get("Authorization"), nil)
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch"`)
		return 0, err
	}
	max := r.cfg.Limits.MaxRequestBytes
	if req.ContentLength > max {
		return 0, NewError(TooLarge, "too_large", 0, nil, "request body of %d bytes exceeds the limit of %d bytes", req.ContentLength, max)
	}
	// Reserve the announced size before reading, the decoded size after.
	reserve := req.ContentLength
	if reserve <= 0 {
		reserve = max
	}
	if !r.sem.tryAcquire(reserve) {
		return 0, NewError(Unavailable, "in_flight_full", r.cfg.Limits.RetryAfter, nil, "collector is at its in-flight limit; retry later")
	}
	held := reserve
	defer func() { r.sem.release(held) }()

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 16<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := readBody(w, req, max, buf); err != nil {
		return 0, err
	}
	if n := int64(buf.Len()); n > held {
		if !r.sem.tryAcquire(n - held) {
			return 0, NewError(Unavailable, "in_flight_full", r.cfg.Limits.RetryAfter, nil, "collector is at its in-flight limit; retry later")
		}
		held = n
	}
	body := buf.Bytes()
	ctx := req.Context()
	switch signal {
	case "traces":
		return exportHTTP(ctx, r, w, tracesSignal, mt, body, tenant)
	case "logs":
		return exportHTTP(ctx, r, w, logsSignal, mt, body, tenant)
	default: // metrics: validated, then ignored
		ereq := pmetricotlp.NewExportRequest()
		if err := unmarshal(mt, body, ereq.UnmarshalProto, ereq.UnmarshalJSON); err != nil {
			return 0, NewError(Permanent, "malformed", 0, err, "cannot decode OTLP metrics (%s)", mt)
		}
		resp := pmetricotlp.NewExportResponse()
		return writeHTTPResponse(w, mt, resp.MarshalProto, resp.MarshalJSON)
	}
}

func (r *Receiver) checkRate(tenant string, n int) error {
	if ok, wait := r.rate.allow(tenant, n, nowFunc()); !ok {
		return NewError(RateLimited, "rate_limited", wait, nil, "tenant %q is over its rate limit; retry later", tenant)
	}
	return nil
}

// readBody reads at most max bytes from the wire and, with gzip, at most
// max decompressed bytes (no gzip bombs).
func readBody(w http.ResponseWriter, req *http.Request, max int64, buf *bytes.Buffer) error {
	body := http.MaxBytesReader(w, req.Body, max)
	var src io.Reader = body
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			if tooLarge(err) {
				return NewError(TooLarge, "too_large", 0, nil, "request body exceeds the limit of %d bytes", max)
			}
			return NewError(Permanent, "malformed", 0, err, "cannot read gzip body")
		}
		defer zr.Close()
		src = zr
	default:
		return NewError(UnsupportedMediaType, "content_encoding", 0, nil, "unsupported Content-Encoding %q; use gzip or none", enc)
	}
	if req.ContentLength > 0 && req.Header.Get("Content-Encoding") == "" {
		buf.Grow(int(req.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(src, max+1))
	if err != nil {
		if tooLarge(err) {
			return NewError(TooLarge, "too_large", 0, nil, "request body exceeds the limit of %d bytes", max)
		}
		return NewError(Permanent, "malformed", 0, err, "cannot read request body")
	}
	if n > max {
		return NewError(TooLarge, "too_large", 0, nil, "decompressed request body exceeds the limit of %d bytes", max)
	}
	return nil
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
	size     func(Req) int // protobuf size
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
		size:    func(q ptraceotlp.ExportRequest) int { return (&ptrace.ProtoMarshaler{}).TracesSize(q.Traces()) },
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
		size:    func(q plogotlp.ExportRequest) int { return (&plog.ProtoMarshaler{}).LogsSize(q.Logs()) },
		consume: func(c Consumer, ctx context.Context, tenant string, q plogotlp.ExportRequest) (Result, error) {
			return c.ConsumeLogs(ctx, tenant, q.Logs())
		},
		response: logsResponse,
	}
)

// exportHTTP serves an OTLP/HTTP export of sig. A consumer of batches gets
// protobuf mapped by the direct decoder; JSON, other consumers and what the
// direct decoder declines are decoded by pdata.
func exportHTTP[Req otlpRequest, Resp otlpResponse](ctx context.Context, r *Receiver, w http.ResponseWriter,
	sig *otlpSignal[Req, Resp], mt string, body []byte, tenant string) (int, error) {
	var n int
	var consume func() (Result, error)
	if bc, ok := r.cons.(BatchConsumer); ok && mt == ctProto {
		if b, bn, ok := r.direct(sig.direct, string(body), tenant); ok {
			n, consume = bn, func() (Result, error) { return bc.ConsumeBatch(ctx, sig.name, b) }
		}
	}
	if consume == nil {
		req := sig.request()
		if err := unmarshal(mt, body, req.UnmarshalProto, req.UnmarshalJSON); err != nil {
			return 0, NewError(Permanent, "malformed", 0, err, "cannot decode OTLP %s (%s)", sig.name, mt)
		}
		n, consume = sig.items(req), func() (Result, error) { return sig.consume(r.cons, ctx, tenant, req) }
	}
	r.m.Items.WithLabelValues("http", sig.name).Add(float64(n))
	if err := r.checkRate(tenant, n); err != nil {
		return 0, err
	}
	res, err := consume()
	if err != nil {
		return 0, err
	}
	resp := sig.response(res)
	return writeHTTPResponse(w, mt, resp.MarshalProto, resp.MarshalJSON)
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
