package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
)

// Recorder stores audit rows; *incident.Manager and *incident.CHStore
// (InsertActions) fit through RecorderFunc. nil records nothing.
type Recorder interface {
	RecordActions(ctx context.Context, as []incident.Action) error
}

// RecorderFunc adapts a function (e.g. store.InsertActions) to Recorder.
type RecorderFunc func(ctx context.Context, as []incident.Action) error

// RecordActions calls f.
func (f RecorderFunc) RecordActions(ctx context.Context, as []incident.Action) error {
	return f(ctx, as)
}

// Options are the non-YAML knobs of a Notifier (all optional).
type Options struct {
	Recorder   Recorder
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// OnDelivered is called after a message was accepted by its receiver.
	OnDelivered func(m *Message)
	// Registerer receives the notification metrics; nil = not registered.
	Registerer prometheus.Registerer
}

type metrics struct {
	attempts *prometheus.CounterVec // receiver, outcome
	latency  *prometheus.HistogramVec
}

// Notifier routes incident changes to receivers through the outbox. It
// implements incident.Listener. Call Run to deliver.
type Notifier struct {
	cfg       Config
	opt       Options
	log       *slog.Logger
	box       *outbox
	receivers map[string]ReceiverConfig
	limiters  []*rate.Limiter

	mu       sync.Mutex
	pending  map[string]*Message // by id
	inflight map[string]bool     // by order key (receiver + incident)
	lastSent map[string]time.Time
	wake     chan struct{}
	lastSeq  int64
	m        metrics
}

// New validates cfg, opens the outbox under cfg.DataDir and loads what a
// previous process left pending.
func New(cfg Config, opt Options) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot configure notifications: %w", err)
	}
	cfg = cfg.withDefaults()
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	box, err := openOutbox(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &Notifier{cfg: cfg, opt: opt, log: opt.Logger, box: box, receivers: map[string]ReceiverConfig{},
		pending: map[string]*Message{}, inflight: map[string]bool{}, lastSent: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	for _, r := range cfg.Receivers {
		n.receivers[r.Name] = r
	}
	n.m = metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_notify_attempts_total",
			Help: "Notification outcomes by receiver: delivered, retry, failed, rate_limited, repeat_interval, enqueue_failed."}, []string{"receiver", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcpwatch_notify_delivery_seconds",
			Help: "Time from enqueue to the receiver's 2xx.", Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800}}, []string{"receiver"}),
	}
	if opt.Registerer != nil {
		pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcpwatch_notify_outbox_pending",
			Help: "Messages in the outbox waiting for delivery."}, func() float64 { return float64(n.Pending()) })
		for _, c := range []prometheus.Collector{n.m.attempts, n.m.latency, pending} {
			_ = opt.Registerer.Register(c)
		}
	}
	for _, rt := range cfg.Routes {
		var l *rate.Limiter
		if rt.RateLimit > 0 {
			l = rate.NewLimiter(rate.Limit(rt.RateLimit/60), max(1, int(rt.RateLimit)))
		}
		n.limiters = append(n.limiters, l)
	}
	msgs, err := box.load()
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		n.pending[m.ID] = m
		n.lastSeq = max(n.lastSeq, m.Seq)
	}
	if len(msgs) > 0 {
		n.log.Info("outbox loaded", "pending", len(msgs))
	}
	return n, nil
}

func (n *Notifier) now() time.Time { return n.opt.Now() }

