// Package analyzer runs mcpwatch's consume loop: poll Kafka → decode the
// OTLP values into canonical events → detect → insert into ClickHouse →
// commit offsets, at least once (docs/architecture.md).
//
// Delivery. Offsets are committed only after a batch's inserts succeeded.
// Rebalances are blocked from the moment a poll returns until the batch it
// belongs to is flushed and committed (kgo.BlockRebalanceOnPoll), so a
// revoked partition never has uncommitted, inserted work: the flush on
// revoke happens before the rebalance is allowed. A crash between insert
// and commit re-delivers the batch; every write is idempotent (events by
// event_id, the rollup by uniqExact(event_id), tool definitions by their key,
// findings by finding_id), so no count a user sees changes.
//
// Failure. While ClickHouse fails, the loop retries the same batch with
// jittered exponential backoff (retry.go) and polls nothing, so consumption
// stops (franz-go's prefetch buffer is bounded) and resumes where it
// stopped; a ping every probe_interval ends the wait as soon as the server
// answers. A record that does not decode, and a batch whose insert fails
// permanently (schema mismatch, bad data: store.IsPermanent), go to the
// dead-letter topic with a reason header and their offsets are committed
// with the batch: they never block their partition.
//
// Memory. A batch is bounded by batch_rows events and batch_bytes of
// records; records polled past the bound wait for the next batch.
package analyzer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/calljoin"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/detect/findingsout"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Detector turns a batch of events into findings (internal/detect). It
// must not modify the events: their insert may already be built.
type Detector interface {
	Detect(ctx context.Context, events []event.Event) ([]event.Finding, error)
}

// Enricher is per-agent state of the ingest role (internal/enrich).
type Enricher interface {
	Enrich(ctx context.Context, events []event.Event) error
	Flush(ctx context.Context) error
	Forget()
}

// FindingSink receives the findings of a batch after they were stored
// (internal/incident).
type FindingSink interface {
	HandleFindings(ctx context.Context, findings []event.Finding) error
}

// Dead-letter record headers.
const (
	HeaderDLQReason    = "mcpwatch-dlq-reason"
	HeaderDLQTopic     = "mcpwatch-dlq-topic"
	HeaderDLQPartition = "mcpwatch-dlq-partition"
	HeaderDLQOffset    = "mcpwatch-dlq-offset"
)

// Options wires an Analyzer.
type Options struct {
	Kafka  kafka.Config
	Config Config
	Store  *store.Store // required; migrated
	// Detector runs in the ingest role; when it is an InputDetector, the
	// inputs of rules grouped wider than an agent go to the detect role.
	// Sink owns incidents in the respond role (an IncidentOwner reloads
	// on rebalances). DetectState is the detect role's group state; without
	// it the role does not run. All optional (nil = disabled).
	Detector    Detector
	Sink        FindingSink
	DetectState GroupState
	// Router, when set, is the API's incident changes and playbook
	// decisions: respond binds it to the partitions it owns and forwards
	// the others to their owner (its Runner applies forwarded decisions).
	Router *IncidentRouter
	// Playbooks, when set, drives the playbook runs of the incidents the
	// respond role owns: reloaded after the incidents on every change of
	// its findings partitions (*playbook.Runner).
	Playbooks RunOwner
	// Enricher fills what an event lacks from what earlier events of its
	// agent said (internal/enrich: server memory, derived sessions); it runs
	// in the ingest role before detection and insert, and its state is
	// flushed before each commit. Optional.
	Enricher Enricher
	// Handler, when set, is mounted at /api/ on the admin listener.
	Handler http.Handler
	// Registry collects the analyzer's metrics; nil = a new registry.
	// /metrics serves it (plus Go and process collectors when new).
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// BeforeCommit, when set, runs after a batch's inserts succeeded and
	// before its offsets are committed (tests use it to crash there).
	BeforeCommit func()
	// BeforeJoinCommit, when set, runs before the call join commits its
	// offsets (after the releases were acknowledged); an error skips that
	// commit, as a crash there would (tests).
	BeforeJoinCommit func() error
	// KafkaOpts are extra franz-go options (tests); they must not set the
	// partition callbacks, which the roles need (use OnAssigned).
	KafkaOpts []kgo.Opt
	// OnAssigned, when set, is called when a role is assigned partitions
	// (benchmarks start their clocks there).
	OnAssigned func(role string, partitions int)
}

