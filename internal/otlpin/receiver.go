package otlpin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Result is what a Consumer did with a request it accepted.
type Result struct {
	// Rejected counts spans or log records that were not accepted (e.g. not
	// MCP telemetry); reported to the sender as OTLP partial_success.
	Rejected int64
	// Message explains Rejected.
	Message string
}

// Consumer processes authenticated, decoded requests. tenant is "" when
// auth is disabled. An error is mapped to the sender's status by its
// *Error class; other errors are retryable (503 / UNAVAILABLE).
type Consumer interface {
	ConsumeTraces(ctx context.Context, tenant string, td ptrace.Traces) (Result, error)
	ConsumeLogs(ctx context.Context, tenant string, ld plog.Logs) (Result, error)
}

// BatchConsumer is implemented by consumers that also take requests mapped
// straight from OTLP protobuf by event.TracesFromProto / LogsFromProto (no
// pdata): the receiver then uses that path for OTLP/HTTP protobuf and
// OTLP/gRPC, and ConsumeTraces / ConsumeLogs for JSON and for what the
// direct decoders decline. signal is "traces" or "logs".
type BatchConsumer interface {
	ConsumeBatch(ctx context.Context, signal string, b event.Batch) (Result, error)
}

// MapOptionsConsumer is implemented by batch consumers whose mapping takes
// options besides the tenant and the receive time (the agent identity
// chain); the receiver reads them once, in New.
type MapOptionsConsumer interface {
	MapOptions() event.MapOptions
}

// Metrics are the receiver's Prometheus metrics.
type Metrics struct {
	Requests      *prometheus.CounterVec // transport, signal, code
	Items         *prometheus.CounterVec // transport, signal: spans / log records received
	Rejected      *prometheus.CounterVec // reason: items (or requests, for request-level reasons) rejected
	InFlightBytes prometheus.GaugeFunc
}

// Receiver serves OTLP over gRPC and HTTP.
type Receiver struct {
	cfg    Config
	cons   Consumer
	log    *slog.Logger
	auth   *authenticator
	rate   *tenantLimiter
	budget *budget
	m      *Metrics
	ready  func() error
	// mapOpts: the consumer's mapping options (MapOptionsConsumer).
	mapOpts event.MapOptions

	httpSrv *http.Server
	grpcSrv *grpc.Server
	httpLn  net.Listener
	grpcLn  net.Listener
	grpcTLS *tls.Config
	wg      sync.WaitGroup
	// smallFramesLog rate-limits the small-DATA-frame guard's warning.
	smallFramesLog rate.Sometimes
}

// New builds a receiver; reg may be nil. Start begins serving.
func New(cfg Config, cons Consumer, log *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := newAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, cons: cons, log: log, auth: a, rate: newTenantLimiter(cfg.Limits),
		budget: newBudget(cfg.Limits), smallFramesLog: rate.Sometimes{Interval: time.Second}}
	if mc, ok := cons.(MapOptionsConsumer); ok {
		r.mapOpts = mc.MapOptions()
	}
	r.m = &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_collector_requests_total",
			Help: "OTLP requests answered, by transport, signal and status code."}, []string{"transport", "signal", "code"}),
		Items: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_collector_received_items_total",
			Help: "Spans and log records received in decoded OTLP requests."}, []string{"transport", "signal"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_collector_rejected_total",
			Help: "Rejected spans/log records (or whole requests when the body could not be decoded), by reason."}, []string{"reason"}),
		InFlightBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcpwatch_collector_in_flight_bytes",
			Help: "Bytes of OTLP requests being processed."}, func() float64 { return float64(r.budget.inFlight()) }),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.m.Requests, r.m.Items, r.m.Rejected, r.m.InFlightBytes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register receiver metrics: %w", err)
			}
		}
	}
	if cfg.Auth.Disabled {
		log.Warn("AUTHENTICATION IS DISABLED: any sender can write to any tenant; use only for local demos (receiver.auth.disabled: true)")
	}
	return r, nil
}

