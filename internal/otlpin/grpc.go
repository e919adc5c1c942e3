package otlpin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
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

// What a gRPC stream may make grpc buffer, and how it is reserved.
//
// grpc reads a message whole before the handler sees it, so its bytes
// cannot be reserved as they arrive (as OTLP/HTTP does). Instead a stream
// reserves, from its tenant's share of the in-flight budget, the most it
// can make grpc hold at each step:
//
//   - from its headers (the tap) until its handler asks for the message:
//     grpcPendingBytes. The client may send only the stream's flow-control
//     window (grpcStreamWindow, static: setting it turns off grpc's BDP
//     estimation, which would grow it to 16 MiB) before anyone reads; grpc
//     compacts a backlog of small DATA frames once its overhead passes the
//     payload, so it holds at most twice the window.
//   - while grpc reads the message: messageBytes = 2 × max_request_bytes +
//     grpcPendingBytes. The message as received (grpc grants the window for
//     all of it at once), gzip-decompressed beside it (≤ max_request_bytes,
//     the compressed copy is freed after), then copied once by rawCodec
//     (the decompressed copy is freed after); plus what the client may send
//     after it, which nobody reads (the window again). The handler waits
//     for this room (up to body_timeout) instead of refusing, so a tenant's
//     concurrent requests queue for it rather than fail.
//   - once the message is in: its size, then what consumeBody reserves.
//
// The connection window does not hold memory (grpc returns it as DATA
// frames arrive; the streams' windows bound what is unread), so it is
// large: with BDP estimation off it alone bounds throughput per round trip.
// These are payload bytes: grpc also keeps every DATA frame as its own
// buffer, which the small-DATA-frame guard (frames.go) keeps from
// outweighing the payload.
//
// MaxConcurrentStreams bounds only a connection's bookkeeping: every stream
// past the tap holds its reservation, so a tenant has at most
// max_tenant_in_flight_bytes / grpcPendingBytes streams open (512 by
// default) and the next get RESOURCE_EXHAUSTED with RetryInfo.
const (
	maxHeaderListBytes    = 1 << 20 // http.DefaultMaxHeaderBytes
	grpcStreamWindow      = 64 << 10
	grpcConnWindow        = 16 << 20
	grpcPendingBytes      = 2 * grpcStreamWindow
	grpcMaxStreamsPerConn = 1000
)

// grpcMessageBytes is what a stream reserves while grpc reads its message
// of at most maxRequest bytes.
func grpcMessageBytes(maxRequest int64) int64 { return 2*maxRequest + grpcPendingBytes }

func (r *Receiver) newGRPCServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(r.cfg.Limits.MaxRequestBytes)), // bounds decompressed size too
		grpc.MaxConcurrentStreams(grpcMaxStreamsPerConn),
		grpc.StaticStreamWindowSize(grpcStreamWindow),
		grpc.StaticConnWindowSize(grpcConnWindow),
		// Recycle long-lived connections so new collector replicas behind a
		// load balancer receive traffic (the collector is stateless).
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second}),
		// Credentials are checked, and the stream's first reservation made,
		// on the stream's headers, before grpc reads a byte of the message.
		grpc.InTapHandle(r.admitStream),
		// Headers are read before the tap can refuse a stream: bound them
		// as net/http bounds OTLP/HTTP's (grpc's own default is 16 MiB).
		grpc.MaxHeaderListSize(maxHeaderListBytes),
	}
	// Connections whose streams send DATA frames too small to buffer are
	// closed before grpc holds them (frames.go).
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if r.grpcTLS != nil {
		creds = credentials.NewTLS(r.grpcTLS)
	}
	opts = append(opts, grpc.Creds(frameGuardCreds{TransportCredentials: creds, maxStreams: grpcMaxStreamsPerConn, refused: r.smallFramesRefused}))
	opts = append(opts, grpc.ForceServerCodecV2(rawCodec{encoding.GetCodecV2(protoCodecName)}))
	s := grpc.NewServer(opts...)
	s.RegisterService(&rawTraceServiceDesc, grpcTraces{r: r})
	s.RegisterService(&rawLogsServiceDesc, grpcLogs{r: r})
	s.RegisterService(&rawMetricsServiceDesc, grpcMetrics{r: r})
	return s
}