// Analyzer is the consume loop plus its admin listener and retention.
type Analyzer struct {
	o   Options
	cfg Config
	log *slog.Logger
	reg *prometheus.Registry
	m   *metrics

	ready  atomic.Bool // ClickHouse writable (last write or ping)
	writes pendingWrites
	// peakMu guards the largest batch flushed so far (metrics).
	peakMu                sync.Mutex
	peakEvents, peakBytes int
	roleMu                sync.Mutex
	roles                 map[string]*roleStatus
	adminMu               sync.Mutex
	adminLn               net.Listener
	inserted              atomic.Uint64 // events inserted, for tests and logs
	dec                   event.Decoder // the consume loop's (interns low-cardinality strings)
	// steps is the ingest role's reader of the steps topic (nil: no
	// gating of later sequence steps).
	steps *stepsReader
	// detectParts is the detect topic's partition count (ingest groups its
	// detection inputs by partition).
	detectParts int
	// pairs is the ingest role's memory of the agents whose calls the join
	// paired recently (which client halves wait: join.go).
	pairs *calljoin.Pairs
	// joinOn: the call join runs (ingest role, call_join_wait > 0, the
	// calls topic exists); set by Run before the roles start.
	joinOn bool
}

// New validates the options.
func New(o Options) (*Analyzer, error) {
	o.Kafka = o.Kafka.WithDefaults()
	o.Config = o.Config.WithDefaults()
	errs := []error{o.Kafka.Validate(), o.Config.Validate()}
	if o.Store == nil {
		errs = append(errs, errors.New("analyzer: a store is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cannot configure analyzer: %w", err)
	}
	a := &Analyzer{o: o, cfg: o.Config, log: o.Logger, reg: o.Registry,
		pairs: &calljoin.Pairs{Memory: o.Config.CallJoinPairMemory}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
		a.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	a.m = newMetrics(a.reg)
	a.registerStorageGauges()
	return a, nil
}

// Registry is where the analyzer's metrics are registered.
func (a *Analyzer) Registry() *prometheus.Registry { return a.reg }

// MetricsHandler serves the registry in the Prometheus text format.
func (a *Analyzer) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})
}

// roleStatus is one role's readiness: running and owning partitions.
type roleStatus struct {
	running  bool
	assigned int
}

// roleAssigned adds delta to the partitions role owns (negative: revoked).
func (a *Analyzer) roleAssigned(role string, delta int) {
	a.roleMu.Lock()
	defer a.roleMu.Unlock()
	st := a.roleState(role)
	st.running = true
	st.assigned = max(st.assigned+delta, 0)
	a.m.assigned.WithLabelValues(role).Set(float64(st.assigned))
	if delta > 0 && a.o.OnAssigned != nil {
		a.o.OnAssigned(role, delta)
	}
}

// roleReady marks a role as stopped (false) or running without partitions yet.
func (a *Analyzer) roleReady(role string, running bool) {
	a.roleMu.Lock()
	defer a.roleMu.Unlock()
	st := a.roleState(role)
	st.running = running
	if !running {
		st.assigned = 0
		a.m.assigned.WithLabelValues(role).Set(0)
	}
}

func (a *Analyzer) roleState(role string) *roleStatus {
	if a.roles == nil {
		a.roles = map[string]*roleStatus{}
	}
	st := a.roles[role]
	if st == nil {
		st = &roleStatus{}
		a.roles[role] = st
	}
	return st
}

// Ready reports nil when ClickHouse is writable and every role this process
// runs owns partitions and consumes them: an instance that waits for its
// group (a restart within the session timeout) or got no partition (more
// instances than partitions) is not ready, and says which role is not.
func (a *Analyzer) Ready(ctx context.Context) error {
	var errs []error
	if d := a.writes.oldest(time.Now()); d > a.cfg.StallTimeout {
		errs = append(errs, fmt.Errorf("storage stalled: a clickhouse write has not succeeded for %s", d.Round(time.Second)))
	} else if !a.ready.Load() {
		errs = append(errs, errors.New("clickhouse failing"))
	}
	a.roleMu.Lock()
	for _, r := range a.cfg.Roles {
		if _, ok := a.roleLoops()[r]; !ok {
			continue
		}
		st := a.roles[r]
		switch {
		case st == nil || !st.running:
			errs = append(errs, fmt.Errorf("%s role not consuming", r))
		case st.assigned == 0:
			errs = append(errs, fmt.Errorf("%s role owns no partition", r))
		}
	}
	a.roleMu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("analyzer not ready: %w", errors.Join(errs...))
	}
	return nil
}