// MessageID is the idempotency key of a delivery.
func MessageID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// IncidentChanged routes a change (incident.Listener).
func (n *Notifier) IncidentChanged(ctx context.Context, c incident.Change) {
	inc := c.Incident
	action, onlyType := "", ""
	switch c.Kind {
	case incident.ChangeResolved:
		action = "resolve"
	case incident.ChangeAcknowledged:
		action = "acknowledge" // PagerDuty receivers only: acking in mcpwatch acks the page
	case incident.ChangeSuppressed:
		// Alertmanager receivers only: end the alert so Alertmanager stops
		// repeating it; it fires again when the suppression ends.
		action, onlyType = "resolve", TypeAlertmanager
	case incident.ChangeOpened, incident.ChangeReopened, incident.ChangeEscalated, incident.ChangeUnsuppressed, incident.ChangeUpdated:
		if inc.Status == incident.StatusSuppressed {
			return
		}
		action = "trigger"
	default:
		return
	}
	now := n.now()
	queued := map[string]bool{}
	for i, rt := range n.cfg.Routes {
		if !rt.matches(inc.Tenant, inc.RuleID, inc.Severity, inc.Tags) {
			continue
		}
		routeKey := fmt.Sprintf("%d|%s", i, inc.IncidentID)
		skip := ""
		n.mu.Lock()
		last, sent := n.lastSent[routeKey]
		n.mu.Unlock()
		if c.Kind == incident.ChangeUpdated && sent && now.Sub(last) < rt.RepeatInterval {
			skip = "repeat_interval"
		} else if action != "resolve" && action != "acknowledge" && n.limiters[i] != nil && !n.limiters[i].AllowN(now, 1) {
			skip = "rate_limited"
		}
		if skip == "" && c.Kind == incident.ChangeUpdated && !sent && inc.FindingCount > 1 {
			// Unknown history (e.g. after a restart): count the repeat from now.
			n.mu.Lock()
			n.lastSent[routeKey] = now
			n.mu.Unlock()
			skip = "repeat_interval"
		}
		for _, rn := range rt.Receivers {
			if action == "acknowledge" {
				onlyType = TypePagerDuty
			}
			if queued[rn] || (onlyType != "" && n.receivers[rn].Type != onlyType) {
				continue
			}
			queued[rn] = true
			id := MessageID(rn, inc.IncidentID, changeKey(c), action)
			if skip != "" {
				n.record(ctx, &Message{ID: id, Receiver: rn, Route: rt.Name, Incident: inc}, 0, skip, "")
				continue
			}
			m := &Message{ID: id, Receiver: rn, Route: routeKeyName(rt, i), Action: action, Change: c.Kind, Incident: inc,
				Findings: capFindings(c.Findings), Source: "route", Created: now.UTC()}
			if err := n.enqueue(m); err != nil {
				n.log.Error("cannot enqueue notification", "receiver", rn, "incident_id", inc.IncidentID, "err", err)
				n.record(ctx, m, 0, "enqueue_failed", err.Error())
			}
		}
		if skip == "" && action == "trigger" {
			n.mu.Lock()
			n.lastSent[routeKey] = now
			n.mu.Unlock()
		}
		if !rt.Continue {
			break
		}
	}
}

// changeKey names a change the same way however often it is computed: a
// replay after a crash or rebalance recomputes changes caused by findings,
// and their message ids must match those already queued. An incident opens
// once, escalates once per severity, and is reopened or unsuppressed once
// per stored version it leaves; other changes are named by their version.
func changeKey(c incident.Change) string {
	switch {
	case c.Kind == incident.ChangeOpened:
		return "opened"
	case c.Kind == incident.ChangeEscalated:
		return "escalated:" + string(c.Incident.Severity)
	case (c.Kind == incident.ChangeReopened || c.Kind == incident.ChangeUnsuppressed) && c.Previous != nil:
		return string(c.Kind) + ":" + fmt.Sprint(c.Previous.Version)
	}
	return fmt.Sprint(c.Incident.Version)
}

func routeKeyName(rt Route, i int) string {
	if rt.Name != "" {
		return rt.Name
	}
	return fmt.Sprintf("route-%d", i)
}

func capFindings(fs []event.Finding) []event.Finding {
	if len(fs) > 20 {
		return fs[len(fs)-20:]
	}
	return fs
}

// Send queues a message to one receiver outside the routes (a playbook's
// notify step). key is the idempotency key (stable across restarts).
func (n *Notifier) Send(ctx context.Context, receiver string, inc incident.Incident, findings []event.Finding, note, source, key string) error {
	if _, ok := n.receivers[receiver]; !ok {
		return fmt.Errorf("cannot send: unknown receiver %q", receiver)
	}
	action := "trigger"
	if inc.Status == incident.StatusResolved {
		action = "resolve"
	}
	m := &Message{ID: MessageID(receiver, key), Receiver: receiver, Action: action, Change: incident.ChangeKind("playbook"),
		Incident: inc, Findings: capFindings(findings), Note: note, Source: source, Created: n.now().UTC()}
	return n.enqueue(m)
}

// enqueue stores m durably, then schedules it.
func (n *Notifier) enqueue(m *Message) error {
	n.mu.Lock()
	if _, ok := n.pending[m.ID]; ok {
		n.mu.Unlock()
		return nil
	}
	seq := n.now().UnixNano()
	if seq <= n.lastSeq {
		seq = n.lastSeq + 1
	}
	n.lastSeq = seq
	m.Seq = seq
	n.mu.Unlock()
	added, err := n.box.add(m)
	if err != nil || !added {
		return err
	}
	n.mu.Lock()
	n.pending[m.ID] = m
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return nil
}

// Pending returns how many messages wait for delivery.
func (n *Notifier) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pending)
}

func orderKey(m *Message) string { return m.Receiver + "\x00" + m.Incident.IncidentID }

// due returns the messages to start now (the oldest pending per order key,
// when not in flight and its time has come) and when to look again.
func (n *Notifier) due(now time.Time) ([]*Message, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	oldest := map[string]*Message{}
	for _, m := range n.pending {
		k := orderKey(m)
		if o, ok := oldest[k]; !ok || m.Seq < o.Seq {
			oldest[k] = m
		}
	}
	next := time.Minute
	var out []*Message
	for k, m := range oldest {
		if n.inflight[k] {
			continue
		}
		if wait := m.NextAttempt.Sub(now); wait > 0 {
			next = min(next, wait)
			continue
		}
		n.inflight[k] = true
		out = append(out, m)
	}
	return out, next
}

