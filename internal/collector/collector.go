// Package collector wires the OTLP receiver to Kafka: authenticate → limit
// (otlpin) → normalize (event.TracesFromProto for protobuf traces, else
// event.FromTraces/FromLogs) → redact → produce the events, one agent's
// events of the request per Kafka record (groupByKey), and answer the
// sender only after Kafka acknowledged every record of its request.
//
// Delivery is at-least-once: when some records of a request were acked and
// others failed, the sender gets a retryable error and resends the whole
// request, so the acked ones arrive twice. event_id is deterministic, and
// the analyzer and ClickHouse (ReplacingMergeTree) deduplicate by it.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/otlpin"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

// Collector is one running collector.
type Collector struct {
	cfg      Config
	log      *slog.Logger
	redactor *redact.Redactor
	reg      *prometheus.Registry
	m        metrics
	kcl      *kgo.Client
	recv     *otlpin.Receiver
	admin    *http.Server
	adminLn  net.Listener
	mapOpts  event.MapOptions // identity config; tenant and time added per request

	notReady     atomic.Pointer[string] // nil = ready
	shuttingDown atomic.Bool
	// maxRecordBytes is the largest key+value that fits in one batch.
	maxRecordBytes int
	stop           context.CancelFunc
	wg             sync.WaitGroup
}

type metrics struct {
	accepted       *prometheus.CounterVec // signal
	ignored        *prometheus.CounterVec // reason
	rejected       *prometheus.CounterVec // shared with the receiver
	produceLatency prometheus.Histogram
	kafkaErrors    prometheus.Counter
	produced       prometheus.Counter
}

// New builds a collector from cfg (defaults applied and validated here).
func New(cfg Config, log *slog.Logger) (*Collector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, warning, err := redact.LoadKey(cfg.Redact, os.Getenv)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		log.Warn(warning)
	}
	redactor, err := redact.NewKeyed(cfg.Redact, key)
	if err != nil {
		return nil, fmt.Errorf("cannot build redactor: %w", err)
	}
	c := &Collector{cfg: cfg, log: log, redactor: redactor, reg: prometheus.NewRegistry(),
		maxRecordBytes: int(cfg.Kafka.Producer.MaxBatchBytes) - 1024, // batch and record headers
		mapOpts:        cfg.Identity.MapOptions()}
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.m = metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_collector_accepted_events_total",
			Help: "Canonical events acknowledged by Kafka, by signal."}, []string{"signal"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_collector_ignored_total",
			Help: "Spans and log records that are not MCP telemetry (accepted and ignored), by reason."}, []string{"reason"}),
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mcpwatch_collector_produce_latency_seconds",
			Help: "Time from producing a request's records to Kafka acknowledging all of them.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		kafkaErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_collector_kafka_errors_total",
			Help: "Records Kafka did not acknowledge (the request was answered with a retryable error)."}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_collector_kafka_records_total",
			Help: "Records acknowledged by Kafka."}),
	}
	c.reg.MustRegister(c.m.accepted, c.m.ignored, c.m.produceLatency, c.m.kafkaErrors, c.m.produced)
	recv, err := otlpin.New(cfg.Receiver, c, log, c.reg)
	if err != nil {
		return nil, err
	}
	c.recv = recv
	c.m.rejected = recv.Metrics().Rejected
	reason := "kafka: not connected yet"
	c.notReady.Store(&reason)
	return c, nil
}

// Start connects to Kafka (in the background: an unreachable Kafka makes
// the collector unready, not dead), then serves OTLP and the admin listener.
func (c *Collector) Start(ctx context.Context) error {
	kc := c.cfg.Kafka
	kcl, err := kafka.NewClient(kc, kafka.ProducerOpts(kc.Topic, kc.Producer)...)
	if err != nil {
		return err
	}
	c.kcl = kcl
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stop = stop
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.watchKafka(bg) }()

	if err := c.startAdmin(); err != nil {
		c.closeKafka()
		return err
	}
	if err := c.recv.Start(); err != nil {
		_ = c.admin.Close()
		c.closeKafka()
		return err
	}
	return nil
}

func (c *Collector) closeKafka() {
	c.stop()
	c.wg.Wait()
	c.kcl.Close()
}