// AdminAddr is the admin listener's address once Run has started it.
func (a *Analyzer) AdminAddr() string {
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// Inserted is the number of events inserted so far (replays included).
func (a *Analyzer) Inserted() uint64 { return a.inserted.Load() }

// Run runs the configured roles (Config.Roles) until ctx is done: each
// flushes what it holds, commits, and leaves its group. It returns nil on a
// clean shutdown, or the first role's error (the others are stopped).
func (a *Analyzer) Run(ctx context.Context) error {
	if *a.o.Kafka.CreateTopics {
		if err := a.ensureTopics(ctx); err != nil {
			return err
		}
	}
	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer func() { stopBG(); bg.Wait() }()
	if a.cfg.AdminAddr != "-" {
		if err := a.startAdmin(bgCtx, &bg); err != nil {
			return err
		}
	}
	if !a.cfg.Retention.Disabled && a.cfg.Has(RoleIngest) {
		bg.Add(1)
		go func() { defer bg.Done(); a.retentionLoop(bgCtx) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); a.lagLoop(bgCtx, a.cfg.LagInterval) }()
	bg.Add(1)
	go func() { defer bg.Done(); a.healthLoop(bgCtx) }()
	if err := a.o.Store.Ping(ctx); err == nil {
		a.setUp(true)
	}
	roles := a.roleLoops()
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, len(roles))
	n := 0
	for _, r := range a.cfg.Roles {
		run, ok := roles[r]
		if !ok {
			continue // detect without stateful rules to repartition
		}
		n++
		go func() {
			err := run(rctx)
			a.roleReady(r, false)
			if err != nil {
				err = fmt.Errorf("%s role: %w", r, err)
			}
			errs <- err
		}()
	}
	if a.cfg.Has(RoleIngest) && a.cfg.JoinEnabled() {
		on, err := a.callsTopicReady(ctx)
		if err != nil {
			return nil // ctx ended
		}
		a.joinOn = on
	}
	if a.joinOn {
		// The call join runs with the ingest role (join.go), in its own
		// consumer group; it is not a role of its own in readiness.
		n++
		go func() {
			err := a.joinLoop(rctx)
			a.roleReady(roleJoin, false)
			if err != nil {
				err = fmt.Errorf("call join: %w", err)
			}
			errs <- err
		}()
	}
	var first error
	for ; n > 0; n-- {
		if err := <-errs; err != nil && first == nil {
			first = err
			stop()
		}
	}
	a.ready.Store(false)
	return first
}

// roleLoops are the consume loops of the roles, by name.
func (a *Analyzer) roleLoops() map[string]func(context.Context) error {
	m := map[string]func(context.Context) error{RoleIngest: a.ingest, RoleRespond: a.respond}
	if a.o.DetectState != nil {
		m[RoleDetect] = a.detect
	}
	return m
}

// ensureTopics creates the topics the roles consume and produce.
func (a *Analyzer) ensureTopics(ctx context.Context) error {
	cl, err := kafka.NewClient(a.o.Kafka)
	if err != nil {
		return err
	}
	defer cl.Close()
	k := a.o.Kafka
	topics := []string{k.Topic, k.DeadLetterTopic, k.FindingsTopic, k.DetectTopic}
	if a.cfg.JoinEnabled() {
		topics = append(topics, k.CallsTopic) // partitions as the events topic's
	}
	if err := kafka.EnsureTopics(ctx, cl, k, topics...); err != nil {
		return err
	}
	if err := kafka.EnsureSmallTopics(ctx, cl, k, k.WithDefaults().DetectStepsTopic); err != nil {
		return err
	}
	return kafka.EnsureCompactedTopics(ctx, cl, k, k.DetectStateTopic)
}

// roleOpts are the options every role's client shares: static membership
// when an instance id is configured, and the test options.
func (a *Analyzer) roleOpts(role string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SessionTimeout(a.cfg.SessionTimeout)}
	if a.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(a.cfg.InstanceID+"-"+role))
	}
	return append(opts, a.o.KafkaOpts...)
}

// ingest is the ingest role: events topic → decode → detect → ClickHouse,
// findings and detection inputs to their topics → commit.
func (a *Analyzer) ingest(ctx context.Context) error {
	var revokedMu sync.Mutex
	opts := []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.Group),
		kgo.ConsumeTopics(a.o.Kafka.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Records hold one agent's events of one collector request (≤ 64 KiB
		// by default); let one fetch carry many.
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(16 << 20),
		kgo.RequiredAcks(kgo.AllISRAcks()), // findings, detection inputs, dead letters
		kgo.RecordPartitioner(kafka.KeyPartitioner()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.roleAssigned(RoleIngest, len(m[a.o.Kafka.Topic]))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			// Nothing is pending here: rebalances are only allowed between
			// batches, after the commit. Drop the lag series we no longer own.
			revokedMu.Lock()
			defer revokedMu.Unlock()
			a.roleAssigned(RoleIngest, -len(m[a.o.Kafka.Topic]))
			a.dropLag(m)
			if a.o.Enricher != nil {
				a.o.Enricher.Forget() // the next owner of these agents loads them
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			revokedMu.Lock()
			defer revokedMu.Unlock()
			a.roleAssigned(RoleIngest, -len(m[a.o.Kafka.Topic]))
			a.dropLag(m)
			if a.o.Enricher != nil {
				a.o.Enricher.Forget()
			}
		}),
	}
	opts = append(opts, a.roleOpts(RoleIngest)...)
	cl, err := kafka.NewClient(a.o.Kafka, opts...)
	if err != nil {
		return err
	}
	// With BlockRebalanceOnPoll a plain Close could wait for AllowRebalance.
	defer cl.CloseAllowingRebalance()
	if sd, ok := a.o.Detector.(InputDetector); ok {
		// Inputs are grouped per partition of the detect topic.
		if err := a.awaitMetadata(ctx, "read the detect topic's partitions", func(ctx context.Context) (err error) {
			a.detectParts, err = partitionCount(ctx, cl, a.o.Kafka.DetectTopic)
			return err
		}); err != nil {
			return nil
		}
		// The first steps of the gated sequences, from every instance.
		if err := a.awaitMetadata(ctx, "read the steps topic", func(ctx context.Context) (err error) {
			a.steps, err = newStepsReader(ctx, a.o.Kafka, sd.Pack, func(err error) {
				a.m.undecodable.WithLabelValues(RoleIngest).Inc()
				a.log.Warn("ingest: undecodable step notice skipped", "err", err)
			})
			return err
		}); err != nil {
			return nil
		}
		if a.steps == nil {
			a.log.Warn("ingest: no steps topic; every later sequence step is forwarded", "topic", a.o.Kafka.WithDefaults().DetectStepsTopic)
		} else {
			defer a.steps.close()
		}
	}
	a.log.Info("ingest role consuming", "topic", a.o.Kafka.Topic, "group", a.cfg.Group,
		"batch_rows", a.cfg.BatchRows, "batch_bytes", a.cfg.BatchBytes, "batch_interval", a.cfg.BatchInterval)
	return a.consume(ctx, cl)
}

