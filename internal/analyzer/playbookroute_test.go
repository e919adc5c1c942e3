package analyzer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/detect/findingsout"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

const pbRouteToken = "responder-token-0123456789"

// pbRoute is the shared part of the playbook ownership tests: ClickHouse,
// kfake, a playbook whose first and last steps call gw (counted per path)
// around an approval, and a finding that starts it.
type pbRoute struct {
	st    *store.Store
	kc    kafka.Config
	dir   string
	gw    *httptest.Server
	mu    sync.Mutex
	calls map[string][]string // path → Idempotency-Key of each call
	prod  *kgo.Client
}

func newPBRoute(t *testing.T, prefix string) *pbRoute {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	e := &pbRoute{st: openStore(t, ch.Addr, ch.Database), calls: map[string][]string{}, dir: t.TempDir()}
	e.kc = kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: prefix + "-ev", FindingsTopic: prefix + "-findings", DeadLetterTopic: prefix + "-dlq"}
	e.gw = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls[r.URL.Path] = append(e.calls[r.URL.Path], r.Header.Get("Idempotency-Key"))
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.gw.Close)
	t.Setenv("PB_GATEWAY", e.gw.URL)
	t.Setenv("PB_API_TOKEN", pbRouteToken)
	if err := os.WriteFile(filepath.Join(e.dir, "contain.yaml"), []byte(`name: contain
when: "true"
steps:
  - name: disable-tool
    http: {url: "${env:PB_GATEWAY}/disable"}
  - name: approve
    approval: {timeout: 1h}
  - name: revoke
    http: {url: "${env:PB_GATEWAY}/revoke"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(e.kc, kgo.RecordPartitioner(kafka.KeyPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.prod = cl
	return e
}

func (e *pbRoute) paths() map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string][]string{}
	for p, ks := range e.calls {
		out[p] = append([]string(nil), ks...)
	}
	return out
}

// responder wires an instance's respond parts (incidents, runner, API);
// withRole also runs its respond role in the group. stop ends both.
func (e *pbRoute) responder(t *testing.T, withRole bool) (*Responder, *httptest.Server, func()) {
	t.Helper()
	ctx := context.Background()
	resp, err := NewResponder(ctx, ResponseConfig{DataDir: t.TempDir(), PlaybooksDir: e.dir,
		Tokens: []TokenConfig{{Name: "grafana", Role: api.RoleResponder, Env: "PB_API_TOKEN"}}},
		ResponderOptions{Conn: e.st.Conn(), Database: e.st.Database()})
	if err != nil {
		t.Fatal(err)
	}
	resp.Router.Confirm = time.Minute
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = resp.Run(rctx); close(done) }()
	stopRole := func() {}
	if withRole {
		_, stopRole = running(t, Options{Kafka: e.kc, Store: e.st, Sink: resp.Manager, Router: resp.Router, Playbooks: resp.Runner,
			Config: Config{Roles: []string{RoleRespond}}})
	}
	srv := httptest.NewServer(resp.Handler)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close()
			stopRole()
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return resp, srv, stop
}

// open sends a finding and returns the incident id and the run id once the
// run waits for approval (as stored).
func (e *pbRoute) open(t *testing.T, resp *Responder) (string, string) {
	t.Helper()
	ctx := context.Background()
	f := event.Finding{FindingID: "pb-1", Tenant: "acme", Time: time.Now().UTC(), RuleID: "mcp-ssrf-internal-address",
		Severity: event.SeverityHigh, GroupKey: "acme|a1", AgentID: "a1", EventIDs: []string{"e1"}}
	v, _ := findingsout.Marshal([]event.Finding{f})
	if err := e.prod.ProduceSync(ctx, &kgo.Record{Topic: e.kc.FindingsTopic, Key: FindingKey(f.Tenant, f.RuleID, f.GroupKey), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var incID, runID string
	testbed.WaitUntil(t, "the run to wait for approval", time.Minute, func() (bool, string) {
		incs, err := e.incidents(ctx)
		if err != nil || len(incs) != 1 {
			return false, fmt.Sprint(incs, err)
		}
		incID = incs[0]
		runID = playbook.RunID("contain", incID)
		run, err := resp.Router.RunStore.GetRun(ctx, runID)
		if err != nil || run.Status != playbook.RunWaiting {
			return false, fmt.Sprint(run.Status, err)
		}
		return true, ""
	})
	return incID, runID
}

func (e *pbRoute) incidents(ctx context.Context) ([]string, error) {
	rows, err := e.st.Conn().Query(ctx, "SELECT DISTINCT incident_id FROM "+e.st.Database()+".incidents WHERE tenant = 'acme'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// decide posts an approval or denial to an instance's API.
func decide(t *testing.T, srv *httptest.Server, incID, runID, step, verb string) (int, playbook.Run) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/incidents/"+incID+"/playbook-runs/"+runID+"/steps/"+step+"/"+verb,
		strings.NewReader(`{"note":"go"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+pbRouteToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Run playbook.Run `json:"run"`
	}
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode != http.StatusOK {
		t.Logf("%s %s: %d %s", verb, step, resp.StatusCode, b)
	}
	return resp.StatusCode, out.Run
}

func stepOf(run playbook.Run, name string) playbook.StepRun {
	for _, s := range run.Steps {
		if s.Name == name {
			return s
		}
	}
	return playbook.StepRun{}
}

// TestApprovalThroughAnotherInstance: a run started by the owner of its
// incident (instance A, the respond role) waits for approval; the approval
// is posted to the API of instance B, which owns nothing. B sends it to A
// through the findings topic and answers once A stored it; A completes the
// run. A second approval of the same step is refused by B without sending.
func TestApprovalThroughAnotherInstance(t *testing.T) {
	e := newPBRoute(t, "pba")
	a, _, _ := e.responder(t, true)
	incID, runID := e.open(t, a)
	if got := e.paths(); len(got["/disable"]) != 1 || len(got["/revoke"]) != 0 {
		t.Fatalf("gateway before approval: %v", got)
	}

	b, bsrv, _ := e.responder(t, false)
	sent := 0
	b.Router.bind(func([]byte) bool { return false }, func(ctx context.Context, rec *kgo.Record) error {
		sent++
		rec.Topic = e.kc.FindingsTopic
		return e.prod.ProduceSync(ctx, rec).FirstErr()
	})
	if _, held := b.Runner.Get(runID); held {
		t.Fatal("instance B holds the run it does not own")
	}
	code, run := decide(t, bsrv, incID, runID, "approve", "approve")
	if code != http.StatusOK || sent != 1 {
		t.Fatalf("approve through B: %d (sent %d)", code, sent)
	}
	if s := stepOf(run, "approve"); s.Status != playbook.StepApproved || s.Actor != "token:grafana" || s.Note != "go" {
		t.Fatalf("B's answer: step %+v", s)
	}
	testbed.WaitUntil(t, "A to complete the run", time.Minute, func() (bool, string) {
		run, ok := a.Runner.Get(runID)
		return ok && run.Status == playbook.RunCompleted, fmt.Sprint(run.Status)
	})
	got := e.paths()
	if len(got["/disable"]) != 1 || len(got["/revoke"]) != 1 || got["/revoke"][0] != runID+"/revoke" {
		t.Fatalf("gateway after approval: %v", got)
	}
	if code, _ := decide(t, bsrv, incID, runID, "approve", "approve"); code != http.StatusConflict || sent != 1 {
		t.Fatalf("approving again through B: %d (sent %d, want 409 before sending)", code, sent)
	}
	if stored, err := b.Router.RunStore.GetRun(context.Background(), runID); err != nil || stored.Status != playbook.RunCompleted {
		t.Fatalf("stored run: %+v %v", stored, err)
	}
}

// TestNewOwnerResumesWaitingRun: the instance that started a run stops
// while the run waits for approval; the instance that gets the findings
// partitions next loads the run, is approved through its API and completes
// it, without calling the step done before the stop again.
func TestNewOwnerResumesWaitingRun(t *testing.T) {
	e := newPBRoute(t, "pbr")
	a, _, stopA := e.responder(t, true)
	incID, runID := e.open(t, a)
	stopA()

	c, csrv, _ := e.responder(t, true)
	testbed.WaitUntil(t, "the new owner to hold the run", time.Minute, func() (bool, string) {
		run, ok := c.Runner.Get(runID)
		return ok && run.Status == playbook.RunWaiting, fmt.Sprint(ok, run.Status)
	})
	if got := e.paths(); len(got["/disable"]) != 1 || len(got["/revoke"]) != 0 {
		t.Fatalf("gateway after the new owner loaded the run: %v", got)
	}
	code, _ := decide(t, csrv, incID, runID, "approve", "approve")
	if code != http.StatusOK {
		t.Fatalf("approve through the new owner: %d", code)
	}
	testbed.WaitUntil(t, "the new owner to complete the run", time.Minute, func() (bool, string) {
		run, ok := c.Runner.Get(runID)
		return ok && run.Status == playbook.RunCompleted, fmt.Sprint(run.Status)
	})
	got := e.paths()
	if len(got["/disable"]) != 1 || len(got["/revoke"]) != 1 || got["/disable"][0] != runID+"/disable-tool" {
		t.Fatalf("gateway calls: %v (want each step once)", got)
	}
	run, _ := c.Runner.Get(runID)
	if s := stepOf(run, "approve"); s.Status != playbook.StepApproved || s.Actor != "token:grafana" {
		t.Fatalf("approval step: %+v", s)
	}
}