// watchKafka creates the topic once Kafka is reachable and keeps readiness
// up to date with a periodic ping.
func (c *Collector) watchKafka(ctx context.Context) {
	topicReady := false
	t := time.NewTicker(c.cfg.ReadinessInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ReadinessInterval+2*time.Second)
		err := c.kcl.Ping(pctx)
		if err == nil && !topicReady {
			if *c.cfg.Kafka.CreateTopics {
				err = kafka.EnsureTopics(pctx, c.kcl, c.cfg.Kafka, c.cfg.Kafka.Topic)
			} else {
				err = topicExists(pctx, c.kcl, c.cfg.Kafka.Topic)
			}
			if err == nil {
				topicReady = true
				c.log.Info("kafka topic ready", "topic", c.cfg.Kafka.Topic)
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.setReady(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// topicExists checks that topic is known to the cluster (when the collector
// must not create it).
func topicExists(ctx context.Context, cl *kgo.Client, topic string) error {
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("cannot list kafka topics: %w", err)
	}
	if t, ok := td[topic]; !ok || t.Err != nil {
		return fmt.Errorf("kafka topic %s does not exist and kafka.create_topics is false", topic)
	}
	return nil
}

func (c *Collector) setReady(err error) {
	if c.shuttingDown.Load() {
		return
	}
	if err == nil {
		if old := c.notReady.Swap(nil); old != nil {
			c.log.Info("kafka reachable; collector ready")
		}
		return
	}
	reason := "kafka unreachable: " + err.Error()
	if old := c.notReady.Swap(&reason); old == nil {
		c.log.Warn("kafka unreachable; collector not ready", "err", err)
	}
}

// Ready returns nil when the collector can accept data, else why not:
// Kafka unreachable, or the in-flight budget full (refusing requests in
// the last seconds), so that a load balancer sends elsewhere. Only Kafka
// makes OTLP requests fail fast (fastFail): a full budget refuses them by
// itself, per tenant and in all.
func (c *Collector) Ready() error {
	if r := c.notReady.Load(); r != nil {
		return errors.New(*r)
	}
	return c.recv.Saturated()
}

func (c *Collector) startAdmin() error {
	ln, err := net.Listen("tcp", c.cfg.Admin.Endpoint)
	if err != nil {
		return fmt.Errorf("cannot listen on admin endpoint: %w", err)
	}
	c.adminLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := c.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{}))
	if c.cfg.Admin.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	c.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := c.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

// HTTPAddr, GRPCAddr and AdminAddr are the bound listener addresses.
func (c *Collector) HTTPAddr() string  { return c.recv.HTTPAddr() }
func (c *Collector) GRPCAddr() string  { return c.recv.GRPCAddr() }
func (c *Collector) AdminAddr() string { return c.adminLn.Addr().String() }

// Registry is the collector's Prometheus registry.
func (c *Collector) Registry() *prometheus.Registry { return c.reg }

// Shutdown stops accepting, lets requests in flight finish (their records
// are acked or failed), flushes the producer and closes Kafka.
func (c *Collector) Shutdown(ctx context.Context) error {
	reason := "shutting down"
	c.shuttingDown.Store(true)
	c.notReady.Store(&reason) // load balancers stop sending before the listeners close
	var errs []error
	if err := c.recv.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := c.kcl.Flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cannot flush kafka producer: %w", err))
	}
	c.closeKafka()
	if err := c.admin.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cannot shut down admin listener: %w", err))
	}
	return errors.Join(errs...)
}

// MapOptions implements otlpin.MapOptionsConsumer: the identity config.
func (c *Collector) MapOptions() event.MapOptions { return c.mapOpts }

func (c *Collector) mapOptions(tenant string) event.MapOptions {
	o := c.mapOpts
	o.Tenant, o.ReceivedAt = tenant, time.Now()
	return o
}

// ConsumeTraces implements otlpin.Consumer.
func (c *Collector) ConsumeTraces(ctx context.Context, tenant string, td ptrace.Traces) (otlpin.Result, error) {
	if err := c.fastFail(); err != nil {
		return otlpin.Result{}, err
	}
	b := event.FromTraces(td, c.mapOptions(tenant))
	return c.publish(ctx, "traces", "spans", b)
}

// ConsumeLogs implements otlpin.Consumer.
func (c *Collector) ConsumeLogs(ctx context.Context, tenant string, ld plog.Logs) (otlpin.Result, error) {
	if err := c.fastFail(); err != nil {
		return otlpin.Result{}, err
	}
	b := event.FromLogs(ld, c.mapOptions(tenant))
	return c.publish(ctx, "logs", "log records", b)
}