func (a *Analyzer) setUp(up bool) {
	a.ready.Store(up)
	if up {
		a.m.chUp.Set(1)
	} else {
		a.m.chUp.Set(0)
	}
}

func (a *Analyzer) dropLag(m map[string][]int32) {
	for t, ps := range m {
		for _, p := range ps {
			a.m.lag.DeleteLabelValues(t, strconv.Itoa(int(p)))
		}
	}
}

// batch is what one flush writes and commits.
type batch struct {
	records []*kgo.Record // every record, decoded or not, for the commit
	events  []event.Event
	// spans[i] is how many events records[i] decoded to (suppression
	// positions: sourcePositions).
	spans []int
	// prep, when set, is the events INSERT already built (while the
	// previous batch was being written); the first insert attempt sends it.
	prep  *store.PreparedEvents
	dead  []*kgo.Record // dead-letter copies
	bytes int           // encoded record values, bounded by BatchBytes
	// undecoded are the records that are dead letters already (decode).
	undecoded map[*kgo.Record]bool
	started   time.Time

	// Progress of a flush that was interrupted (shutdown during an
	// outage): the final flush resumes instead of redoing stored steps.
	enriched, detected, noticed, gated, eventsDone, defsDone, findingsDone, deadDone bool
	// The call join (join.go): halves were removed (diverted), calls holds
	// the calls-topic records, produced (callsDone) before the commit.
	diverted, callsDone bool
	calls               []*kgo.Record
	findings            []event.Finding
	inputs              []detect.Input
	pollDur, decodeDur  time.Duration
}

// maxRebalanceBlock bounds how long the pipelined loop keeps rebalances
// blocked under continuous load before it drains (flushes everything,
// commits) and allows one; well under franz-go's 60s rebalance timeout.
const maxRebalanceBlock = 10 * time.Second

// inflight is a batch being flushed by a background goroutine.
type inflight struct {
	b    *batch
	done chan struct{}
	err  error
}

