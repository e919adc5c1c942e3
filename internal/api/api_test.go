package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/docs"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

const (
	viewerToken    = "viewer-token-0123456789"
	responderToken = "responder-token-0123456789"
	adminToken     = "admin-token-0123456789"
	// Scoped to tenant acme (and initech); not trusted forwarders.
	acmeViewerToken    = "acme-viewer-token-0123456789"
	acmeResponderToken = "acme-responder-token-0123456789"
	// A responder on every tenant that is not a trusted forwarder.
	scriptToken = "script-token-0123456789"
)

type env struct {
	store  *incident.CHStore
	mgr    *incident.Manager
	runner *playbook.Runner
	srv    *api.Server
	events *store.Store // the events backtests read
	gwMu   sync.Mutex
	gw     []string
}

func newEnv(t *testing.T) *env {
	e := &env{}
	ch := testbed.ClickHouse(t)
	conn := ch.Conn(t)
	incidenttest.Migrate(t, conn, ch.Database)
	var err error
	if e.store, err = incident.NewCHStore(conn, ch.Database); err != nil {
		t.Fatal(err)
	}
	runs, err := playbook.NewCHStore(conn, ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	e.mgr, err = incident.NewManager(context.Background(), incident.Config{Store: e.store, InsertFindings: true})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.gwMu.Lock()
		e.gw = append(e.gw, r.Method+" "+r.URL.EscapedPath())
		e.gwMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(gw.Close)
	t.Setenv("TEST_GATEWAY", gw.URL)
	pb, err := playbook.Parse([]byte(`name: contain
when: incident.severity == "critical"
steps:
  - name: approve-containment
    approval: {timeout: 1h}
  - name: revoke-session
    http: {url: "${env:TEST_GATEWAY}/admin/sessions/{{ pathescape .incident.session_key }}/revoke"}
`))
	if err != nil {
		t.Fatal(err)
	}
	e.runner, err = playbook.New(playbook.Config{Playbooks: []*playbook.Playbook{pb}, Store: runs, Incidents: e.mgr,
		Recorder: e.mgr, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.mgr.Subscribe(e.runner)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	if e.events, err = store.Open(context.Background(), store.Config{Addr: []string{ch.Addr}, Database: ch.Database}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.events.Close() })
	e.srv, err = api.New(api.Config{
		Tokens: []api.Token{{Name: "grafana-ro", Role: api.RoleViewer, Value: viewerToken},
			{Name: "grafana", Role: api.RoleResponder, Value: responderToken, ForwardsActor: true},
			{Name: "ops", Role: api.RoleAdmin, Value: adminToken, ForwardsActor: true},
			{Name: "acme-ro", Role: api.RoleViewer, Value: acmeViewerToken, Tenants: []string{"acme"}},
			{Name: "acme-ops", Role: api.RoleResponder, Value: acmeResponderToken, Tenants: []string{"acme", "initech"}},
			{Name: "script", Role: api.RoleResponder, Value: scriptToken}},
		Incidents: e.mgr, Queries: e.store, Playbooks: e.runner,
		Rules: api.RulesFromPack(func() *detect.Pack { return pack }),

		Backtest: api.BacktestConfig{Source: e.events, Pack: func() *detect.Pack { return pack }},
		// As the respond role applies the findings it consumes.
		Alerts: api.FindingsFunc(e.mgr.HandleFindings),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var t0 = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

func (e *env) incident(t *testing.T, rule string, sev event.Severity, tenant string) string {
	t.Helper()
	fs := []event.Finding{{FindingID: "f-" + rule + tenant + string(sev), Tenant: tenant, Time: t0, RuleID: rule, RuleTitle: rule,
		Severity: sev, GroupKey: tenant + "|s1", SessionKey: "s1", AgentID: "agent-1", EventIDs: []string{"e1"}, Evidence: "{}"}}
	if err := e.mgr.HandleFindings(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	return fs[0].IncidentID
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path, token, actor string, body any) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if actor != "" {
		req.Header.Set("X-Mcpwatch-Actor", actor)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

func decode(t *testing.T, r resp) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func expectError(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if m := decode(t, r); m["error"] == nil || m["error"] == "" {
		t.Fatalf("error body without error: %s", r.body)
	}
}

func waitRunStatus(t *testing.T, r *playbook.Runner, id, status string) playbook.Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if run, ok := r.Get(id); ok && run.Status == status {
			return run
		}
		if time.Now().After(deadline) {
			run, _ := r.Get(id)
			t.Fatalf("run %s: %+v, want %s", id, run, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	// The document itself is served as a YAML string; decode it as text
	// (kin-openapi would otherwise parse it into an object).
	openapi3filter.RegisterBodyDecoder("application/yaml", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesHandlers walks every documented path and method, calls
// the handler (authenticated and not), and validates status and body
// against the document; and checks every registered route is documented.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	e := newEnv(t)
	doc := loadDoc(t)
	incID := e.incident(t, "mcp-exfil", event.SeverityCritical, "acme")
	runID := playbook.RunID("contain", incID)
	waitRunStatus(t, e.runner, runID, playbook.RunWaiting)

	var documented []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			documented = append(documented, m+" "+p)
		}
	}
	registered := e.srv.Routes()
	sort.Strings(documented)
	sort.Strings(registered)
	if !slices.Equal(documented, registered) {
		t.Fatalf("documented %v\nregistered %v", documented, registered)
	}
	// A stable order that keeps transitions legal; deny comes after approve
	// (409: not waiting — also documented).
	order := []string{"GET", "acknowledge", "assign", "suppress", "approve", "deny", "resolve"}
	rank := func(op string) int {
		for i, o := range order {
			if strings.HasSuffix(op, "/"+o) {
				return i
			}
		}
		return 0
	}
	sort.SliceStable(documented, func(i, j int) bool { return rank(documented[i]) < rank(documented[j]) })
	params := map[string]string{"{id}": incID, "{run}": runID, "{step}": "approve-containment"}
	body := map[string]any{"note": "checked", "assignee": "bob", "until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	for _, op := range documented {
		method, tmpl, _ := strings.Cut(op, " ")
		path := tmpl
		for k, v := range params {
			path = strings.ReplaceAll(path, k, v)
		}
		item := doc.Paths.Find(tmpl)
		oper := item.GetOperation(method)
		secured := oper.Security == nil || len(*oper.Security) > 0
		var b any
		if method == http.MethodPost {
			b = body
		}
		if strings.HasSuffix(tmpl, "/rules/backtest") {
			b = map[string]any{"rule_id": "mcp-sensitive-file-access", "since": "2h"}
		}
		if strings.HasSuffix(tmpl, "/alerts/grafana") {
			b = grafanaNotification("firing", map[string]string{"alertname": "openapi"}, "fp-openapi", t0)
		}
		r := e.do(t, method, path, adminToken, "alice", b)
		if r.status >= 300 && !(strings.HasSuffix(op, "/deny") && r.status == http.StatusConflict) {
			t.Errorf("%s: status %d: %s", op, r.status, r.body)
		}
		validate(t, doc, item, oper, tmpl, method, path, r)
		if secured {
			r := e.do(t, method, path, "", "", b)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s without token: %d", op, r.status)
			}
			validate(t, doc, item, oper, tmpl, method, path, r)
		}
	}
	// The approve call above resumed the playbook.
	waitRunStatus(t, e.runner, runID, playbook.RunCompleted)
}

func validate(t *testing.T, doc *openapi3.T, item *openapi3.PathItem, op *openapi3.Operation, tmpl, method, path string, r resp) {
	t.Helper()
	if op.Responses.Status(r.status) == nil {
		t.Errorf("%s %s: status %d is not documented", method, tmpl, r.status)
		return
	}
	req := httptest.NewRequest(method, path, nil)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req,
			Route:   &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op},
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		in.Header = r.header.Clone()
		in.Header.Set("Content-Type", "text/plain")
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s (%d): response does not match docs/openapi.yaml: %v", method, tmpl, r.status, err)
	}
}

func TestRolesActorsAndErrors(t *testing.T) {
	e := newEnv(t)
	id := e.incident(t, "mcp-ssrf", event.SeverityHigh, "acme")
	p := "/api/v1/incidents/" + id

	expectError(t, e.do(t, "GET", p, "", "", nil), 401)
	expectError(t, e.do(t, "GET", p, "not-a-token-at-all-xx", "", nil), 401)
	if r := e.do(t, "GET", p, viewerToken, "", nil); r.status != 200 {
		t.Fatalf("viewer GET: %d", r.status)
	}
	expectError(t, e.do(t, "POST", p+"/acknowledge", viewerToken, "vic", nil), 403)
	expectError(t, e.do(t, "GET", "/api/v1/incidents/inc-missing", viewerToken, "", nil), 404)
	expectError(t, e.do(t, "POST", "/api/v1/incidents/inc-missing/resolve", responderToken, "", nil), 404)
	expectError(t, e.do(t, "POST", p+"/suppress", responderToken, "", map[string]any{"until": "tomorrow"}), 400)
	expectError(t, e.do(t, "POST", p+"/suppress", responderToken, "", map[string]any{"until": time.Now().Add(-time.Hour).Format(time.RFC3339)}), 400)
	expectError(t, e.do(t, "POST", p+"/assign", responderToken, "", map[string]any{}), 400)
	expectError(t, e.do(t, "GET", "/api/v1/incidents?limit=501", viewerToken, "", nil), 400)
	expectError(t, e.do(t, "GET", "/api/v1/incidents?status=closed", viewerToken, "", nil), 400)
	expectError(t, e.do(t, "GET", "/api/v1/nope", viewerToken, "", nil), 404)

	r := e.do(t, "POST", p+"/acknowledge", responderToken, "alice@example.com", map[string]any{"note": "on it"})
	if r.status != 200 {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	inc := decode(t, r)["incident"].(map[string]any)
	if inc["status"] != "acknowledged" || inc["updated_by"] != "alice@example.com via token:grafana" || inc["note"] != "on it" {
		t.Fatalf("ack result %v", inc)
	}
	expectError(t, e.do(t, "POST", p+"/acknowledge", responderToken, "alice", nil), 409)
	if r := e.do(t, "POST", p+"/resolve", adminToken, "", nil); r.status != 200 {
		t.Fatalf("admin resolve: %d", r.status)
	}
	expectError(t, e.do(t, "POST", p+"/resolve", responderToken, "", nil), 409)
	expectError(t, e.do(t, "POST", p+"/assign", responderToken, "", map[string]any{"assignee": "x"}), 409)

	// Stored versions and the audit trail carry the actors.
	stored, err := e.store.GetIncident(context.Background(), id)
	if err != nil || stored.Status != incident.StatusResolved || stored.UpdatedBy != "token:ops" {
		t.Fatalf("stored %+v %v", stored, err)
	}
	as, err := e.store.ActionsFor(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, a := range as {
		actors = append(actors, a.Target+"/"+a.Actor)
	}
	if !slices.Equal(actors, []string{"acknowledged/alice@example.com via token:grafana", "resolved/token:ops"}) {
		t.Fatalf("actions %v", actors)
	}
	// Findings come back with column names.
	got := decode(t, e.do(t, "GET", p, viewerToken, "", nil))
	fs := got["findings"].([]any)
	if len(fs) != 1 || fs[0].(map[string]any)["finding_id"] == nil || fs[0].(map[string]any)["event_ids"] == nil {
		t.Fatalf("findings %v", fs)
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	e := newEnv(t)
	ids := map[string]string{}
	for i, c := range []struct {
		rule   string
		sev    event.Severity
		tenant string
	}{{"r-a", "low", "acme"}, {"r-b", "high", "acme"}, {"r-c", "critical", "globex"}, {"r-a", "medium", "globex"}} {
		ids[fmt.Sprint(i)] = e.incident(t, c.rule, c.sev, c.tenant)
	}
	list := func(q string) (int, []string) {
		r := e.do(t, "GET", "/api/v1/incidents?"+q, viewerToken, "", nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		m := decode(t, r)
		var got []string
		for _, i := range m["incidents"].([]any) {
			got = append(got, i.(map[string]any)["rule_id"].(string)+"/"+i.(map[string]any)["tenant"].(string))
		}
		sort.Strings(got)
		return int(m["total"].(float64)), got
	}
	if n, got := list("severity=high"); n != 2 || !slices.Equal(got, []string{"r-b/acme", "r-c/globex"}) {
		t.Fatalf("severity>=high: %d %v", n, got)
	}
	if n, got := list("tenant=globex&rule_id=r-a"); n != 1 || !slices.Equal(got, []string{"r-a/globex"}) {
		t.Fatalf("tenant+rule: %d %v", n, got)
	}
	if _, err := e.mgr.Acknowledge(context.Background(), ids["1"], incident.Update{Actor: "a"}); err != nil {
		t.Fatal(err)
	}
	if n, got := list("status=acknowledged"); n != 1 || !slices.Equal(got, []string{"r-b/acme"}) {
		t.Fatalf("status: %d %v", n, got)
	}
	seen := map[string]bool{}
	for off := 0; off < 4; off++ {
		n, got := list(fmt.Sprintf("limit=1&offset=%d", off))
		if n != 4 || len(got) != 1 || seen[got[0]] {
			t.Fatalf("page %d: %d %v", off, n, got)
		}
		seen[got[0]] = true
	}
	if n, got := list("limit=2&offset=4"); n != 4 || len(got) != 0 {
		t.Fatalf("past the end: %d %v", n, got)
	}
}

func TestApprovalThroughAPIResumesPlaybook(t *testing.T) {
	e := newEnv(t)
	id := e.incident(t, "mcp-exfil", event.SeverityCritical, "acme")
	runID := playbook.RunID("contain", id)
	waitRunStatus(t, e.runner, runID, playbook.RunWaiting)
	base := "/api/v1/incidents/" + id + "/playbook-runs/" + runID + "/steps/"
	expectError(t, e.do(t, "POST", base+"approve-containment/approve", viewerToken, "v", nil), 403)
	expectError(t, e.do(t, "POST", base+"no-such-step/approve", responderToken, "alice", nil), 404)
	expectError(t, e.do(t, "POST", "/api/v1/incidents/inc-other/playbook-runs/"+runID+"/steps/approve-containment/approve", responderToken, "alice", nil), 404)
	expectError(t, e.do(t, "POST", base+"revoke-session/approve", responderToken, "alice", nil), 409)
	r := e.do(t, "POST", base+"approve-containment/approve", responderToken, "alice", map[string]any{"note": "confirmed with the user"})
	if r.status != 200 {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	waitRunStatus(t, e.runner, runID, playbook.RunCompleted)
	e.gwMu.Lock()
	gw := slices.Clone(e.gw)
	e.gwMu.Unlock()
	if !slices.Equal(gw, []string{"POST /admin/sessions/s1/revoke"}) {
		t.Fatalf("gateway %v", gw)
	}
	expectError(t, e.do(t, "POST", base+"approve-containment/deny", responderToken, "bob", nil), 409)
	m := decode(t, e.do(t, "GET", "/api/v1/incidents/"+id, viewerToken, "", nil))
	runs := m["playbook_runs"].([]any)
	step := runs[0].(map[string]any)["steps"].([]any)[0].(map[string]any)
	if step["status"] != "approved" || step["actor"] != "alice via token:grafana" || step["note"] != "confirmed with the user" {
		t.Fatalf("approval step %v", step)
	}
	approved := false
	for _, a := range m["actions"].([]any) {
		am := a.(map[string]any)
		if am["kind"] == "approval" && am["outcome"] == "approved" && am["actor"] == "alice via token:grafana" {
			approved = true
		}
	}
	if !approved {
		t.Fatalf("no approval action by alice: %v", m["actions"])
	}
}

func TestNewRejectsBadTokens(t *testing.T) {
	e := newEnv(t)
	_, err := api.New(api.Config{Incidents: e.mgr, Queries: e.store, Tokens: []api.Token{{Name: "x", Role: "root", Value: "short"}}})
	if err == nil || !strings.Contains(err.Error(), "16 characters") || !strings.Contains(err.Error(), "role") {
		t.Fatalf("err = %v", err)
	}
}