// ConsumeBatch implements otlpin.BatchConsumer: traces the receiver
// mapped directly from protobuf (event.TracesFromProto).
func (c *Collector) ConsumeBatch(ctx context.Context, signal string, b event.Batch) (otlpin.Result, error) {
	if err := c.fastFail(); err != nil {
		return otlpin.Result{}, err
	}
	noun := "spans"
	if signal == "logs" {
		noun = "log records"
	}
	return c.publish(ctx, signal, noun, b)
}

// fastFail answers 503 at once while the last ping said Kafka is down,
// instead of holding the request until the produce deadline.
func (c *Collector) fastFail() error {
	if r := c.notReady.Load(); r != nil {
		return otlpin.NewError(otlpin.Unavailable, "kafka_unavailable", c.cfg.Receiver.Limits.RetryAfter, nil, "collector not ready (%s); retry later", *r)
	}
	return nil
}

// publish redacts and encodes each event and produces it at once (so
// Kafka batches fill while the rest of the request is still encoded), then
// waits for every ack.
func (c *Collector) publish(ctx context.Context, signal, noun string, b event.Batch) (otlpin.Result, error) {
	var res otlpin.Result
	reasons := b.DropReasons
	pctx, cancel := context.WithTimeout(ctx, c.cfg.ProduceTimeout)
	defer cancel()
	start := time.Now()
	acks := newAckGroup()
	n, events := 0, 0 // records produced, events in them
	// Values go into the encoder's arena: a few large allocations per
	// request instead of one per record.
	enc := encoders.Get().(*event.ValueEncoder)
	acked := false
	defer func() {
		if acked {
			enc.Reuse() // Kafka acked every record: nothing refers to the values
		} else {
			enc.Reset() // records may still be buffered: their values stay
		}
		encoders.Put(enc)
	}()
	enc.ChunkSize = arenaChunk(b.Events)
	// Kafka holds the encoded keys and values, not the events.
	defer b.Release()
	for i := range b.Events {
		c.redactor.Apply(&b.Events[i])
	}
	g := groupByKey(b.Events)
	// The records, allocated in chunks (a record is 160 bytes; a request of
	// 500 events has ~10). franz-go holds pointers to them until their
	// acks, so a full chunk is never grown (that would move them): the next
	// record starts a new one.
	var recs []kgo.Record
	produce := func(key, v []byte) {
		acks.add()
		n++
		if len(recs) == cap(recs) {
			recs = make([]kgo.Record, 0, max(len(g.heads), 8))
		}
		recs = append(recs, kgo.Record{Key: key, Value: v})
		c.kcl.Produce(pctx, &recs[len(recs)-1], acks.ack)
	}
	groupMax := min(c.cfg.Kafka.Producer.RecordGroupBytes, c.maxRecordBytes)
	for gi := range g.heads {
		key := g.key(gi)
		var cur []byte // the group's record being filled
		for i := g.heads[gi]; i >= 0; i = g.next[i] {
			v := enc.EncodeAppend(cur, &b.Events[i], groupMax-len(key))
			if len(cur) > 0 && len(v) > len(cur) && &v[0] == &cur[0] {
				cur = v // appended to the group's record
				events++
				continue
			}
			if cur != nil {
				produce(key, cur)
				cur = nil
			}
			if len(v)+len(key) > c.maxRecordBytes {
				// Kafka would refuse it (MESSAGE_TOO_LARGE) on every retry.
				if reasons == nil {
					reasons = map[string]int{}
				}
				reasons["event_too_large"]++
				continue
			}
			cur = v
			events++
		}
		if cur != nil {
			produce(key, cur)
		}
	}
	var parts []string
	for r, k := range reasons {
		if event.Ignored(r) {
			// Not MCP telemetry (e.g. the app's HTTP spans, or spans that
			// only carry an MCP request id): ignored, not an error for the
			// sender, so whole-app exporters can point here.
			c.m.ignored.WithLabelValues(r).Add(float64(k))
			continue
		}
		res.Rejected += int64(k)
		c.m.rejected.WithLabelValues(r).Add(float64(k))
		parts = append(parts, fmt.Sprintf("%s=%d", r, k))
	}
	if res.Rejected > 0 {
		sort.Strings(parts)
		res.Message = fmt.Sprintf("%d %s produced no MCP audit event (%s)", res.Rejected, noun, strings.Join(parts, ", "))
	}
	if n == 0 {
		return res, nil
	}
	if err := c.wait(pctx, start, acks, n); err != nil {
		return otlpin.Result{}, err
	}
	acked = true
	c.m.accepted.WithLabelValues(signal).Add(float64(events))
	return res, nil
}