func (f *inflight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// consume is the loop. It keeps at most one batch in flight (inserting,
// then committing, in a goroutine) while it polls and decodes the next one,
// so decoding overlaps ClickHouse's work. Batches are committed in order.
// Rebalances are allowed only at drain points, where nothing is polled
// but unflushed: when idle, and at least every maxRebalanceBlock.
func (a *Analyzer) consume(ctx context.Context, cl *kgo.Client) error {
	cur := &batch{}
	var fl *inflight
	// Double buffering: a stored batch's slices are reused for the next
	// one (no 50k-event allocation per flush for the GC to reclaim).
	var spare *batch
	recycle := func(b *batch) {
		clear(b.records) // drop the references to the fetch buffers
		clear(b.events)
		spare = &batch{records: b.records[:0], events: b.events[:0], spans: b.spans[:0]}
	}
	// carry holds polled records that did not fit the batch being filled
	// (batch_rows, batch_bytes); the next batch takes them before polling.
	var carry []*kgo.Record
	var est recordSize // events and bytes per record, to size polls
	next := func() *batch {
		if spare == nil {
			return &batch{}
		}
		b := spare
		spare = nil
		return b
	}
	defer func() {
		// A batch prepared but never flushed (shutdown) releases its
		// connection; nothing of it was sent.
		if cur.prep != nil {
			cur.prep.Abort()
		}
	}()
	lastAllow := time.Now()
	wait := func() error { // waits for the batch in flight
		if fl == nil {
			return nil
		}
		<-fl.done
		if fl.err != nil {
			return fl.err // fl kept: the final flush resumes it
		}
		recycle(fl.b)
		fl = nil
		return nil
	}
loop:
	for ctx.Err() == nil {
		if fl != nil && fl.finished() && fl.err == nil {
			recycle(fl.b)
			fl = nil
		}
		if len(cur.records) == 0 && fl == nil && len(carry) == 0 {
			cl.AllowRebalance()
			lastAllow = time.Now()
		}
		// A drain is due: stop polling and flush what the batch holds.
		draining := time.Since(lastAllow) >= maxRebalanceBlock && len(cur.records) > 0
		switch {
		case len(carry) > 0:
			t0 := time.Now()
			carry = a.take(carry, cur, &est)
			cur.decodeDur += time.Since(t0)
		case !draining:
			pctx, cancel := ctx, context.CancelFunc(func() {})
			switch {
			case len(cur.records) > 0:
				pctx, cancel = context.WithDeadline(ctx, cur.started.Add(a.cfg.BatchInterval))
			case fl != nil: // come back to allow rebalances once it is done
				pctx, cancel = context.WithTimeout(ctx, a.cfg.BatchInterval)
			}
			t0 := time.Now()
			fetches := cl.PollRecords(pctx, est.fit(a.cfg.BatchRows-len(cur.events), a.cfg.BatchBytes-cur.bytes))
			cancel()
			cur.pollDur += time.Since(t0)
			if fetches.IsClientClosed() {
				break loop
			}
			t0 = time.Now()
			a.observeFetches(fetches)
			carry = a.take(fetches.Records(), cur, &est)
			cur.decodeDur += time.Since(t0)
		}
		if len(cur.records) == 0 {
			continue
		}
		full := len(carry) > 0 || len(cur.events) >= a.cfg.BatchRows || cur.bytes >= a.cfg.BatchBytes
		if !full && !draining && time.Since(cur.started) < a.cfg.BatchInterval && ctx.Err() == nil {
			// Keep filling (rebalances wait for this batch), unless the
			// inserter is idle and the batch already holds a quarter of
			// BatchRows: then waiting would only leave ClickHouse idle
			// (a backlog's first batch, or decoding slower than inserting).
			// A trickle still waits BatchInterval, so inserts stay large.
			idle := fl == nil || fl.finished()
			if !idle || 4*len(cur.events) < a.cfg.BatchRows {
				continue
			}
		}
		if err := a.enrich(ctx, cur); err != nil {
			if ctx.Err() == nil {
				return err
			}
			break
		}
		if fl != nil && !fl.finished() && len(cur.events) > 0 {
			// While the batch in flight is being written, build the next
			// insert (the client-side half of its cost): only the data is
			// left to send once the batch in flight is stored. Inserts
			// stay one at a time and in order. If this fails (ClickHouse
			// down), the flush inserts the usual way, with retries.
			if p, err := a.o.Store.PrepareEvents(ctx, cur.events); err == nil {
				cur.prep = p
				a.m.prepared.Inc()
			}
		}
		if err := wait(); err != nil {
			if ctx.Err() == nil {
				return err // permanent: nothing of it was committed
			}
			break
		}
		if time.Since(lastAllow) >= maxRebalanceBlock {
			// Drain point: flush synchronously, then let a rebalance in
			// (once the records carried over are flushed too).
			if err := a.flush(ctx, cl, cur); err != nil {
				if ctx.Err() == nil {
					return err
				}
				break
			}
			recycle(cur)
			cur = next()
			if len(carry) == 0 {
				cl.AllowRebalance()
				lastAllow = time.Now()
			}
			continue
		}
		f := &inflight{b: cur, done: make(chan struct{})}
		go func() {
			defer close(f.done)
			f.err = a.flush(ctx, cl, f.b)
		}()
		fl, cur = f, next()
	}
	// Shutdown: finish (or resume) the batch in flight, then the one
	// being filled, with a fresh deadline; what fails is replayed later.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if cur.prep != nil { // prepared under the ended ctx: insert anew
		cur.prep.Abort()
		cur.prep = nil
	}
	if fl != nil {
		<-fl.done
		if fl.err != nil {
			if err := a.flush(sctx, cl, fl.b); err != nil {
				a.log.Warn("final flush failed; its records are replayed on restart", "records", len(fl.b.records)+len(cur.records), "err", err)
				return nil
			}
		}
	}
	if len(cur.records) > 0 {
		if err := a.flush(sctx, cl, cur); err != nil {
			a.log.Warn("final flush failed; its records are replayed on restart", "records", len(cur.records), "err", err)
			return nil
		}
	}
	cl.AllowRebalance()
	return nil
}