// Run delivers until ctx ends, then waits for attempts in flight.
func (n *Notifier) Run(ctx context.Context) error {
	sem := make(chan struct{}, n.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C:
			n.box.pruneDone(7*24*time.Hour, n.now())
			n.pruneLastSent()
			continue
		case <-n.wake:
		case <-timer.C:
		}
		msgs, next := n.due(n.now())
		for _, m := range msgs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				n.mu.Lock()
				delete(n.inflight, orderKey(m))
				n.mu.Unlock()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				n.deliver(ctx, m)
				n.mu.Lock()
				delete(n.inflight, orderKey(m))
				n.mu.Unlock()
				select {
				case n.wake <- struct{}{}:
				default:
				}
			}()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

type deliveryError struct {
	permanent bool
	msg       string
}

func (e *deliveryError) Error() string { return e.msg }

func (n *Notifier) attempt(ctx context.Context, m *Message) error {
	r, ok := n.receivers[m.Receiver]
	if !ok {
		return &deliveryError{permanent: true, msg: "receiver no longer configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := n.buildRequest(ctx, r, m)
	if err != nil {
		return &deliveryError{msg: err.Error()} // e.g. a secret file not mounted yet: retry
	}
	resp, err := n.opt.HTTPClient.Do(req)
	if err != nil {
		return &deliveryError{msg: fmt.Sprintf("cannot post to %s: %v", r.Name, errors.Unwrap(err))}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	perm := resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429
	return &deliveryError{permanent: perm, msg: fmt.Sprintf("status %d: %s", resp.StatusCode, body)}
}

func (n *Notifier) deliver(ctx context.Context, m *Message) {
	m.Attempts++
	err := n.attempt(ctx, m)
	if ctx.Err() != nil && err != nil {
		return // shutting down: the message stays pending for the next start
	}
	if err == nil {
		n.record(ctx, m, m.Attempts, "delivered", "")
		if derr := n.box.done(m.ID); derr != nil {
			n.log.Error("cannot mark notification delivered", "id", m.ID, "err", derr)
		}
		n.mu.Lock()
		delete(n.pending, m.ID)
		n.mu.Unlock()
		if n.opt.OnDelivered != nil {
			n.opt.OnDelivered(m)
		}
		return
	}
	var de *deliveryError
	errors.As(err, &de)
	if de.permanent || m.Attempts >= n.cfg.MaxAttempts {
		n.record(ctx, m, m.Attempts, "failed", err.Error())
		n.log.Warn("notification failed for good", "receiver", m.Receiver, "incident_id", m.Incident.IncidentID, "attempts", m.Attempts, "err", err)
		if ferr := n.box.fail(m); ferr != nil {
			n.log.Error("cannot move failed notification", "id", m.ID, "err", ferr)
		}
		n.mu.Lock()
		delete(n.pending, m.ID)
		n.mu.Unlock()
		return
	}
	n.record(ctx, m, m.Attempts, "retry", err.Error())
	m.NextAttempt = n.now().Add(n.backoff(m.Attempts))
	if werr := n.box.write("pending", m); werr != nil {
		n.log.Error("cannot persist retry state", "id", m.ID, "err", werr)
	}
}

// backoff is exponential with full jitter in [d/2, d].
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.InitialBackoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (n *Notifier) record(ctx context.Context, m *Message, attempt int, outcome, detail string) {
	n.m.attempts.WithLabelValues(m.Receiver, outcome).Inc()
	if outcome == "delivered" && !m.Created.IsZero() {
		n.m.latency.WithLabelValues(m.Receiver).Observe(n.now().Sub(m.Created).Seconds())
	}
	if n.opt.Recorder == nil {
		return
	}
	a := incident.Action{ActionID: incident.NewID(), Time: n.now().UTC(), Tenant: m.Incident.Tenant,
		IncidentID: m.Incident.IncidentID, Kind: incident.ActionNotification, Target: m.Receiver, Attempt: uint32(attempt),
		Outcome: outcome, Actor: "mcpwatch", Detail: truncate(fmt.Sprintf("%s %s via %s: %s", m.Action, m.Change, firstNonEmpty(m.Route, m.Source), detail), 2000),
		IdempotencyKey: m.ID}
	if err := n.opt.Recorder.RecordActions(context.WithoutCancel(ctx), []incident.Action{a}); err != nil {
		n.log.Warn("cannot record notification attempt", "err", err)
	}
}

// pruneLastSent forgets repeat-interval state older than the longest
// repeat interval (the map would otherwise grow with every incident).
func (n *Notifier) pruneLastSent() {
	var longest time.Duration
	for _, rt := range n.cfg.Routes {
		longest = max(longest, rt.RepeatInterval)
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, t := range n.lastSent {
		if now.Sub(t) > longest {
			delete(n.lastSent, k)
		}
	}
}