// arenaChunk sizes the value arena's chunks for a request: about its
// encoded size, between 4 KiB and 1 MiB.
func arenaChunk(evs []event.Event) int {
	n := 0
	for i := range evs {
		n += len(evs[i].Arguments) + len(evs[i].Result) + 768
	}
	return min(max(n, 4<<10), 1<<20)
}

// encoders keep their scratch buffer and arena chunks between requests;
// the chunks are reused only after a request's records were all acked.
var encoders = sync.Pool{New: func() any { return new(event.ValueEncoder) }}

// ackGroup collects the acks of one request's records. remaining starts
// at 1 for the producing loop itself (released by finish), so the group
// cannot complete while records are still being added.
type ackGroup struct {
	remaining atomic.Int64
	mu        sync.Mutex
	firstErr  error
	failed    int
	done      chan struct{}
}

func newAckGroup() *ackGroup {
	a := &ackGroup{done: make(chan struct{})}
	a.remaining.Store(1)
	return a
}

func (a *ackGroup) add() { a.remaining.Add(1) }

func (a *ackGroup) ack(_ *kgo.Record, err error) {
	if err != nil {
		a.mu.Lock()
		if a.firstErr == nil {
			a.firstErr = err
		}
		a.failed++
		a.mu.Unlock()
	}
	a.finish()
}

func (a *ackGroup) finish() {
	if a.remaining.Add(-1) == 0 {
		close(a.done)
	}
}

// wait waits until Kafka acked all n records, the produce deadline passed,
// or the sender went away.
func (c *Collector) wait(pctx context.Context, start time.Time, acks *ackGroup, n int) error {
	acks.finish() // the producing loop is done
	select {
	case <-acks.done:
	case <-pctx.Done():
		// Records still buffered are failed by their context; some may
		// still be acked later and arrive twice after the sender's retry.
		c.m.kafkaErrors.Add(float64(n))
		return otlpin.NewError(otlpin.Unavailable, "kafka_timeout", c.cfg.Receiver.Limits.RetryAfter, pctx.Err(),
			"kafka did not acknowledge %d records within %s; retry later", n, c.cfg.ProduceTimeout)
	}
	c.m.produceLatency.Observe(time.Since(start).Seconds())
	acks.mu.Lock()
	firstErr, failed := acks.firstErr, acks.failed
	acks.mu.Unlock()
	if firstErr != nil {
		c.m.kafkaErrors.Add(float64(failed))
		c.m.produced.Add(float64(n - failed))
		return otlpin.NewError(otlpin.Unavailable, "kafka_error", c.cfg.Receiver.Limits.RetryAfter, firstErr,
			"kafka did not acknowledge %d of %d records; retry later", failed, n)
	}
	c.m.produced.Add(float64(n))
	return nil
}

// keysSize is an upper bound of the partition keys' total length, so
// appendPartitionKey never grows the buffer (a grown buffer would still be
// correct: earlier keys keep pointing into the old one).
func keysSize(evs []event.Event) int {
	n := 0
	for i := range evs {
		e := &evs[i]
		n += len(e.Tenant) + len("/session:") + max(len(e.AgentID), len(e.UserID)+1+len(e.ClientName), len(e.SessionKey), len(e.TraceID))
	}
	return n
}

// appendPartitionKey appends e.PartitionKey() to dst without building the
// string (TestAppendPartitionKey keeps the two equal).
func appendPartitionKey(dst []byte, e *event.Event) []byte {
	dst = append(dst, e.Tenant...)
	switch {
	case e.AgentID != "":
		dst = append(dst, "/agent:"...)
		return append(dst, e.AgentID...)
	case e.UserID != "" || e.ClientName != "":
		dst = append(dst, "/user:"...)
		dst = append(dst, e.UserID...)
		dst = append(dst, '@')
		return append(dst, e.ClientName...)
	case e.SessionKey != "":
		dst = append(dst, "/session:"...)
		return append(dst, e.SessionKey...)
	default:
		dst = append(dst, "/trace:"...)
		return append(dst, e.TraceID...)
	}
}