// sourcePositions sets, on each finding that suppresses (docs/detections.md),
// where its event was on the events topic: partition<<40 | offset+1. The
// respond role counts a window's findings past that watermark only, so a
// replay (of events here, or of findings there) is never counted twice.
func (a *Analyzer) sourcePositions(b *batch) {
	var ids map[string]int64
	for i := range b.findings {
		f := &b.findings[i]
		if f.SuppressKey == "" || len(f.EventIDs) == 0 {
			continue
		}
		if ids == nil {
			ids = make(map[string]int64, len(b.events))
			e := 0
			for j, r := range b.records {
				for range b.spans[j] {
					ids[b.events[e].EventID] = int64(r.Partition)<<40 | (r.Offset + 1)
					e++
				}
			}
		}
		f.SuppressPos = ids[f.EventIDs[len(f.EventIDs)-1]]
	}
}

// observeFetches counts fetch errors and records each partition's lag.
func (a *Analyzer) observeFetches(fetches kgo.Fetches) {
	fetches.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		a.m.fetchErrors.Inc()
		a.log.Warn("kafka fetch error", "topic", t, "partition", p, "err", err)
	})
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			last := p.Records[n-1].Offset
			a.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(p.HighWatermark - last - 1))
		}
	})
}

// take decodes recs into b, in order, until b is full: it holds BatchRows
// events or BatchBytes of record values. It returns the records that did
// not fit. A record that alone exceeds a bound makes a batch of its own.
// Undecodable records become dead letters.
func (a *Analyzer) take(recs []*kgo.Record, b *batch, est *recordSize) (rest []*kgo.Record) {
	if b.events == nil {
		// One allocation per batch instead of repeated doubling: room for
		// twice the largest batch so far, not BatchRows (an event is ~1 KiB:
		// 50 000 of them are 45 MiB to clear for a batch of a few
		// thousand). A larger batch grows it.
		n := min(a.cfg.BatchRows, 1<<16)
		if est.maxBatch > 0 {
			n = min(n, max(2*est.maxBatch, 1024))
		}
		b.events = make([]event.Event, 0, n)
	}
	defer func() { est.maxBatch = max(est.maxBatch, len(b.events)) }()
	for i, r := range recs {
		if len(b.records) > 0 && (len(b.events) >= a.cfg.BatchRows || b.bytes+len(r.Value) > a.cfg.BatchBytes) {
			return recs[i:]
		}
		// Decoded straight into the batch: no per-record slice, no copy;
		// one shared copy of each tenant, server, tool... name.
		n := len(b.events)
		evs, err := a.dec.UnmarshalAppend(b.events, r.Value)
		if len(evs) > a.cfg.BatchRows && len(b.records) > 0 {
			// This record's events overfill the batch: the next one
			// decodes it again.
			clear(evs[n:])
			b.events = evs[:n]
			return recs[i:]
		}
		b.events = evs
		if b.started.IsZero() {
			b.started = time.Now()
		}
		b.records = append(b.records, r)
		b.spans = append(b.spans, len(evs)-n)
		b.bytes += len(r.Value)
		est.add(len(evs)-n, len(r.Value))
		if err != nil {
			b.dead = append(b.dead, a.deadLetter(r, "decode", "decode: "+err.Error()))
			if b.undecoded == nil {
				b.undecoded = map[*kgo.Record]bool{}
			}
			b.undecoded[r] = true
		}
	}
	return nil
}

// recordSize is a running mean of the events and bytes per record, so a
// poll asks for about as many records as the batch has room for (fewer
// carried over to the next batch).
type recordSize struct {
	records, events, bytes int64
	maxBatch               int // the most events a batch held
}

func (s *recordSize) add(events, bytes int) {
	if s.records >= 1<<20 { // keep following changes of the traffic
		s.records, s.events, s.bytes = s.records/2, s.events/2, s.bytes/2
	}
	s.records++
	s.events += int64(events)
	s.bytes += int64(bytes)
}

// fit is how many records to poll for room more events and roomBytes
// more bytes; at least 1.
func (s *recordSize) fit(room, roomBytes int) int {
	if s.records == 0 {
		return max(min(room, 1024), 1) // nothing known yet: a modest first poll
	}
	n := room
	if s.events > 0 {
		n = min(n, int(int64(room)*s.records/s.events))
	}
	if s.bytes > 0 {
		n = min(n, int(int64(roomBytes)*s.records/s.bytes))
	}
	return max(n, 1)
}

