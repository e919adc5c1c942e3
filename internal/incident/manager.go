package incident

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Store is what the Manager persists through; *CHStore implements it.
type Store interface {
	InsertIncidentVersions(ctx context.Context, incs []Incident) error
	InsertFindings(ctx context.Context, fs []event.Finding) error
	InsertActions(ctx context.Context, as []Action) error
	LoadActive(ctx context.Context, resolvedSince time.Time) ([]Incident, error)
	GetIncident(ctx context.Context, id string) (Incident, error)
	FindingIDs(ctx context.Context, incidentIDs []string) (map[string][]string, error)
}

// Listener is told about every incident change (notifiers, playbooks), in
// change order. For changes caused by findings it is called under the
// Manager's lock, before the version is stored (see HandleFindings), so it
// must be quick (enqueue durably, not deliver), must not call back into the
// Manager, and must drop a change it has already queued (same ids).
type Listener interface {
	IncidentChanged(ctx context.Context, c Change)
}

// maxSeenPerIncident bounds the finding ids remembered per incident.
const maxSeenPerIncident = 20000

// DefaultDedupWindow is used when a rule sets none.
const DefaultDedupWindow = time.Hour

// Config configures a Manager. Only Store is required.
type Config struct {
	Store Store
	// DedupWindow returns a rule's `dedup` window; nil or a result ≤ 0
	// means DefaultDedupWindow. The analyzer wires it from the rule pack.
	DedupWindow func(ruleID string) time.Duration
	// ReopenWithin: a finding up to this long after an incident was resolved
	// reopens it instead of opening a new one. Default 24h; negative disables.
	ReopenWithin time.Duration
	// InsertFindings makes HandleFindings also store the findings (with
	// incident_id set). Leave false when the analyzer inserts them itself
	// after HandleFindings returns.
	InsertFindings bool
	// Now is the clock (tests); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer receives the incident metrics; nil = not registered.
	Registerer prometheus.Registerer
}

type entry struct {
	inc  Incident
	seen map[string]struct{} // finding ids already counted
}

func (e *entry) copy() *entry {
	c := &entry{inc: e.inc.clone(), seen: make(map[string]struct{}, len(e.seen))}
	for k := range e.seen {
		c.seen[k] = struct{}{}
	}
	return c
}

type groupKey struct{ tenant, rule, group string }

// Manager turns findings into incidents and owns the incident lifecycle. It
// implements analyzer.FindingSink. Safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	byID        map[string]*entry
	byKey       map[groupKey]string // latest incident of the group
	lastVersion uint64

	lmu       sync.RWMutex
	listeners []Listener

	changes *prometheus.CounterVec
}

