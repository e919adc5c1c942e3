package otlpin

import (
	"context"
	"crypto/x509"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed requests
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

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
	}
	if r.grpcTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.grpcTLS)))
	}
	opts = append(opts, grpc.StatsHandler(payloadSize{}), grpc.ForceServerCodecV2(rawCodec{encoding.GetCodecV2(protoCodecName)}))
	s := grpc.NewServer(opts...)
	if _, ok := r.cons.(BatchConsumer); ok {
		s.RegisterService(&rawTraceServiceDesc, &grpcTraces{r: r})
	} else {
		ptraceotlp.RegisterGRPCServer(s, &grpcTraces{r: r})
	}
	if _, ok := r.cons.(BatchConsumer); ok {
		s.RegisterService(&rawLogsServiceDesc, &grpcLogs{r: r})
	} else {
		plogotlp.RegisterGRPCServer(s, &grpcLogs{r: r})
	}
	pmetricotlp.RegisterGRPCServer(s, &grpcMetrics{})
	return s
}

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	return exportPdata(ctx, g.r, tracesSignal, req)
}

func (g *grpcTraces) exportRaw(ctx context.Context, in *rawMessage) (*rawMessage, error) {
	return exportRaw(ctx, g.r, tracesSignal, in)
}

// The trace service with the request kept as protobuf bytes, so that the
// direct decoder (event.TracesFromProto) runs on them as on OTLP/HTTP.
// pdata registers grpc's "proto" codec; it hands any message with
// UnmarshalProto/MarshalProto/SizeProto its bytes, which rawMessage keeps.
var (
	rawTraceServiceDesc = rawServiceDesc("opentelemetry.proto.collector.trace.v1.TraceService",
		"opentelemetry/proto/collector/trace/v1/trace_service.proto")
	rawLogsServiceDesc = rawServiceDesc("opentelemetry.proto.collector.logs.v1.LogsService",
		"opentelemetry/proto/collector/logs/v1/logs_service.proto")
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
				if err := dec(in); err != nil {
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

// direct runs a direct decoder; a panic (a bug: the decoders are fuzzed)
// declines the request to the pdata path instead of taking the process
// down (grpc does not recover handler panics).
func (r *Receiver) direct(decode func(string, event.MapOptions) (event.Batch, int, bool), body, tenant string) (b event.Batch, n int, ok bool) {
	defer func() {
		if recover() != nil {
			b, n, ok = event.Batch{}, 0, false
		}
	}()
	o := r.mapOpts
	o.Tenant, o.ReceivedAt = tenant, nowFunc()
	return decode(body, o)
}

const protoCodecName = "proto"

// rawCodec is the server's codec: grpc's registered "proto" codec (pdata's),
// except that a rawMessage request is copied once, straight from grpc's
// receive buffers into its string; the registered codec would first copy
// the message into one pooled buffer, and rawMessage copy that again.
type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	var sb strings.Builder
	sb.Grow(data.Len())
	for _, b := range data {
		sb.Write(b.ReadOnlyData())
	}
	m.s = sb.String()
	return nil
}

// rawMessage is a protobuf message kept as bytes: a request as a string
// (one copy: the codec recycles its buffer; the events' strings slice it),
// a response as b.
type rawMessage struct {
	s string
	b []byte
}

func (m *rawMessage) UnmarshalProto(b []byte) error { m.s = string(b); return nil }
func (m *rawMessage) SizeProto() int                { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int   { return copy(buf, m.b) }

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	return exportPdata(ctx, g.r, logsSignal, req)
}

func (g *grpcLogs) exportRaw(ctx context.Context, in *rawMessage) (*rawMessage, error) {
	return exportRaw(ctx, g.r, logsSignal, in)
}

// exportPdata serves an export of sig decoded by pdata.
func exportPdata[Req otlpRequest, Resp otlpResponse](ctx context.Context, r *Receiver, sig *otlpSignal[Req, Resp], req Req) (Resp, error) {
	res, err := r.grpcConsume(ctx, sig.name, sig.items(req), func() int64 {
		if n := requestSize(ctx); n > 0 {
			return n
		}
		return int64(sig.size(req))
	}, func(ctx context.Context, tenant string) (Result, error) { return sig.consume(r.cons, ctx, tenant, req) })
	if err != nil {
		return sig.response(Result{}), err
	}
	return sig.response(res), nil
}

// exportRaw serves a raw export request of sig: mapped by the direct
// decoder and handed to the consumer as a batch. When the direct decoder
// declines (or the sender is not authenticated), pdata decodes it and
// exportPdata serves it, so pdata's decode errors and grpcConsume's auth
// answers stay exactly as on the pdata path.
func exportRaw[Req otlpRequest, Resp otlpResponse](ctx context.Context, r *Receiver, sig *otlpSignal[Req, Resp], in *rawMessage) (*rawMessage, error) {
	// The mapping needs the tenant; grpcConsume authenticates again and
	// answers an unauthenticated request exactly as on the pdata path.
	var b event.Batch
	var n int
	tenant, err := r.auth.authenticate(authorization(ctx), verifiedChains(ctx))
	ok := false
	if err == nil {
		b, n, ok = r.direct(sig.direct, in.s, tenant)
	}
	var resp Resp
	if ok {
		res, err := r.grpcConsume(ctx, sig.name, n, func() int64 {
			if s := requestSize(ctx); s > 0 {
				return s
			}
			return int64(len(in.s))
		}, func(ctx context.Context, _ string) (Result, error) {
			return r.cons.(BatchConsumer).ConsumeBatch(ctx, sig.name, b)
		})
		if err != nil {
			return nil, err
		}
		resp = sig.response(res)
	} else {
		req := sig.request()
		if err := unmarshal(ctProto, []byte(in.s), req.UnmarshalProto, nil); err != nil {
			return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
		}
		if resp, err = exportPdata(ctx, r, sig, req); err != nil {
			return nil, err
		}
	}
	out, err := resp.MarshalProto()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "cannot encode response: %v", err)
	}
	return &rawMessage{b: out}, nil
}

// grpcMetrics accepts and ignores metrics (see the package doc).
type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
}

func (grpcMetrics) Export(context.Context, pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	return pmetricotlp.NewExportResponse(), nil
}

func (r *Receiver) grpcConsume(ctx context.Context, signal string, items int, size func() int64,
	consume func(context.Context, string) (Result, error)) (res Result, err error) {
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
	tenant, err := r.auth.authenticate(authorization(ctx), verifiedChains(ctx))
	if err != nil {
		return res, err
	}
	r.m.Items.WithLabelValues("grpc", signal).Add(float64(items))
	release, err := r.admit(tenant, items, size())
	if err != nil {
		return res, err
	}
	defer release()
	return consume(ctx, tenant)
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

// payloadSize records each request's decompressed message size (grpc
// reports it before the handler runs), so the in-flight accounting does not
// walk the decoded request again.
type payloadSize struct{}

type sizeKey struct{}

func (payloadSize) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, sizeKey{}, new(atomic.Int64))
}

func (payloadSize) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InPayload); ok {
		if n, ok := ctx.Value(sizeKey{}).(*atomic.Int64); ok {
			n.Store(int64(in.Length))
		}
	}
}

func (payloadSize) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (payloadSize) HandleConn(context.Context, stats.ConnStats)                       {}

func requestSize(ctx context.Context) int64 {
	if n, ok := ctx.Value(sizeKey{}).(*atomic.Int64); ok {
		return n.Load()
	}
	return 0
}