func (a *Analyzer) deadLetter(r *kgo.Record, kind, reason string) *kgo.Record {
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	a.m.deadLettered.WithLabelValues(kind).Inc()
	hs := append([]kgo.RecordHeader(nil), r.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{Topic: a.o.Kafka.DeadLetterTopic, Key: r.Key, Value: r.Value, Headers: hs}
}

// awaitMetadata runs fn until it succeeds or ctx ends, every 100 ms: a
// topic just created (ensureTopics) shows in the brokers' metadata a few
// seconds later, and the doubling backoff would wait up to twice that.
// A failure is logged every 5 s.
func (a *Analyzer) awaitMetadata(ctx context.Context, what string, fn func(context.Context) error) error {
	var logged time.Time
	p := retryPolicy{initial: 100 * time.Millisecond, max: 100 * time.Millisecond,
		onRetry: func(_ int, _ time.Duration, err error) {
			if time.Since(logged) >= 5*time.Second {
				logged = time.Now()
				a.log.Warn("kafka metadata not ready; retrying", "what", what, "err", err)
			}
		}}
	return a.retryWith(ctx, what, p, fn)
}

// insert runs one store write with metrics and the up/ready state,
// retrying transient failures (a ping ends each wait early once the
// server answers). A permanent failure is returned at once.
func (a *Analyzer) insert(ctx context.Context, table string, rows int, fn func(context.Context) error) error {
	defer a.writes.start()()
	return a.retryWith(ctx, "insert into "+table, a.storePolicy("insert into "+table), func(ctx context.Context) error {
		start := time.Now()
		if err := fn(ctx); err != nil {
			a.m.insertErrors.WithLabelValues(table).Inc()
			if store.IsPermanent(err) {
				a.m.permanent.WithLabelValues(table).Inc() // the server answered: up stays as it is
			} else {
				a.setUp(false)
			}
			return err
		}
		a.m.insertDur.WithLabelValues(table).Observe(time.Since(start).Seconds())
		a.m.rows.WithLabelValues(table).Add(float64(rows))
		a.m.lastWrite.SetToCurrentTime()
		a.setUp(true)
		return nil
	})
}

// flush writes b and commits its offsets. It returns an error only when
// ctx ended before the writes succeeded; nothing is committed then.
func (a *Analyzer) flush(ctx context.Context, cl *kgo.Client, b *batch) error {
	st := a.o.Store
	if err := a.enrich(ctx, b); err != nil {
		return err
	}
	if !b.detected {
		b.detected = true
		if a.o.Detector != nil && len(b.events) > 0 {
			var fs []event.Finding
			var err error
			if sd, ok := a.o.Detector.(InputDetector); ok {
				fs, b.inputs, err = sd.DetectSplit(ctx, b.events)
			} else {
				fs, err = a.o.Detector.Detect(ctx, b.events)
			}
			if err != nil {
				a.m.hookErrors.WithLabelValues("detector").Inc()
				a.log.Error("detector failed; batch stored without its findings", "err", err)
			}
			b.findings = fs
			a.sourcePositions(b)
		}
	}
	// Findings to the respond role (it owns incidents and is the one writer
	// of findings), detection inputs to the detect role (it owns the wider
	// groups): produced while the events are inserted, both acknowledged
	// before the offsets are committed. A crash in between produces them
	// again: both roles drop replays.
	var prodErr error
	var prodWG sync.WaitGroup
	if !b.findingsDone && len(b.findings)+len(b.inputs) > 0 {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			// The later sequence steps no first step can use stay here
			// (steps.go); then everything is encoded and produced.
			if prodErr = a.gateInputs(ctx, b); prodErr != nil {
				return
			}
			recs, err := a.keyedRecords(b)
			if err != nil {
				prodErr = err
				return
			}
			prodErr = a.retry(ctx, "produce findings and detection inputs", func(ctx context.Context) error {
				return cl.ProduceSync(ctx, recs...).FirstErr()
			})
			if prodErr == nil {
				a.m.findingsOut.Add(float64(len(b.findings)))
				a.m.inputsOut.Add(float64(len(b.inputs)))
				b.findingsDone = true
			}
		}()
	} else {
		b.findingsDone = true
	}
	// The halves the call join holds (join.go), likewise acknowledged
	// before the commit.
	var callsErr error
	if !b.callsDone {
		prodWG.Add(1)
		go func() { defer prodWG.Done(); callsErr = a.produceCalls(ctx, cl, b) }()
	}
	// Events and tool definitions are independent writes: run them side by
	// side (two pooled connections) so the small upsert adds no round trip
	// to the batch; both must succeed before the commit.
	var evErr error
	var evWG sync.WaitGroup
	if !b.eventsDone && len(b.events) > 0 {
		a.observeBatch(b)
		evWG.Add(1)
		go func() {
			defer evWG.Done()
			evErr = a.insert(ctx, "events", len(b.events), func(ctx context.Context) error {
				if p := b.prep; p != nil { // first attempt: the prepared insert
					b.prep = nil
					return p.Send()
				}
				return st.InsertEvents(ctx, b.events)
			})
			if evErr == nil {
				a.inserted.Add(uint64(len(b.events)))
				b.eventsDone = true
			}
		}()
	} else {
		b.eventsDone = true
	}
	var defErr error
	if !b.defsDone && len(b.events) > 0 {
		var n int
		defErr = a.insert(ctx, "tool_definitions", 0, func(ctx context.Context) (err error) {
			n, err = st.UpsertToolDefinitions(ctx, b.events)
			return err
		})
		if defErr == nil {
			a.m.rows.WithLabelValues("tool_definitions").Add(float64(n))
			b.defsDone = true
		}
	} else {
		b.defsDone = true
	}
	evWG.Wait()
	prodWG.Wait()
	prodErr = errors.Join(prodErr, callsErr)
	if (isPermanent(evErr) || isPermanent(defErr)) && ctx.Err() == nil && prodErr == nil {
		// Retrying cannot store this batch: it goes to the dead-letter
		// topic whole, with the reason, and its offsets are committed, so
		// nothing is lost and the partition moves on (docs/analyzer.md).
		a.deadLetterBatch(b, errors.Join(evErr, defErr))
		evErr, defErr = nil, nil
		b.eventsDone, b.defsDone = true, true
	}
	if err := errors.Join(evErr, defErr, prodErr); err != nil {
		return err
	}
	if !b.deadDone && len(b.dead) > 0 {
		if err := a.retry(ctx, "produce to the dead-letter topic", func(ctx context.Context) error {
			return cl.ProduceSync(ctx, b.dead...).FirstErr()
		}); err != nil {
			return err
		}
	}
	b.deadDone = true
	if a.log.Enabled(ctx, slog.LevelDebug) {
		type pr struct{ lo, hi int64 }
		ranges := map[int32]pr{}
		for _, r := range b.records {
			x, ok := ranges[r.Partition]
			if !ok {
				x = pr{r.Offset, r.Offset}
			}
			x.lo, x.hi = min(x.lo, r.Offset), max(x.hi, r.Offset)
			ranges[r.Partition] = x
		}
		a.log.Debug("batch stored", "poll", b.pollDur, "decode", b.decodeDur, "age", time.Since(b.started), "records", len(b.records), "events", len(b.events), "offsets", fmt.Sprint(ranges))
	}
	if a.o.Enricher != nil {
		// What this batch taught about its agents is durable before its
		// offsets are: the next owner of a partition loads it.
		if err := a.retry(ctx, "store enrichment state", a.o.Enricher.Flush); err != nil {
			return err
		}
	}
	if a.o.BeforeCommit != nil {
		a.o.BeforeCommit()
	}
	// Commit even when shutdown has begun: the batch is stored.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := cl.CommitRecords(cctx, b.records...); err != nil {
		// The batch is stored; a failed commit only means a harmless replay.
		a.m.commitErrors.Inc()
		a.log.Warn("cannot commit offsets; the batch will be replayed", "err", err)
	}
	return nil
}