// Metrics returns the receiver's metrics (the collector counts its own
// rejection reasons on Rejected).
func (r *Receiver) Metrics() *Metrics { return r.m }

// Start listens on the configured endpoints and serves in the background.
func (r *Receiver) Start() error {
	if !r.cfg.HTTP.Disabled() {
		ln, err := listen(r.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("cannot listen for OTLP/HTTP: %w", err)
		}
		r.httpLn = ln
		// The handler sets the body's deadline (limits.body_timeout).
		r.httpSrv = &http.Server{Handler: r.HTTPHandler(), ReadHeaderTimeout: r.cfg.Limits.HeaderTimeout,
			IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug)}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Error("OTLP/HTTP server stopped", "err", err)
			}
		}()
	}
	if !r.cfg.GRPC.Disabled() {
		ln, err := net.Listen("tcp", r.cfg.GRPC.Endpoint)
		if err == nil && r.cfg.GRPC.TLS.Enabled() {
			r.grpcTLS, err = serverTLS(r.cfg.GRPC.TLS)
			if err != nil {
				ln.Close()
			}
		}
		if err != nil {
			if r.httpLn != nil {
				_ = r.httpSrv.Close()
			}
			return fmt.Errorf("cannot listen for OTLP/gRPC: %w", err)
		}
		r.grpcLn = ln
		r.grpcSrv = r.newGRPCServer()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.grpcSrv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.log.Error("OTLP/gRPC server stopped", "err", err)
			}
		}()
	}
	r.log.Info("OTLP receiver listening", "http", r.HTTPAddr(), "grpc", r.GRPCAddr(),
		"http_tls", r.cfg.HTTP.TLS.Enabled(), "grpc_tls", r.cfg.GRPC.TLS.Enabled())
	return nil
}

// HTTPAddr is the bound OTLP/HTTP address ("" when disabled).
func (r *Receiver) HTTPAddr() string {
	if r.httpLn == nil {
		return ""
	}
	return r.httpLn.Addr().String()
}

// GRPCAddr is the bound OTLP/gRPC address ("" when disabled).
func (r *Receiver) GRPCAddr() string {
	if r.grpcLn == nil {
		return ""
	}
	return r.grpcLn.Addr().String()
}

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left.
func (r *Receiver) Shutdown(ctx context.Context) error {
	var errs []error
	done := make(chan struct{})
	go func() {
		if r.grpcSrv != nil {
			r.grpcSrv.GracefulStop()
		}
		close(done)
	}()
	if r.httpSrv != nil {
		if err := r.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot shut down OTLP/HTTP: %w", err))
			_ = r.httpSrv.Close()
		}
	}
	select {
	case <-done:
	case <-ctx.Done():
		r.grpcSrv.Stop()
		<-done
		errs = append(errs, fmt.Errorf("cannot shut down OTLP/gRPC gracefully: %w", ctx.Err()))
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

func listen(l ListenerConfig) (net.Listener, error) {
	ln, err := net.Listen("tcp", l.Endpoint)
	if err != nil {
		return nil, err
	}
	if !l.TLS.Enabled() {
		return ln, nil
	}
	tc, err := serverTLS(l.TLS)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, tc), nil
}

func serverTLS(t ServerTLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load TLS certificate: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot parse client_ca_file %s: no PEM certificates", t.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if t.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

// saturationHold is how long readiness reports a full in-flight budget
// after a request was last refused for it: long enough not to flap with
// every request that comes and goes.
const saturationHold = 10 * time.Second

// Saturated returns an error while the in-flight budget is full: a request
// was refused because all of it was taken in the last saturationHold. A
// tenant at its own share does not make the collector saturated.
func (r *Receiver) Saturated() error {
	at := r.budget.lastFull()
	if at.IsZero() || nowFunc().Sub(at) > saturationHold {
		return nil
	}
	return fmt.Errorf("in-flight budget full (%d of %d bytes in use; a request was refused %s ago)",
		r.budget.inFlight(), r.cfg.Limits.MaxInFlightBytes, nowFunc().Sub(at).Round(time.Millisecond))
}
