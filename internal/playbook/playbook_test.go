package playbook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
	"github.com/mcpwatch/mcpwatch/playbooks"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(testbed.Main(m))
}

// gateway is a local stand-in for an MCP gateway's admin API
// (docs/playbooks.md); it records what it receives.
type gateway struct {
	mu   sync.Mutex
	reqs []gwReq
	srv  *httptest.Server
}

type gwReq struct{ Method, Path, Key, Auth, Body string }

func newGateway(t *testing.T) *gateway {
	g := &gateway{}
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.reqs = append(g.reqs, gwReq{r.Method, r.URL.EscapedPath(), r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization"), string(b)})
		g.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer gw-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("POST /admin/sessions/{id}/revoke", h)
	mux.HandleFunc("POST /admin/servers/{server}/tools/{tool}/disable", h)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) paths() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ps []string
	for _, r := range g.reqs {
		ps = append(ps, r.Path)
	}
	return ps
}

type env struct {
	store    *incident.CHStore
	mgr      *incident.Manager
	notifier *notify.Notifier
	hooks    *hookCapture
	gw       *gateway
	runs     *playbook.CHStore
	cancel   context.CancelFunc
	done     chan struct{}
	runner   *playbook.Runner
}

type hookCapture struct {
	mu    sync.Mutex
	notes []string
}

func newEnv(t *testing.T) *env {
	ch := testbed.ClickHouse(t)
	conn := ch.Conn(t)
	incidenttest.Migrate(t, conn, ch.Database)
	store, err := incident.NewCHStore(conn, ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := playbook.NewCHStore(conn, ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := incident.NewManager(context.Background(), incident.Config{Store: store, InsertFindings: true})
	if err != nil {
		t.Fatal(err)
	}
	hc := &hookCapture{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		hc.mu.Lock()
		hc.notes = append(hc.notes, p.Note)
		hc.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	n, err := notify.New(notify.Config{DataDir: t.TempDir(), Receivers: []notify.ReceiverConfig{{Name: "secops", Type: notify.TypeWebhook, URL: hook.URL}}},
		notify.Options{Recorder: mgr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = n.Run(ctx) }()
	t.Cleanup(cancel)
	gw := newGateway(t)
	t.Setenv("MCPWATCH_GATEWAY_URL", gw.srv.URL)
	t.Setenv("MCPWATCH_GATEWAY_TOKEN", "gw-token")
	return &env{store: store, mgr: mgr, notifier: n, hooks: hc, gw: gw, runs: runs}
}

func (e *env) start(t *testing.T, pbs []*playbook.Playbook) {
	t.Helper()
	r, err := playbook.New(playbook.Config{Playbooks: pbs, Store: e.runs, Notifier: e.notifier, Incidents: e.mgr,
		Recorder: e.mgr, PollInterval: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(context.Background(), nil); err != nil { // the unfinished runs, as stored
		t.Fatal(err)
	}
	e.mgr.Subscribe(r)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done, e.runner = cancel, make(chan struct{}), r
	go func() { _ = r.Run(ctx); close(e.done) }()
	t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

func examples(t *testing.T) []*playbook.Playbook {
	pbs, err := playbook.Load(playbooks.Files)
	if err != nil {
		t.Fatal(err)
	}
	return pbs
}

func exfilFinding() event.Finding {
	return event.Finding{FindingID: "f-exfil-1", Tenant: "acme", Time: time.Now().UTC(), RuleID: "mcp-sensitive-read-then-egress",
		RuleTitle: "Sensitive file read followed by an outbound call", Severity: event.SeverityCritical, GroupKey: "acme|sess/1",
		AgentID: "agent-1", SessionKey: "sess/1", ServerName: "web", ToolName: "http_post", Tags: []string{"secret:aws"}}
}

func waitRun(t *testing.T, r *playbook.Runner, id string, cond func(playbook.Run) bool) playbook.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run, ok := r.Get(id)
		if ok && cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never reached the expected state: %+v", id, run)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(want string) func(playbook.Run) bool {
	return func(r playbook.Run) bool { return r.Status == want }
}

func TestExamplePlaybooksLoadAndMatch(t *testing.T) {
	pbs := examples(t)
	var names []string
	for _, pb := range pbs {
		names = append(names, pb.Name)
	}
	if !slices.Equal(names, []string{"rug-pull-disable-tool", "secret-exfiltration-contain", "session-hijack-revoke"}) {
		t.Fatalf("playbooks = %v", names)
	}
	cases := map[string]incident.Incident{
		"secret-exfiltration-contain": {RuleID: "mcp-sensitive-read-then-egress", Severity: "high"},
		"rug-pull-disable-tool":       {RuleID: "mcp-tool-definition-changed", Severity: "medium"},
		"session-hijack-revoke":       {RuleID: "mcp-session-multiple-clients", Severity: "critical"},
	}
	for _, pb := range pbs {
		for name, inc := range cases {
			ok, err := pb.Matches(inc)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (name == pb.Name) {
				t.Errorf("%s matches %s incident: %v", pb.Name, name, ok)
			}
		}
		low := cases[pb.Name]
		low.Severity = "low"
		if ok, _ := pb.Matches(low); ok {
			t.Errorf("%s matches a low-severity incident", pb.Name)
		}
	}
}

func TestParseRejectsBadPlaybooks(t *testing.T) {
	for name, src := range map[string]string{
		"non-bool when":  "name: x\nwhen: incident.severity\nsteps: [{name: a, annotate: {note: hi}}]",
		"bad cel":        "name: x\nwhen: incident.severity ==\nsteps: [{name: a, annotate: {note: hi}}]",
		"two kinds":      "name: x\nwhen: 'true'\nsteps: [{name: a, annotate: {note: hi}, notify: {receiver: r}}]",
		"bad on_timeout": "name: x\nwhen: 'true'\nsteps: [{name: a, approval: {on_timeout: maybe}}]",
		"unknown field":  "name: x\nwhen: 'true'\nsteps: [{name: a, shell: {cmd: rm}}]",
		"bad template":   "name: x\nwhen: 'true'\nsteps: [{name: a, annotate: {note: '{{ .incident.'}}]",
	} {
		if _, err := playbook.Parse([]byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestApprovalResumesPlaybook(t *testing.T) {
	e := newEnv(t)
	e.start(t, examples(t))
	ctx := context.Background()
	fs, id, run := e.waitingExfilRun(t)
	if len(e.gw.paths()) != 0 {
		t.Fatalf("gateway called before approval: %v", e.gw.paths())
	}
	if run.Steps[1].Prompt != "Revoke session sess/1 and disable web/http_post?" {
		t.Fatalf("prompt = %q", run.Steps[1].Prompt)
	}
	if _, err := e.runner.Decide(ctx, fs[0].IncidentID, id, "revoke-session", "alice", "", true); err == nil {
		t.Fatal("approving a step that is not waiting succeeded")
	}
	if _, err := e.runner.Decide(ctx, fs[0].IncidentID, id, "approve-containment", "alice", "go", true); err != nil {
		t.Fatal(err)
	}
	run = waitRun(t, e.runner, id, status(playbook.RunCompleted))
	want := []string{"/admin/sessions/sess%2F1/revoke", "/admin/servers/web/tools/http_post/disable"}
	if got := e.gw.paths(); !slices.Equal(got, want) {
		t.Fatalf("gateway calls = %v, want %v", got, want)
	}
	for _, r := range e.gw.reqs {
		if r.Auth != "Bearer gw-token" || !strings.HasPrefix(r.Key, id+"/") || !json.Valid([]byte(r.Body)) {
			t.Fatalf("gateway request %+v", r)
		}
	}
	inc, err := e.mgr.Get(ctx, fs[0].IncidentID)
	if err != nil || !strings.Contains(inc.Note, "revoked") || inc.UpdatedBy != "playbook:secret-exfiltration-contain" {
		t.Fatalf("incident after annotate: %+v %v", inc, err)
	}
	// The audit trail: run started/completed, the approval with its actor, every step.
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := e.store.ActionsFor(ctx, fs[0].IncidentID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		approver := ""
		for _, a := range as {
			if a.Kind == incident.ActionApproval && a.Outcome == "approved" {
				approver = a.Actor
			}
			if a.Kind == incident.ActionPlaybookStep && a.Outcome == "succeeded" {
				got = append(got, a.Step)
			}
		}
		slices.Sort(got)
		if approver == "alice" && slices.Equal(got, []string{"disable-tool", "notify-done", "notify-secops", "record", "revoke-session"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("actions: approver %q steps %v", approver, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestApprovalTimeout(t *testing.T) {
	for _, onTimeout := range []string{"abort", "continue"} {
		t.Run(onTimeout, func(t *testing.T) {
			e := newEnv(t)
			pb, err := playbook.Parse([]byte(`name: t
when: incident.severity == "critical"
steps:
  - name: wait
    approval: {timeout: 50ms, on_timeout: ` + onTimeout + `}
  - name: revoke
    http: {url: "${env:MCPWATCH_GATEWAY_URL}/admin/sessions/{{ pathescape .incident.session_key }}/revoke", headers: {Authorization: "Bearer ${env:MCPWATCH_GATEWAY_TOKEN}"}}
`))
			if err != nil {
				t.Fatal(err)
			}
			e.start(t, []*playbook.Playbook{pb})
			fs := []event.Finding{exfilFinding()}
			if err := e.mgr.HandleFindings(context.Background(), fs); err != nil {
				t.Fatal(err)
			}
			id := playbook.RunID("t", fs[0].IncidentID)
			want := map[string]string{"abort": playbook.RunAborted, "continue": playbook.RunCompleted}[onTimeout]
			run := waitRun(t, e.runner, id, status(want))
			if run.Steps[0].Status != playbook.StepTimedOut {
				t.Fatalf("approval step = %+v", run.Steps[0])
			}
			calls := len(e.gw.paths())
			if (onTimeout == "abort") != (calls == 0) {
				t.Fatalf("on_timeout %s: %d gateway calls", onTimeout, calls)
			}
		})
	}
}

func TestDenyAborts(t *testing.T) {
	e := newEnv(t)
	e.start(t, examples(t))
	fs, id, _ := e.waitingExfilRun(t)
	if _, err := e.runner.Decide(context.Background(), fs[0].IncidentID, id, "approve-containment", "bob", "false positive", false); err != nil {
		t.Fatal(err)
	}
	run := waitRun(t, e.runner, id, status(playbook.RunAborted))
	if run.Steps[1].Status != playbook.StepDenied || run.Steps[1].Actor != "bob" || len(e.gw.paths()) != 0 {
		t.Fatalf("after deny: %+v, gateway %v", run.Steps[1], e.gw.paths())
	}
}

func TestRestartResumesWithoutResendingCompletedSteps(t *testing.T) {
	e := newEnv(t)
	pb, err := playbook.Parse([]byte(`name: r
when: "true"
steps:
  - name: disable-tool
    http: {url: "${env:MCPWATCH_GATEWAY_URL}/admin/servers/{{ .incident.server_name }}/tools/{{ .incident.tool_name }}/disable", headers: {Authorization: "Bearer ${env:MCPWATCH_GATEWAY_TOKEN}"}}
  - name: approve
    approval: {timeout: 1h}
  - name: revoke
    http: {url: "${env:MCPWATCH_GATEWAY_URL}/admin/sessions/{{ pathescape .incident.session_key }}/revoke", headers: {Authorization: "Bearer ${env:MCPWATCH_GATEWAY_TOKEN}"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, []*playbook.Playbook{pb})
	fs := []event.Finding{exfilFinding()}
	if err := e.mgr.HandleFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	id := playbook.RunID("r", fs[0].IncidentID)
	waitRun(t, e.runner, id, status(playbook.RunWaiting))
	e.stop() // the analyzer stops; run state is in ClickHouse

	// A new runner (new process) on the same database.
	e.start(t, []*playbook.Playbook{pb})
	if run, ok := e.runner.Get(id); !ok || run.Status != playbook.RunWaiting || run.Steps[0].Status != playbook.StepSucceeded {
		t.Fatalf("restored run = %+v", run)
	}
	if _, err := e.runner.Decide(context.Background(), fs[0].IncidentID, id, "approve", "carol", "", true); err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.runner, id, status(playbook.RunCompleted))
	want := []string{"/admin/servers/web/tools/http_post/disable", "/admin/sessions/sess%2F1/revoke"}
	if got := e.gw.paths(); !slices.Equal(got, want) {
		t.Fatalf("gateway calls = %v, want %v (completed step re-sent?)", got, want)
	}
	// A replayed incident change does not start a second run.
	e.runner.IncidentChanged(context.Background(), incident.Change{Kind: incident.ChangeOpened, Incident: incident.Incident{IncidentID: fs[0].IncidentID, Severity: "critical", Status: "open"}})
	if runs, err := e.runner.Runs(context.Background(), fs[0].IncidentID); err != nil || len(runs) != 1 || runs[0].Status != playbook.RunCompleted {
		t.Fatalf("runs after a replayed change: %+v %v (want the one completed run)", runs, err)
	}
}

func TestSecretsNotTakenFromIncidentData(t *testing.T) {
	e := newEnv(t)
	t.Setenv("TOP_SECRET", "hunter2")
	pb, err := playbook.Parse([]byte(`name: s
when: "true"
steps:
  - name: call
    http: {url: "${env:MCPWATCH_GATEWAY_URL}/admin/sessions/x/revoke", headers: {Authorization: "Bearer ${env:MCPWATCH_GATEWAY_TOKEN}"}, body: '{"s": {{ json .incident.summary }}}'}
`))
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, []*playbook.Playbook{pb})
	f := exfilFinding()
	f.Summary = "attacker text ${env:TOP_SECRET}"
	fs := []event.Finding{f}
	if err := e.mgr.HandleFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.runner, playbook.RunID("s", fs[0].IncidentID), status(playbook.RunCompleted))
	e.gw.mu.Lock()
	defer e.gw.mu.Unlock()
	if len(e.gw.reqs) != 1 || strings.Contains(e.gw.reqs[0].Body, "hunter2") || !strings.Contains(e.gw.reqs[0].Body, "${env:TOP_SECRET}") {
		t.Fatalf("body = %q", e.gw.reqs)
	}
}

// TestReloadDropsRunsNotOwned: a Reload that no longer accepts a run's
// incident key drops the run (it is not decided or advanced here); one
// that accepts it again resumes it from the store.
func TestReloadDropsRunsNotOwned(t *testing.T) {
	e := newEnv(t)
	e.start(t, examples(t))
	ctx := context.Background()
	fs, id, _ := e.waitingExfilRun(t)
	var asked []string
	if err := e.runner.Reload(ctx, func(tenant, rule, group string) bool {
		asked = append(asked, tenant+"/"+rule+"/"+group)
		return false
	}); err != nil {
		t.Fatal(err)
	}
	if want := "acme/mcp-sensitive-read-then-egress/acme|sess/1"; len(asked) != 1 || asked[0] != want {
		t.Fatalf("ownership asked for %v, want [%s]", asked, want)
	}
	if _, held := e.runner.Get(id); held {
		t.Fatal("run still held after its incident was lost")
	}
	if _, err := e.runner.Decide(ctx, fs[0].IncidentID, id, "approve-containment", "alice", "", true); !errors.Is(err, playbook.ErrNotFound) {
		t.Fatalf("deciding a run not held: %v, want ErrNotFound", err)
	}
	if err := e.runner.Reload(ctx, func(string, string, string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if run, held := e.runner.Get(id); !held || run.Status != playbook.RunWaiting {
		t.Fatalf("run after regaining its incident: %+v %v", run, held)
	}
	if _, err := e.runner.Decide(ctx, fs[0].IncidentID, id, "approve-containment", "alice", "", true); err != nil {
		t.Fatal(err)
	}
	done := waitRun(t, e.runner, id, status(playbook.RunCompleted))
	if _, err := e.runner.Decide(ctx, fs[0].IncidentID, id, "approve-containment", "bob", "", true); !errors.Is(err, playbook.ErrNotWaiting) {
		t.Fatalf("deciding a finished run: %v, want ErrNotWaiting", err)
	}
	if stored, err := e.runs.GetRun(ctx, id); err != nil || stored.Version != done.Version {
		t.Fatalf("a refused decision stored a version: %d, want %d (%v)", stored.Version, done.Version, err)
	}
}

// failingLoads is the run store with LoadRuns failing while fail is set.
type failingLoads struct {
	*playbook.CHStore
	fail bool
}

func (f *failingLoads) LoadRuns(ctx context.Context) ([]playbook.Run, error) {
	if f.fail {
		return nil, errors.New("clickhouse unavailable")
	}
	return f.CHStore.LoadRuns(ctx)
}

// TestReloadFailureStillDropsLostRuns: when the runs cannot be loaded, the
// runs of keys no longer owned are dropped all the same.
func TestReloadFailureStillDropsLostRuns(t *testing.T) {
	e := newEnv(t)
	st := &failingLoads{CHStore: e.runs}
	r, err := playbook.New(playbook.Config{Playbooks: examples(t), Store: st, Notifier: e.notifier, Incidents: e.mgr,
		Recorder: e.mgr, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.mgr.Subscribe(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	fs := []event.Finding{exfilFinding()}
	if err := e.mgr.HandleFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	id := playbook.RunID("secret-exfiltration-contain", fs[0].IncidentID)
	waitRun(t, r, id, status(playbook.RunWaiting))
	st.fail = true
	if err := r.Reload(ctx, func(string, string, string) bool { return true }); err == nil {
		t.Fatal("reload with a failing store succeeded")
	}
	if _, held := r.Get(id); !held {
		t.Fatal("a run of a key still owned was dropped by a failed reload")
	}
	if err := r.Reload(ctx, func(string, string, string) bool { return false }); err == nil {
		t.Fatal("reload with a failing store succeeded")
	}
	if _, held := r.Get(id); held {
		t.Fatal("a run of a key lost is still held after a failed reload")
	}
}

// TestImportFiles: a waiting run an earlier release kept as a file is
// stored with its incident's key, resumed from the store and completed on
// approval; a second import finds nothing to do.
func TestImportFiles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fs := []event.Finding{exfilFinding()}
	if err := e.mgr.HandleFindings(ctx, fs); err != nil { // no runner yet: no run
		t.Fatal(err)
	}
	id := playbook.RunID("secret-exfiltration-contain", fs[0].IncidentID)
	now := time.Now().UTC()
	old := playbook.Run{RunID: id, Playbook: "secret-exfiltration-contain", IncidentID: fs[0].IncidentID, Tenant: "acme",
		Status: playbook.RunWaiting, CreatedAt: now, UpdatedAt: now}
	for i, s := range examples(t)[1].Steps {
		st := playbook.StepRun{Name: s.Name, Type: s.Type(), Status: playbook.StepPending, IdempotencyKey: id + "/" + s.Name}
		switch i {
		case 0:
			st.Status, st.Attempts = playbook.StepSucceeded, 1
		case 1:
			st.Status, st.Deadline = playbook.StepWaiting, now.Add(time.Hour)
		}
		old.Steps = append(old.Steps, st)
	}
	dir := t.TempDir()
	b, _ := json.Marshal(old)
	if err := os.MkdirAll(dir+"/runs", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/runs/"+id+".json", b, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := playbook.ImportFiles(ctx, dir, e.runs, e.mgr)
	if err != nil || n != 1 {
		t.Fatalf("import: %d %v", n, err)
	}
	got, err := e.runs.GetRun(ctx, id)
	if err != nil || got.RuleID != "mcp-sensitive-read-then-egress" || got.GroupKey != "acme|sess/1" || got.Status != playbook.RunWaiting {
		t.Fatalf("imported run: %+v %v", got, err)
	}
	if n, err := playbook.ImportFiles(ctx, dir, e.runs, e.mgr); err != nil || n != 0 {
		t.Fatalf("second import: %d %v", n, err)
	}
	if _, err := os.Stat(dir + "/runs/" + id + ".json.imported"); err != nil {
		t.Fatal(err)
	}
	e.start(t, examples(t)) // reloads the unfinished runs
	waitRun(t, e.runner, id, status(playbook.RunWaiting))
	if _, err := e.runner.Decide(ctx, fs[0].IncidentID, id, "approve-containment", "alice", "", true); err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.runner, id, status(playbook.RunCompleted))
	if got := e.gw.paths(); len(got) != 2 {
		t.Fatalf("gateway calls after the imported run resumed: %v", got)
	}
}

// waitingExfilRun opens an exfiltration incident and waits until its
// secret-exfiltration-contain run waits for approval.
func (e *env) waitingExfilRun(t *testing.T) ([]event.Finding, string, playbook.Run) {
	t.Helper()
	fs := []event.Finding{exfilFinding()}
	if err := e.mgr.HandleFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	id := playbook.RunID("secret-exfiltration-contain", fs[0].IncidentID)
	return fs, id, waitRun(t, e.runner, id, status(playbook.RunWaiting))
}