// smallFramesRefused counts a connection closed by the small-DATA-frame
// guard, and logs it (at most once a second: a sender may reconnect).
func (r *Receiver) smallFramesRefused(conn net.Conn, e *smallFramesError) {
	r.m.Rejected.WithLabelValues("small_data_frames").Inc()
	r.smallFramesLog.Do(func() {
		r.log.Warn("closed an OTLP/gRPC connection whose DATA frames are too small to buffer (further ones within a second are only counted in mcpwatch_collector_rejected_total{reason=\"small_data_frames\"})",
			"remote", conn.RemoteAddr().String(), "stream", e.stream, "frames", e.frames, "data_bytes", e.data, "padding_bytes", e.padded)
	})
}

type grpcTraces struct{ r *Receiver }

func (g grpcTraces) export(ss grpc.ServerStream) error { return exportRaw(ss, g.r, tracesSignal) }

type grpcLogs struct{ r *Receiver }

func (g grpcLogs) export(ss grpc.ServerStream) error { return exportRaw(ss, g.r, logsSignal) }

// grpcMetrics accepts and ignores metrics (see the package doc), without
// decoding them: an empty ExportMetricsServiceResponse.
type grpcMetrics struct{ r *Receiver }

func (g grpcMetrics) export(ss grpc.ServerStream) error {
	err := g.r.grpcServe(ss.Context(), "metrics", func(st *grpcStream) error {
		_, err := g.r.receive(ss, st)
		return err
	})
	if err != nil {
		return err
	}
	return ss.SendMsg(&rawMessage{})
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
	export(ss grpc.ServerStream) error
}

// rawServiceDesc registers Export as a stream handler, which on the wire
// is the same unary call: the handler, not grpc, decides when the message
// is read, so it can first wait for room to read it in (receive).
func rawServiceDesc(service, file string) grpc.ServiceDesc {
	return grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName: "Export",
			Handler:    func(srv any, ss grpc.ServerStream) error { return srv.(rawExporter).export(ss) },
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
// receive buffers into the string the direct decoder maps and the events
// slice (HTTP needs two copies: the body read into a pooled buffer, then
// that string).
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
	m.in = sb.String()
	return nil
}

// rawMessage is a protobuf message kept as bytes: a request as the string
// it was copied into (in), a response as b.
type rawMessage struct {
	in string
	b  []byte
}

