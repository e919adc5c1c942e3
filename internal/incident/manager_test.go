package incident_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type recorder struct {
	mu      sync.Mutex
	changes []incident.Change
}

func (r *recorder) IncidentChanged(_ context.Context, c incident.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) kinds() []incident.ChangeKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []incident.ChangeKind
	for _, c := range r.changes {
		ks = append(ks, c.Kind)
	}
	return ks
}

var base = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func finding(id string, at time.Time, sev event.Severity) event.Finding {
	return event.Finding{
		FindingID: id, Tenant: "acme", Time: at, RuleID: "mcp-exfil", RuleTitle: "Exfiltration",
		Severity: sev, Tags: []string{"owasp-mcp:MCP01"}, GroupKey: "acme|sess-1", Summary: "agent-1 exfiltrated " + id,
		AgentID: "agent-1", SessionKey: "sess-1", ServerName: "fs", ToolName: "read_file", EventIDs: []string{"e-" + id},
	}
}

type env struct {
	store *incident.CHStore
	clk   *clock
	rec   *recorder
	m     *incident.Manager
}

func newEnv(t *testing.T) *env {
	s, _ := incidenttest.Store(t)
	e := &env{store: s, clk: &clock{t: base}}
	e.restart(t)
	return e
}

func (e *env) restart(t *testing.T) {
	t.Helper()
	m, err := incident.NewManager(context.Background(), incident.Config{
		Store: e.store, Now: e.clk.Now, InsertFindings: true, ReopenWithin: 6 * time.Hour,
		DedupWindow: func(rule string) time.Duration {
			if rule == "short-dedup" {
				return 10 * time.Minute
			}
			if rule == "long-dedup" {
				return 48 * time.Hour
			}
			return 0
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rec = &recorder{}
	m.Subscribe(e.rec)
	e.m = m
}

func (e *env) handle(t *testing.T, fs ...event.Finding) []event.Finding {
	t.Helper()
	if err := e.m.HandleFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

func (e *env) get(t *testing.T, id string) incident.Incident {
	t.Helper()
	inc, err := e.store.GetIncident(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

func TestFindingsJoinOpenIncident(t *testing.T) {
	e := newEnv(t)
	a := e.handle(t, finding("f1", base, event.SeverityHigh))
	e.clk.Add(20 * time.Minute)
	b := e.handle(t, finding("f2", base.Add(20*time.Minute), event.SeverityHigh), finding("f3", base.Add(21*time.Minute), event.SeverityMedium))
	if a[0].IncidentID == "" || a[0].IncidentID != b[0].IncidentID || b[0].IncidentID != b[1].IncidentID {
		t.Fatalf("findings not joined: %q %q %q", a[0].IncidentID, b[0].IncidentID, b[1].IncidentID)
	}
	inc := e.get(t, a[0].IncidentID)
	if inc.FindingCount != 3 || inc.Status != incident.StatusOpen || !inc.LastSeen.Equal(base.Add(21*time.Minute)) || !inc.FirstSeen.Equal(base) {
		t.Fatalf("stored incident = %+v", inc)
	}
	if got := e.rec.kinds(); fmt.Sprint(got) != "[opened updated]" {
		t.Fatalf("changes = %v", got)
	}
	fs, err := e.store.FindingsFor(context.Background(), inc.IncidentID, 10)
	if err != nil || len(fs) != 3 {
		t.Fatalf("findings for incident = %d, %v", len(fs), err)
	}
}

// Two observations of one call give one finding id at two times; the
// findings table's sort key holds ts (seconds), so both rows survive FINAL
// when the two fall in different seconds.
// FindingsFor still answers the finding once.
func TestFindingsForAnswersAFindingOnce(t *testing.T) {
	e := newEnv(t)
	a := e.handle(t, finding("f1", base, event.SeverityHigh))
	other := a[0]
	other.Time = base.Add(1500 * time.Millisecond) // the server side's observation, in the next second
	if err := e.store.InsertFindings(context.Background(), []event.Finding{a[0], other}); err != nil {
		t.Fatal(err)
	}
	fs, err := e.store.FindingsFor(context.Background(), a[0].IncidentID, 10)
	if err != nil || len(fs) != 1 || fs[0].FindingID != "f1" {
		t.Fatalf("findings for incident = %+v, %v; want f1 once", fs, err)
	}
}

func TestNewIncidentAfterDedupWindow(t *testing.T) {
	e := newEnv(t)
	f1 := finding("f1", base, event.SeverityHigh)
	f1.RuleID = "short-dedup"
	f2 := finding("f2", base.Add(11*time.Minute), event.SeverityHigh)
	f2.RuleID = "short-dedup"
	f3 := finding("f3", base.Add(30*time.Minute), event.SeverityHigh) // default 1h window
	f4 := finding("f4", base.Add(80*time.Minute), event.SeverityHigh)
	got := e.handle(t, f1, f2, f3)
	if got[0].IncidentID == got[1].IncidentID {
		t.Fatalf("finding after the 10m window joined %s", got[0].IncidentID)
	}
	if got[0].IncidentID == got[2].IncidentID {
		t.Fatal("different rules share an incident")
	}
	g4 := e.handle(t, f4)
	if g4[0].IncidentID != got[2].IncidentID {
		t.Fatalf("finding 50m after last_seen did not join the 1h-window incident")
	}
	f5 := finding("f5", base.Add(190*time.Minute), event.SeverityHigh)
	g5 := e.handle(t, f5)
	if g5[0].IncidentID == got[2].IncidentID {
		t.Fatal("finding 110m after last_seen joined")
	}
}

func TestSeverityEscalates(t *testing.T) {
	e := newEnv(t)
	got := e.handle(t, finding("f1", base, event.SeverityLow))
	e.handle(t, finding("f2", base.Add(time.Minute), event.SeverityCritical))
	e.handle(t, finding("f3", base.Add(2*time.Minute), event.SeverityMedium))
	inc := e.get(t, got[0].IncidentID)
	if inc.Severity != event.SeverityCritical || inc.FindingCount != 3 {
		t.Fatalf("severity %s count %d", inc.Severity, inc.FindingCount)
	}
	if k := e.rec.kinds(); fmt.Sprint(k) != "[opened escalated updated]" {
		t.Fatalf("changes = %v", k)
	}
}

func TestReopenAfterResolution(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.handle(t, finding("f1", base, event.SeverityHigh))[0].IncidentID
	if _, err := e.m.Resolve(ctx, id, incident.Update{Actor: "alice", Note: "fixed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Acknowledge(ctx, id, incident.Update{Actor: "alice"}); !errors.Is(err, incident.ErrIllegalTransition) {
		t.Fatalf("ack of resolved: %v", err)
	}
	e.clk.Add(2 * time.Hour)
	got := e.handle(t, finding("f2", base.Add(2*time.Hour), event.SeverityHigh))
	if got[0].IncidentID != id {
		t.Fatalf("finding within reopen period opened %s, want reopen of %s", got[0].IncidentID, id)
	}
	inc := e.get(t, id)
	if inc.Status != incident.StatusOpen || inc.FindingCount != 2 || inc.UpdatedBy != "mcpwatch" {
		t.Fatalf("reopened incident = %+v", inc)
	}
	if k := e.rec.kinds(); fmt.Sprint(k) != "[opened resolved reopened]" {
		t.Fatalf("changes = %v", k)
	}
	// Resolved again; a finding beyond the reopen period opens a new incident.
	if _, err := e.m.Resolve(ctx, id, incident.Update{Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(7 * time.Hour)
	got = e.handle(t, finding("f3", base.Add(9*time.Hour), event.SeverityHigh))
	if got[0].IncidentID == id {
		t.Fatal("finding after the reopen period reopened the old incident")
	}
	actions, err := e.store.ActionsFor(ctx, id)
	if err != nil || len(actions) != 2 || actions[0].Actor != "alice" || actions[0].Kind != incident.ActionIncidentChange {
		t.Fatalf("actions = %+v, %v", actions, err)
	}
}

func TestSuppressionExpires(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.handle(t, finding("f1", base, event.SeverityHigh))[0].IncidentID
	if _, err := e.m.Suppress(ctx, id, incident.Update{Actor: "alice"}); !errors.Is(err, incident.ErrInvalid) {
		t.Fatalf("suppress without until: %v", err)
	}
	if _, err := e.m.Suppress(ctx, id, incident.Update{Actor: "alice", Until: base.Add(30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(10 * time.Minute)
	e.handle(t, finding("f2", base.Add(10*time.Minute), event.SeverityHigh))
	if inc := e.get(t, id); inc.Status != incident.StatusSuppressed || inc.FindingCount != 2 {
		t.Fatalf("during suppression: %+v", inc)
	}
	if err := e.m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if inc := e.get(t, id); inc.Status != incident.StatusSuppressed {
		t.Fatalf("tick before expiry changed status to %s", inc.Status)
	}
	e.clk.Add(25 * time.Minute)
	if err := e.m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	inc := e.get(t, id)
	if inc.Status != incident.StatusOpen || !inc.SuppressedUntil.IsZero() {
		t.Fatalf("after expiry: %+v", inc)
	}
	if k := e.rec.kinds(); fmt.Sprint(k) != "[opened suppressed updated unsuppressed]" {
		t.Fatalf("changes = %v", k)
	}
}

func TestRestartKeepsStateAndReplaysDoNotDoubleCount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	f1, f2 := finding("f1", base, event.SeverityMedium), finding("f2", base.Add(time.Minute), event.SeverityHigh)
	id := e.handle(t, f1, f2)[0].IncidentID
	if _, err := e.m.Acknowledge(ctx, id, incident.Update{Actor: "alice", Note: "looking"}); err != nil {
		t.Fatal(err)
	}
	// Replay in the same process.
	e.handle(t, f1)
	if inc := e.get(t, id); inc.FindingCount != 2 {
		t.Fatalf("replay counted: %d", inc.FindingCount)
	}
	e.clk.Add(5 * time.Minute)
	e.restart(t)
	// Replay after restart (Kafka redelivers uncommitted offsets) + one new finding.
	got := e.handle(t, f1, f2, finding("f3", base.Add(5*time.Minute), event.SeverityHigh))
	for _, f := range got {
		if f.IncidentID != id {
			t.Fatalf("after restart finding %s went to %s, want %s", f.FindingID, f.IncidentID, id)
		}
	}
	inc := e.get(t, id)
	if inc.FindingCount != 3 || inc.Status != incident.StatusAcknowledged || inc.Severity != event.SeverityHigh {
		t.Fatalf("after restart: %+v", inc)
	}
	// A replay of the first finding of a fresh manager with no memory of the
	// group still maps to the same deterministic id.
	if want := incident.IncidentID("acme", "mcp-exfil", "acme|sess-1", base, time.Hour); want != id {
		t.Fatalf("incident id not deterministic: %s vs %s", want, id)
	}
	if k := e.rec.kinds(); fmt.Sprint(k) != "[updated]" {
		t.Fatalf("changes after restart = %v", k)
	}
}

func TestAssignAndUnknownIncident(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.handle(t, finding("f1", base, event.SeverityHigh))[0].IncidentID
	inc, err := e.m.Assign(ctx, id, incident.Update{Actor: "alice", Assignee: "bob"})
	if err != nil || inc.Assignee != "bob" || inc.UpdatedBy != "alice" {
		t.Fatalf("assign: %+v %v", inc, err)
	}
	if _, err := e.m.Acknowledge(ctx, "inc-nope", incident.Update{Actor: "alice"}); !errors.Is(err, incident.ErrNotFound) {
		t.Fatalf("unknown incident: %v", err)
	}
	list, total, err := e.store.ListIncidents(ctx, incident.Filter{Severity: event.SeverityHigh, Tenant: "acme"})
	if err != nil || total != 1 || len(list) != 1 || list[0].Assignee != "bob" {
		t.Fatalf("list: %+v %d %v", list, total, err)
	}
	list, total, err = e.store.ListIncidents(ctx, incident.Filter{Severity: event.SeverityCritical})
	if err != nil || total != 0 || len(list) != 0 {
		t.Fatalf("list critical: %+v %d %v", list, total, err)
	}
}

func TestLongDedupWindowReopensResolvedIncident(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const win = 48 * time.Hour
	bucket := time.Unix(0, base.UnixNano()/int64(win)*int64(win)).UTC()
	f1 := finding("f1", bucket.Add(time.Hour), event.SeverityHigh)
	f1.RuleID = "long-dedup"
	e.clk.t = f1.Time
	id := e.handle(t, f1)[0].IncidentID
	if _, err := e.m.Resolve(ctx, id, incident.Update{Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	// 10h later: past the 6h reopen period but in the same 48h bucket, so
	// the deterministic id is the resolved incident's: it must reopen.
	e.clk.Add(10 * time.Hour)
	f2 := finding("f2", bucket.Add(11*time.Hour), event.SeverityHigh)
	f2.RuleID = "long-dedup"
	if got := e.handle(t, f2)[0].IncidentID; got != id {
		t.Fatalf("joined %s, want %s", got, id)
	}
	if inc := e.get(t, id); inc.Status != incident.StatusOpen || inc.FindingCount != 2 {
		t.Fatalf("incident %+v", inc)
	}
	if k := e.rec.kinds(); fmt.Sprint(k) != "[opened resolved reopened]" {
		t.Fatalf("changes = %v", k)
	}
}

// TestReplayAfterCrashBeforeFindingsStored: the respond role stores an
// incident version, then the findings (with their incident ids), then
// commits. A crash (kill -9) or a partition moving to another instance
// between the first two leaves a version that counts findings the
// findings table does not hold; the replayed findings must not be counted
// a second time by the next owner.
func TestReplayAfterCrashBeforeFindingsStored(t *testing.T) {
	s, _ := incidenttest.Store(t)
	clk := &clock{t: base}
	ctx := context.Background()
	owner := func() *incident.Manager {
		m, err := incident.NewManager(ctx, incident.Config{Store: s, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	f1, f2 := finding("f1", base, event.SeverityHigh), finding("f2", base.Add(time.Minute), event.SeverityHigh)
	// The first owner handles and stores f1 completely ...
	m := owner()
	fs := []event.Finding{f1}
	if err := m.HandleFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	id := fs[0].IncidentID
	// ... then f2: its version is stored, and the process dies before the
	// findings insert.
	if err := m.HandleFindings(ctx, []event.Finding{f2}); err != nil {
		t.Fatal(err)
	}
	if inc, err := s.GetIncident(ctx, id); err != nil || inc.FindingCount != 2 {
		t.Fatalf("stored before the crash: %+v %v", inc, err)
	}
	// The next owner replays f2 (its offset was not committed).
	clk.Add(time.Minute)
	m = owner()
	fs = []event.Finding{f2}
	if err := m.HandleFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if fs[0].IncidentID != id {
		t.Fatalf("replayed f2 joined %s, want %s", fs[0].IncidentID, id)
	}
	if inc, _ := s.GetIncident(ctx, id); inc.FindingCount != 2 {
		t.Fatalf("after the replay finding_count = %d, want 2 (f2 counted twice)", inc.FindingCount)
	}

	// The same crash in the batch that opened an incident: the next owner
	// opens it again, with the same id, version and change.
	g := finding("g1", base.Add(2*time.Minute), event.SeverityHigh)
	g.GroupKey = "acme|sess-2"
	rec := &recorder{}
	m.Subscribe(rec)
	fs = []event.Finding{g}
	if err := m.HandleFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	gid := fs[0].IncidentID
	first, _ := s.GetIncident(ctx, gid)
	clk.Add(time.Minute)
	m = owner()
	rec2 := &recorder{}
	m.Subscribe(rec2)
	fs = []event.Finding{g}
	if err := m.HandleFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	again, _ := s.GetIncident(ctx, gid)
	if fs[0].IncidentID != gid || again.FindingCount != 1 || again.Version != first.Version {
		t.Fatalf("replayed opening: incident %s count %d version %d, want %s 1 %d", fs[0].IncidentID, again.FindingCount, again.Version, gid, first.Version)
	}
	if a, b := fmt.Sprint(rec.kinds()), fmt.Sprint(rec2.kinds()); a != "[opened]" || b != a {
		t.Fatalf("changes: first owner %s, next owner %s; want [opened] twice (the same message ids)", a, b)
	}
}