// enrich runs the enricher once over a complete batch (before its insert
// is prepared and before detection), retrying while its state cannot be
// loaded; an error means ctx ended.
func (a *Analyzer) enrich(ctx context.Context, b *batch) error {
	a.divert(b)
	if b.enriched || a.o.Enricher == nil || len(b.events) == 0 {
		b.enriched = true
		return nil
	}
	if err := a.retry(ctx, "enrich events", func(ctx context.Context) error { return a.o.Enricher.Enrich(ctx, b.events) }); err != nil {
		return err
	}
	b.enriched = true
	return nil
}

// keyedRecords encodes a batch's findings and detection inputs.
func (a *Analyzer) keyedRecords(b *batch) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(b.findings)+len(b.inputs))
	for i := range b.findings {
		f := &b.findings[i]
		v, err := findingsout.Marshal(b.findings[i : i+1])
		if err != nil {
			return nil, err
		}
		recs = append(recs, &kgo.Record{Topic: a.o.Kafka.FindingsTopic, Key: FindingKey(f.Tenant, f.RuleID, f.GroupKey), Value: v})
	}
	if len(b.inputs) > 0 {
		ins, err := inputRecords(a.o.Kafka.DetectTopic, a.detectParts, a.o.Detector.(InputDetector).Pack(), b.inputs)
		if err != nil {
			return nil, err
		}
		recs = append(recs, ins...)
	}
	return recs, nil
}

func (a *Analyzer) startAdmin(ctx context.Context, wg *sync.WaitGroup) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n")) //nolint:errcheck
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck
	})
	mux.Handle("/metrics", a.MetricsHandler())
	if a.o.Handler != nil {
		mux.Handle("/api/", a.o.Handler)
	}
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on admin address %s: %w", a.cfg.AdminAddr, err)
	}
	a.adminMu.Lock()
	a.adminLn = ln
	a.adminMu.Unlock()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener failed", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck
	}()
	a.log.Info("admin listener", "addr", ln.Addr().String())
	return nil
}

func (a *Analyzer) retentionLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Retention.Interval)
	defer t.Stop()
	for {
		a.ApplyRetention(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ApplyRetention drops every partition past its table's retention once.
func (a *Analyzer) ApplyRetention(ctx context.Context, now time.Time) {
	for table, days := range a.cfg.Retention.Days() {
		dropped, err := a.o.Store.DropPartitionsOlderThan(ctx, table, days, now)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("retention failed", "table", table, "err", err)
			}
			continue
		}
		if len(dropped) > 0 {
			a.m.retention.WithLabelValues(table).Add(float64(len(dropped)))
			a.log.Info("retention dropped partitions", "table", table, "partitions", dropped)
		}
	}
}