func (m *rawMessage) UnmarshalProto(b []byte) error {
	m.in = string(b)
	return nil
}
func (m *rawMessage) SizeProto() int              { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int { return copy(buf, m.b) }

// exportRaw serves a raw export request of sig for the tenant the stream
// authenticated as.
func exportRaw[Req otlpRequest, Resp otlpResponse](ss grpc.ServerStream, r *Receiver, sig *otlpSignal[Req, Resp]) error {
	ctx := ss.Context()
	var out []byte
	err := r.grpcServe(ctx, sig.name, func(st *grpcStream) error {
		in, err := r.receive(ss, st)
		if err != nil {
			return err
		}
		res, err := consumeBody(ctx, r, "grpc", sig, ctProto, request{s: in.in}, st.tenant, &st.lease)
		if err != nil {
			return err
		}
		if out, err = sig.response(res).MarshalProto(); err != nil {
			return fmt.Errorf("cannot encode response: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ss.SendMsg(&rawMessage{b: out})
}

// receive waits for room to read the stream's message in (within the body
// deadline), reads it, and then holds only its size.
func (r *Receiver) receive(ss grpc.ServerStream, st *grpcStream) (*rawMessage, error) {
	ctx := ss.Context()
	if err := st.lease.waitAtLeast(ctx, grpcMessageBytes(r.cfg.Limits.MaxRequestBytes)); err != nil {
		st.bodyTimer.Stop()
		if errors.Is(context.Cause(ctx), errBodyTimeout) {
			return nil, err // its last refusal: the share or the budget stayed full
		}
		return nil, recvError(ctx, ctx.Err())
	}
	in := new(rawMessage)
	err := ss.RecvMsg(in)
	st.bodyTimer.Stop()
	if err != nil {
		return nil, recvError(ctx, err)
	}
	st.lease.shrink(int64(len(in.in)))
	return in, nil
}

// recvError classifies an error reading a stream's message.
func recvError(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errBodyTimeout) {
		return NewError(Timeout, "body_timeout", 0, nil, "request message not received within receiver.limits.body_timeout")
	}
	switch status.Code(err) {
	case codes.ResourceExhausted: // grpc: over the max receive size, as sent or decompressed
		return NewError(TooLarge, "too_large", 0, err, "request message too large")
	case codes.Canceled, codes.DeadlineExceeded: // the client went away
		return NewError(Unavailable, "cancelled", 0, err, "request cancelled")
	}
	return NewError(Permanent, "malformed", 0, err, "cannot read request message")
}

// grpcServe runs serve for the stream's tenant with the stream's lease on
// the in-flight budget and maps its error to the gRPC status.
func (r *Receiver) grpcServe(ctx context.Context, signal string, serve func(st *grpcStream) error) (err error) {
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
	st, ok := ctx.Value(streamKey{}).(*grpcStream)
	if !ok { // not through admitStream: never expected, but never unauthenticated
		tenant, err := r.auth.authenticate(authorization(ctx), verifiedChains(ctx))
		if err != nil {
			return err
		}
		st = &grpcStream{tenant: tenant, lease: lease{b: r.budget, tenant: tenant}, bodyTimer: time.NewTimer(r.cfg.Limits.BodyTimeout)}
	} else if !st.claim() {
		// The stream ended before its handler ran; its reservation went with it.
		return recvError(ctx, ctx.Err())
	}
	defer st.lease.release()
	return serve(st)
}

// grpcStream is what admitStream passes to the stream's handler.
type grpcStream struct {
	tenant    string
	lease     lease
	bodyTimer *time.Timer
	// unhook stops the stream's end from releasing the lease; false when
	// the stream ended first (and released it).
	unhook func() bool
}

// claim makes the handler the lease's owner (and releaser).
func (st *grpcStream) claim() bool { return st.unhook() }

type streamKey struct{}

var errBodyTimeout = errors.New("request message not received within receiver.limits.body_timeout")

// admitStream is the gRPC tap. On the stream's headers, before its
// message is read, it authenticates the stream from its metadata and TLS
// state (UNAUTHENTICATED), and reserves in its tenant's share what the
// stream may buffer before its handler runs (RESOURCE_EXHAUSTED + RetryInfo
// when the share is taken, UNAVAILABLE + RetryInfo when the budget is).
// The reservation is released when the stream ends, unless the handler
// took it over. It also sets the deadline of the stream's message
// (body_timeout): grpc reads the message with the context returned here,
// so cancelling it ends a trickle.
func (r *Receiver) admitStream(ctx context.Context, info *tap.Info) (context.Context, error) {
	authz := ""
	if v := info.Header.Get("authorization"); len(v) > 0 {
		authz = v[0]
	}
	tenant, err := r.auth.authenticate(authz, verifiedChains(ctx))
	st := &grpcStream{tenant: tenant, lease: lease{b: r.budget, tenant: tenant}}
	if err == nil {
		err = st.lease.grow(grpcPendingBytes)
	}
	if err != nil {
		e := classify(err, r.cfg.Limits.RetryAfter)
		gs := e.grpcStatus()
		r.m.Rejected.WithLabelValues(e.Reason).Inc()
		r.m.Requests.WithLabelValues("grpc", signalOf(info.FullMethodName), gs.Code().String()).Inc()
		return nil, gs.Err()
	}
	ctx, cancel := context.WithCancelCause(context.WithValue(ctx, streamKey{}, st))
	st.bodyTimer = time.AfterFunc(r.cfg.Limits.BodyTimeout, func() { cancel(errBodyTimeout) })
	st.unhook = context.AfterFunc(ctx, st.lease.release)
	return ctx, nil
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
