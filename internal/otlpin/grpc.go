package otlpin

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed requests
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

var nowFunc = time.Now

func (r *Receiver) newGRPCServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(r.cfg.Limits.MaxRequestBytes)), // bounds decompressed size too
		grpc.MaxConcurrentStreams(1000),
		// Recycle long-lived connections so new collector replicas behind a
		// load balancer receive traffic (the collector is stateless).
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second}),
		// Credentials are checked on the stream's headers, before grpc
		// reads a byte of the message.
		grpc.InTapHandle(r.authenticateStream),
	}
	if r.grpcTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.grpcTLS)))
	}
	opts = append(opts, grpc.ForceServerCodecV2(rawCodec{encoding.GetCodecV2(protoCodecName)}))
	s := grpc.NewServer(opts...)
	s.RegisterService(&rawTraceServiceDesc, grpcTraces{r: r})
	s.RegisterService(&rawLogsServiceDesc, grpcLogs{r: r})
	s.RegisterService(&rawMetricsServiceDesc, grpcMetrics{})
	return s
}

type grpcTraces struct{ r *Receiver }

func (g grpcTraces) exportRaw(ctx context.Context, in *rawMessage) (*rawMessage, error) {
	return exportRaw(ctx, g.r, tracesSignal, in)
}

type grpcLogs struct{ r *Receiver }

func (g grpcLogs) exportRaw(ctx context.Context, in *rawMessage) (*rawMessage, error) {
	return exportRaw(ctx, g.r, logsSignal, in)
}

// grpcMetrics accepts and ignores metrics (see the package doc), without
// decoding them: an empty ExportMetricsServiceResponse.
type grpcMetrics struct{}

func (grpcMetrics) exportRaw(_ context.Context, in *rawMessage) (*rawMessage, error) {
	in.free()
	return &rawMessage{}, nil
}

// The OTLP services with the request kept as protobuf bytes, so that the
// direct decoder (event.TracesFromProto) and the shape check run on them as
// on OTLP/HTTP, and pdata decodes only after the shape check. pdata registers grpc's
// "proto" codec; it hands any message with UnmarshalProto/MarshalProto/
// SizeProto its bytes, which rawMessage keeps.
var (
	rawTraceServiceDesc = rawServiceDesc("opentelemetry.proto.collector.trace.v1.TraceService",
		"opentelemetry/proto/collector/trace/v1/trace_service.proto")
	rawLogsServiceDesc = rawServiceDesc("opentelemetry.proto.collector.logs.v1.LogsService",
		"opentelemetry/proto/collector/logs/v1/logs_service.proto")
	rawMetricsServiceDesc = rawServiceDesc("opentelemetry.proto.collector.metrics.v1.MetricsService",
		"opentelemetry/proto/collector/metrics/v1/metrics_service.proto")
)

// rawExporter serves Export with the request as raw bytes.
type rawExporter interface {
	exportRaw(ctx context.Context, in *rawMessage) (*rawMessage, error)
}

func rawServiceDesc(service, file string) grpc.ServiceDesc {
	method := "/" + service + "/Export"
	return grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				in := new(rawMessage)
				err := dec(in)
				stopBodyTimer(ctx)
				if err != nil {
					return nil, err
				}
				g := srv.(rawExporter)
				if interceptor == nil {
					return g.exportRaw(ctx, in)
				}
				info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
				return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
					return g.exportRaw(ctx, req.(*rawMessage))
				})
			},
		}},
		Metadata: file,
	}
}

// direct runs a direct decoder within lim; a panic (a bug: the decoders
// are fuzzed) declines the request to the pdata path instead of taking the
// process down (grpc does not recover handler panics).
func (r *Receiver) direct(decode func(string, event.MapOptions) (event.Batch, int, bool), body, tenant string, lim event.DecodeLimits) (b event.Batch, n int, ok bool) {
	defer func() {
		if recover() != nil {
			b, n, ok = event.Batch{}, 0, false
		}
	}()
	o := r.mapOpts
	o.Tenant, o.ReceivedAt, o.Limits = tenant, nowFunc(), lim
	return decode(body, o)
}

const protoCodecName = "proto"

// rawCodec is the server's codec: grpc's registered "proto" codec (pdata's),
// except that a rawMessage request is copied once, straight from grpc's
// receive buffers into a pooled buffer.
type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	m.in = bufPool.Get().(*bytes.Buffer)
	m.in.Reset()
	m.in.Grow(data.Len())
	for _, b := range data {
		m.in.Write(b.ReadOnlyData())
	}
	return nil
}

// rawMessage is a protobuf message kept as bytes: a request in a pooled
// buffer (in; exportRaw frees it), a response as b.
type rawMessage struct {
	in *bytes.Buffer
	b  []byte
}