// NewManager loads the active incidents (and recently resolved ones, for
// reopening) from the store and returns a ready Manager.
func NewManager(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("cannot create incident manager: no store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReopenWithin == 0 {
		cfg.ReopenWithin = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, byID: map[string]*entry{}, byKey: map[groupKey]string{},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_incident_changes_total",
			Help: "Incident versions written, by change (opened, updated, escalated, reopened, acknowledged, resolved, ...)."}, []string{"change"})}
	if cfg.Registerer != nil {
		active := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcpwatch_incidents", Help: "Incidents held in memory, by status."}, []string{"status"})
		_ = cfg.Registerer.Register(m.changes)
		_ = cfg.Registerer.Register(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
			counts := map[Status]int{StatusOpen: 0, StatusAcknowledged: 0, StatusSuppressed: 0, StatusResolved: 0}
			m.mu.Lock()
			for _, e := range m.byID {
				counts[e.inc.Status]++
			}
			m.mu.Unlock()
			for st, n := range counts {
				active.WithLabelValues(string(st)).Set(float64(n))
			}
			active.Collect(ch)
		}))
	}
	if err := m.Reload(ctx, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// Reload replaces what the Manager holds with the active (and recently
// resolved) incidents of the store for which owns(tenant, rule, group key)
// is true; nil owns keeps all. The respond role calls it whenever its
// findings partitions change, so it holds exactly the incidents of the
// partitions it owns, as their last owner stored them.
func (m *Manager) Reload(ctx context.Context, owns func(tenant, rule, group string) bool) error {
	since := m.cfg.Now().Add(-max(m.cfg.ReopenWithin, 0))
	all, err := m.cfg.Store.LoadActive(ctx, since)
	if err != nil {
		return fmt.Errorf("cannot load incidents: %w", err)
	}
	incs := all[:0:0]
	ids := make([]string, 0, len(all))
	for _, inc := range all {
		if owns == nil || owns(inc.Tenant, inc.RuleID, inc.GroupKey) {
			incs = append(incs, inc)
			ids = append(ids, inc.IncidentID)
		}
	}
	seen, err := m.cfg.Store.FindingIDs(ctx, ids)
	if err != nil {
		return fmt.Errorf("cannot load incident findings: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID, m.byKey = map[string]*entry{}, map[groupKey]string{}
	for _, inc := range incs {
		e := &entry{inc: inc, seen: map[string]struct{}{}}
		for _, f := range seen[inc.IncidentID] {
			e.seen[f] = struct{}{}
		}
		// The respond role stores a batch's incident versions, then its
		// findings, then commits. An owner that died (or lost the
		// partition) in between left a version counting findings that
		// are not stored; they were not committed and are replayed to the
		// next owner, so count only the stored ones. An incident none of
		// whose findings is stored is rebuilt by the replay (the same
		// deterministic id, version and "opened" change).
		if n := uint32(len(e.seen)); inc.FindingCount > n {
			m.log.Info("incident counts findings that are not stored: counting them again on replay",
				"incident_id", inc.IncidentID, "finding_count", inc.FindingCount, "stored", n)
			if n == 0 {
				continue
			}
			e.inc.FindingCount = n
		}
		m.byID[inc.IncidentID] = e
		k := groupKey{inc.Tenant, inc.RuleID, inc.GroupKey}
		if cur, ok := m.byKey[k]; !ok || m.byID[cur].inc.LastSeen.Before(inc.LastSeen) {
			m.byKey[k] = inc.IncidentID
		}
		m.lastVersion = max(m.lastVersion, inc.Version)
	}
	m.log.Info("incidents loaded", "active", len(incs), "of", len(all))
	return nil
}

// Subscribe adds a listener for incident changes.
func (m *Manager) Subscribe(l Listener) {
	m.lmu.Lock()
	m.listeners = append(m.listeners, l)
	m.lmu.Unlock()
}

func (m *Manager) emit(ctx context.Context, changes []Change) {
	m.lmu.RLock()
	ls := slices.Clone(m.listeners)
	m.lmu.RUnlock()
	for _, c := range changes {
		m.changes.WithLabelValues(string(c.Kind)).Inc()
		for _, l := range ls {
			l.IncidentChanged(ctx, c)
		}
	}
}

// nextVersion returns a version above every earlier one: unix nanos, bumped
// when the clock does not advance. Caller holds mu.
func (m *Manager) nextVersion() uint64 {
	v := uint64(m.cfg.Now().UnixNano())
	if v <= m.lastVersion {
		v = m.lastVersion + 1
	}
	m.lastVersion = v
	return v
}

func (m *Manager) dedup(rule string) time.Duration {
	if m.cfg.DedupWindow != nil {
		if d := m.cfg.DedupWindow(rule); d > 0 {
			return d
		}
	}
	return DefaultDedupWindow
}

// IncidentID is deterministic: the same (tenant, rule, group) and the same
// dedup-window bucket of the first finding give the same id, so a replay
// after a crash does not open a duplicate.
func IncidentID(tenant, rule, group string, first time.Time, window time.Duration) string {
	bucket := first.UnixNano() / int64(window)
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%d", tenant, rule, group, int64(window), bucket)))
	return "inc-" + hex.EncodeToString(h[:10])
}

var changeRank = map[ChangeKind]int{ChangeUpdated: 1, ChangeUnsuppressed: 2, ChangeEscalated: 3, ChangeReopened: 4, ChangeOpened: 5}

// HandleFindings groups findings into incidents, stores one new version per
// changed incident, sets each finding's IncidentID (in place) and tells the
// listeners. A finding already counted by its incident (a replay) only gets
// its IncidentID set.
func (m *Manager) HandleFindings(ctx context.Context, findings []event.Finding) error {
	if len(findings) == 0 {
		return nil
	}
	m.mu.Lock()
	now := m.cfg.Now().UTC()
	staged := map[string]*entry{}
	stagedKeys := map[groupKey]string{}
	kinds := map[string]ChangeKind{}
	prev := map[string]*Incident{}
	joined := map[string][]event.Finding{}
	var order []string
	get := func(id string) *entry {
		if e, ok := staged[id]; ok {
			return e
		}
		e, ok := m.byID[id]
		if !ok {
			return nil
		}
		c := e.copy()
		staged[id] = c
		p := e.inc.clone()
		prev[id] = &p
		return c
	}
	mark := func(id string, k ChangeKind) {
		if _, ok := kinds[id]; !ok {
			order = append(order, id)
		}
		if changeRank[k] > changeRank[kinds[id]] {
			kinds[id] = k
		}
	}
	for i := range findings {
		f := &findings[i]
		ft := f.Time.UTC()
		if ft.IsZero() {
			ft = now
		}
		k := groupKey{f.Tenant, f.RuleID, f.GroupKey}
		win := m.dedup(f.RuleID)
		curID, ok := stagedKeys[k]
		if !ok {
			curID = m.byKey[k]
		}
		var e *entry
		kind := ChangeUpdated
		if curID != "" {
			e = get(curID)
		}
		if e != nil {
			if _, dup := e.seen[f.FindingID]; dup && f.FindingID != "" {
				f.IncidentID = e.inc.IncidentID
				continue
			}
			switch {
			case e.inc.Active() && ft.Sub(e.inc.LastSeen) <= win:
				if e.inc.Status == StatusSuppressed && !now.Before(e.inc.SuppressedUntil) {
					e.inc.Status = StatusOpen
					e.inc.SuppressedUntil = time.Time{}
					kind = ChangeUnsuppressed
				}
			case !e.inc.Active() && m.cfg.ReopenWithin > 0 && ft.Sub(e.inc.UpdatedAt) <= m.cfg.ReopenWithin:
				e.inc.Status = StatusOpen
				kind = ChangeReopened
			default:
				e = nil
			}
		}
		if e == nil {
			id := IncidentID(f.Tenant, f.RuleID, f.GroupKey, ft, win)
			if e = get(id); e == nil {
				title := f.RuleTitle
				if title == "" {
					title = f.RuleID
				}
				e = &entry{seen: map[string]struct{}{}, inc: Incident{
					IncidentID: id, Tenant: f.Tenant, RuleID: f.RuleID, RuleTitle: f.RuleTitle, GroupKey: f.GroupKey,
					Title: title, Status: StatusOpen, Severity: f.Severity, FirstSeen: ft, LastSeen: ft,
					AgentID: f.AgentID, UserID: f.UserID, SessionKey: f.SessionKey, ServerName: f.ServerName,
					ToolName: f.ToolName, UpdatedBy: "mcpwatch", CreatedAt: now,
				}}
				staged[id] = e
				kind = ChangeOpened
			} else if _, dup := e.seen[f.FindingID]; dup && f.FindingID != "" {
				f.IncidentID = id
				continue
			} else if !e.inc.Active() {
				// Same deterministic id as a resolved incident (a dedup
				// window longer than the reopen period): reopen it.
				e.inc.Status = StatusOpen
				kind = ChangeReopened
			}
			stagedKeys[k] = id
		}
		inc := &e.inc
		if f.Severity.Rank() > inc.Severity.Rank() {
			if kind == ChangeUpdated {
				kind = ChangeEscalated
			}
			inc.Severity = f.Severity
		}
		for _, t := range f.Tags {
			if !slices.Contains(inc.Tags, t) {
				inc.Tags = append(inc.Tags, t)
			}
		}
		if ft.After(inc.LastSeen) {
			inc.LastSeen = ft
		}
		if ft.Before(inc.FirstSeen) {
			inc.FirstSeen = ft
		}
		if f.Summary != "" {
			inc.Summary = f.Summary
		}
		inc.FindingCount++
		if f.FindingID != "" {
			if len(e.seen) >= maxSeenPerIncident {
				// Bound memory for incidents with endless findings: only a
				// replay of a finding older than the last maxSeen can then be
				// counted twice.
				e.seen = make(map[string]struct{}, maxSeenPerIncident/4)
			}
			e.seen[f.FindingID] = struct{}{}
		}
		f.IncidentID = inc.IncidentID
		joined[inc.IncidentID] = append(joined[inc.IncidentID], *f)
		mark(inc.IncidentID, kind)
	}
	if len(order) == 0 {
		m.mu.Unlock()
		return nil
	}
	versions := make([]Incident, 0, len(order))
	for _, id := range order {
		inc := &staged[id].inc
		// Deterministic: the same findings on the same stored incident give
		// the same version, so a replay (crash, rebalance) recomputes the
		// change a listener may already have queued, under the same id.
		v := uint64(inc.LastSeen.UnixNano())
		if p := prev[id]; p != nil && v <= p.Version {
			v = p.Version + 1
		}
		inc.Version = v
		m.lastVersion = max(m.lastVersion, v)
		inc.UpdatedAt = now
		if kinds[id] != ChangeUpdated && kinds[id] != ChangeEscalated {
			inc.UpdatedBy = "mcpwatch"
		}
		versions = append(versions, inc.clone())
	}
	changes := make([]Change, 0, len(order))
	for i, id := range order {
		changes = append(changes, Change{Kind: kinds[id], Incident: versions[i], Previous: prev[id], Findings: joined[id]})
	}
	// Listeners queue durably (the notification outbox, playbook runs)
	// before the versions are stored: a crash in between replays these
	// findings onto the old version and queues the same changes again under
	// the same ids (dropped as duplicates), whereas storing first would let
	// the replay find the findings counted and never queue them.
	m.emit(ctx, changes)
	if err := m.cfg.Store.InsertIncidentVersions(ctx, versions); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("cannot store incident versions: %w", err)
	}
	if m.cfg.InsertFindings {
		if err := m.cfg.Store.InsertFindings(ctx, findings); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("cannot store findings: %w", err)
		}
	}
	for id, e := range staged {
		if _, changed := kinds[id]; changed {
			m.byID[id] = e
		}
	}
	for k, id := range stagedKeys {
		m.byKey[k] = id
	}
	m.mu.Unlock()
	return nil
}

// Get returns the current version of an incident (memory, else the store).
func (m *Manager) Get(ctx context.Context, id string) (Incident, error) {
	m.mu.Lock()
	e, ok := m.byID[id]
	var inc Incident
	if ok {
		inc = e.inc.clone()
	}
	m.mu.Unlock()
	if ok {
		return inc, nil
	}
	return m.cfg.Store.GetIncident(ctx, id)
}

// Update is a human (or playbook) change to an incident.
type Update struct {
	Actor    string    // who; recorded in updated_by and actions.actor
	Note     string    // free text; kept in the version's note
	Assignee string    // for Assign
	Until    time.Time // for Suppress
}

// Acknowledge moves open (or suppressed) → acknowledged.
func (m *Manager) Acknowledge(ctx context.Context, id string, u Update) (Incident, error) {
	return m.Apply(ctx, id, ChangeAcknowledged, u)
}

// Resolve moves any unresolved incident → resolved.
func (m *Manager) Resolve(ctx context.Context, id string, u Update) (Incident, error) {
	return m.Apply(ctx, id, ChangeResolved, u)
}

// Suppress moves open/acknowledged/suppressed → suppressed until u.Until
// (required, in the future). Findings keep joining; notifications stop.
func (m *Manager) Suppress(ctx context.Context, id string, u Update) (Incident, error) {
	return m.Apply(ctx, id, ChangeSuppressed, u)
}

// Assign sets the assignee of an unresolved incident.
func (m *Manager) Assign(ctx context.Context, id string, u Update) (Incident, error) {
	return m.Apply(ctx, id, ChangeAssigned, u)
}

// Annotate adds a note (a new version with the note; status unchanged).
func (m *Manager) Annotate(ctx context.Context, id string, u Update) (Incident, error) {
	return m.Apply(ctx, id, ChangeAnnotated, u)
}

// Apply makes a human (or playbook) change of kind to an incident.
func (m *Manager) Apply(ctx context.Context, id string, kind ChangeKind, u Update) (Incident, error) {
	fn, err := transition(kind, u, m.cfg.Now())
	if err != nil {
		return Incident{}, err
	}
	return m.change(ctx, id, u, kind, fn)
}

// Check reports whether a change of kind may be made to inc now, without
// making it (the API checks a change it forwards to the incident's owner).
func Check(inc Incident, kind ChangeKind, u Update, now time.Time) error {
	fn, err := transition(kind, u, now)
	if err != nil {
		return err
	}
	c := inc.clone()
	return fn(&c)
}

// transition is the status change of a human change kind.
func transition(kind ChangeKind, u Update, now time.Time) (func(*Incident) error, error) {
	switch kind {
	case ChangeAcknowledged:
		return func(i *Incident) error {
			if i.Status != StatusOpen && i.Status != StatusSuppressed {
				return fmt.Errorf("%w: cannot acknowledge a %s incident", ErrIllegalTransition, i.Status)
			}
			i.Status, i.SuppressedUntil = StatusAcknowledged, time.Time{}
			return nil
		}, nil
	case ChangeResolved:
		return func(i *Incident) error {
			if i.Status == StatusResolved {
				return fmt.Errorf("%w: incident is already resolved", ErrIllegalTransition)
			}
			i.Status, i.SuppressedUntil = StatusResolved, time.Time{}
			return nil
		}, nil
	case ChangeSuppressed:
		return func(i *Incident) error {
			if i.Status == StatusResolved {
				return fmt.Errorf("%w: cannot suppress a resolved incident", ErrIllegalTransition)
			}
			if !u.Until.After(now) {
				return fmt.Errorf("%w: suppression must end in the future", ErrInvalid)
			}
			i.Status, i.SuppressedUntil = StatusSuppressed, u.Until.UTC().Truncate(time.Second)
			return nil
		}, nil
	case ChangeAssigned:
		return func(i *Incident) error {
			if i.Status == StatusResolved {
				return fmt.Errorf("%w: cannot assign a resolved incident", ErrIllegalTransition)
			}
			i.Assignee = u.Assignee
			return nil
		}, nil
	case ChangeAnnotated:
		return func(*Incident) error { return nil }, nil
	}
	return nil, fmt.Errorf("%w: %q is not a change a person can make", ErrInvalid, kind)
}

// ErrInvalid marks a request that is wrong in itself (400).
var ErrInvalid = fmt.Errorf("invalid request")

func (m *Manager) change(ctx context.Context, id string, u Update, kind ChangeKind, fn func(*Incident) error) (Incident, error) {
	m.mu.Lock()
	e, ok := m.byID[id]
	if !ok {
		m.mu.Unlock()
		inc, err := m.cfg.Store.GetIncident(ctx, id)
		if err != nil {
			return Incident{}, err
		}
		m.mu.Lock()
		if e, ok = m.byID[id]; !ok {
			e = &entry{inc: inc, seen: map[string]struct{}{}}
		}
	}
	prev := e.inc.clone()
	next := e.inc.clone()
	if err := fn(&next); err != nil {
		m.mu.Unlock()
		return Incident{}, err
	}
	now := m.cfg.Now().UTC()
	next.Version = m.nextVersion()
	next.UpdatedAt = now
	next.UpdatedBy = u.Actor
	next.Note = u.Note
	if err := m.cfg.Store.InsertIncidentVersions(ctx, []Incident{next}); err != nil {
		m.mu.Unlock()
		return Incident{}, fmt.Errorf("cannot store incident version: %w", err)
	}
	e.inc = next
	m.byID[id] = e
	k := groupKey{next.Tenant, next.RuleID, next.GroupKey}
	if _, ok := m.byKey[k]; !ok {
		m.byKey[k] = id
	}
	m.mu.Unlock()
	detail := fmt.Sprintf(`{"from":%q,"to":%q,"assignee":%q,"note":%q}`, prev.Status, next.Status, next.Assignee, u.Note)
	if err := m.cfg.Store.InsertActions(ctx, []Action{{
		ActionID: NewID(), Time: now, Tenant: next.Tenant, IncidentID: id, Kind: ActionIncidentChange,
		Target: string(kind), Outcome: "ok", Actor: u.Actor, Detail: detail,
	}}); err != nil {
		m.log.Warn("cannot record incident change", "incident_id", id, "err", err)
	}
	m.emit(ctx, []Change{{Kind: kind, Incident: next.clone(), Previous: &prev}})
	return next, nil
}

// Tick ends expired suppressions (status → open, a new version) and drops
// resolved incidents older than the reopen period from memory. Run calls it
// periodically.
func (m *Manager) Tick(ctx context.Context) error {
	now := m.cfg.Now().UTC()
	m.mu.Lock()
	var expired []string
	for id, e := range m.byID {
		if e.inc.Status == StatusSuppressed && !now.Before(e.inc.SuppressedUntil) {
			expired = append(expired, id)
		}
		if e.inc.Status == StatusResolved && now.Sub(e.inc.UpdatedAt) > max(m.cfg.ReopenWithin, 0) {
			delete(m.byID, id)
			k := groupKey{e.inc.Tenant, e.inc.RuleID, e.inc.GroupKey}
			if m.byKey[k] == id {
				delete(m.byKey, k)
			}
		}
	}
	m.mu.Unlock()
	slices.Sort(expired)
	for _, id := range expired {
		_, err := m.change(ctx, id, Update{Actor: "mcpwatch", Note: "suppression expired"}, ChangeUnsuppressed, func(i *Incident) error {
			if i.Status != StatusSuppressed {
				return fmt.Errorf("%w: no longer suppressed", ErrIllegalTransition)
			}
			i.Status, i.SuppressedUntil = StatusOpen, time.Time{}
			return nil
		})
		if err != nil && !errorsIs(err, ErrIllegalTransition) {
			return err
		}
	}
	return nil
}

// Run calls Tick every interval (default 30s) until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Tick(ctx); err != nil {
				m.log.Warn("incident tick failed", "err", err)
			}
		}
	}
}

// RecordActions stores audit rows (used by notify and playbook through the
// Manager so they share its store).
func (m *Manager) RecordActions(ctx context.Context, as []Action) error {
	return m.cfg.Store.InsertActions(ctx, as)
}

// NewID returns a unique id that sorts by creation time: 16 hex digits of
// unix nanoseconds, then 16 random hex digits (actions.ts has only second
// precision, so ORDER BY ts, action_id keeps the order of events).
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%016x", time.Now().UnixNano()) + hex.EncodeToString(b)
}