func (m *rawMessage) UnmarshalProto(b []byte) error {
	m.in = bufPool.Get().(*bytes.Buffer)
	m.in.Reset()
	m.in.Write(b)
	return nil
}
func (m *rawMessage) SizeProto() int              { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int { return copy(buf, m.b) }

func (m *rawMessage) bytes() []byte {
	if m.in == nil {
		return nil
	}
	return m.in.Bytes()
}

func (m *rawMessage) free() {
	if m.in != nil && m.in.Cap() <= 16<<20 {
		bufPool.Put(m.in)
	}
	m.in = nil
}

// exportRaw serves a raw export request of sig for the tenant the stream
// authenticated as.
func exportRaw[Req otlpRequest, Resp otlpResponse](ctx context.Context, r *Receiver, sig *otlpSignal[Req, Resp], in *rawMessage) (*rawMessage, error) {
	defer in.free()
	var res Result
	err := r.grpcServe(ctx, sig.name, func(tenant string, l *lease) (err error) {
		res, err = consumeBody(ctx, r, "grpc", sig, ctProto, in.bytes(), tenant, l)
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := sig.response(res).MarshalProto()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "cannot encode response: %v", err)
	}
	return &rawMessage{b: out}, nil
}

// grpcServe runs serve for the stream's tenant with a lease on the
// in-flight budget and maps its error to the gRPC status.
func (r *Receiver) grpcServe(ctx context.Context, signal string, serve func(tenant string, l *lease) error) (err error) {
	code := "OK"
	defer func() {
		if err != nil {
			e := classify(err, r.cfg.Limits.RetryAfter)
			r.m.Rejected.WithLabelValues(e.Reason).Inc()
			if e.Class == Unavailable && e.Reason == "internal" {
				r.log.Error("cannot process OTLP/gRPC request", "signal", signal, "err", err)
			}
			st := e.grpcStatus()
			code = st.Code().String()
			err = st.Err()
		}
		r.m.Requests.WithLabelValues("grpc", signal, code).Inc()
	}()
	tenant, ok := ctx.Value(tenantKey{}).(string)
	if !ok { // not through authenticateStream: never expected, but never unauthenticated
		if tenant, err = r.auth.authenticate(authorization(ctx), verifiedChains(ctx)); err != nil {
			return err
		}
	}
	l := &lease{b: r.budget, tenant: tenant}
	defer l.release()
	return serve(tenant, l)
}

type tenantKey struct{}

type bodyTimerKey struct{}

var errBodyTimeout = errors.New("request message not received within receiver.limits.body_timeout")

// stopBodyTimer stops the stream's body deadline once its message is in.
func stopBodyTimer(ctx context.Context) {
	if t, ok := ctx.Value(bodyTimerKey{}).(*time.Timer); ok {
		t.Stop()
	}
}

// authenticateStream is the gRPC tap: it authenticates a stream from its
// metadata and TLS state when its headers arrive, before its message is
// read, and refuses it there (UNAUTHENTICATED) or passes the tenant on.
// It also sets the deadline of the stream's message (body_timeout): grpc
// reads the message with the context returned here, so cancelling it
// ends a trickle.
func (r *Receiver) authenticateStream(ctx context.Context, info *tap.Info) (context.Context, error) {
	authz := ""
	if v := info.Header.Get("authorization"); len(v) > 0 {
		authz = v[0]
	}
	tenant, err := r.auth.authenticate(authz, verifiedChains(ctx))
	if err != nil {
		e := classify(err, r.cfg.Limits.RetryAfter)
		st := e.grpcStatus()
		r.m.Rejected.WithLabelValues(e.Reason).Inc()
		r.m.Requests.WithLabelValues("grpc", signalOf(info.FullMethodName), st.Code().String()).Inc()
		return nil, st.Err()
	}
	ctx, cancel := context.WithCancelCause(context.WithValue(ctx, tenantKey{}, tenant))
	t := time.AfterFunc(r.cfg.Limits.BodyTimeout, func() { cancel(errBodyTimeout) })
	return context.WithValue(ctx, bodyTimerKey{}, t), nil
}

// signalOf is the metric label of a gRPC method.
func signalOf(method string) string {
	switch {
	case strings.HasPrefix(method, "/opentelemetry.proto.collector.trace."):
		return "traces"
	case strings.HasPrefix(method, "/opentelemetry.proto.collector.logs."):
		return "logs"
	case strings.HasPrefix(method, "/opentelemetry.proto.collector.metrics."):
		return "metrics"
	}
	return "other"
}

func authorization(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func verifiedChains(ctx context.Context) [][]*x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		return ti.State.VerifiedChains
	}
	return nil
}
