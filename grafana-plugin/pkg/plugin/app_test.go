package plugin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	jsoniter "github.com/json-iterator/go"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/chserver"
)

// callResource sends one resource request through the SDK's CallResource
// path, as Grafana does, with the given Grafana user.
func callResource(t *testing.T, a *App, method, path string, user *backend.User, body string) (int, []byte) {
	t.Helper()
	var got *backend.CallResourceResponse
	var buf []byte
	sender := backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error {
		if got == nil {
			got = r
		}
		buf = append(buf, r.Body...)
		return nil
	})
	p := path
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	req := &backend.CallResourceRequest{
		PluginContext: backend.PluginContext{PluginID: ID, User: user},
		Path:          p, Method: method, URL: path, Body: []byte(body),
		Headers: map[string][]string{"Content-Type": {"application/json"}},
	}
	if err := a.CallResource(context.Background(), req, sender); err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatalf("%s %s: no response", method, path)
	}
	return got.Status, buf
}

// analyzerStub stands in for the analyzer's HTTP API (internal/api,
// docs/openapi.yaml): the plugin is a separate Go module and its tests must
// not depend on the root module, so this implements the documented incident
// endpoints over a real HTTP server and records what the plugin sent.
type analyzerStub struct {
	mu    sync.Mutex
	calls []stubCall
	srv   *httptest.Server
}

type stubCall struct {
	Method, Path, Auth, Actor string
	Body                      map[string]any
}

func newAnalyzerStub(t *testing.T, token string) *analyzerStub {
	st := &analyzerStub{}
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			st.mu.Lock()
			st.calls = append(st.calls, stubCall{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-Mcpwatch-Actor"), body})
			st.mu.Unlock()
			h(w, r)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("POST /api/v1/incidents/{id}/{action}", auth(func(w http.ResponseWriter, r *http.Request) {
		status := map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[r.PathValue("action")]
		if status == "" {
			http.Error(w, `{"error":"unsupported"}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"incident": map[string]any{"incident_id": r.PathValue("id"), "status": status, "updated_by": r.Header.Get("X-Mcpwatch-Actor")}})
	}))
	mux.HandleFunc("POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/{decision}", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{"run_id": r.PathValue("run"), "status": "running",
			"steps": []any{map[string]any{"step": r.PathValue("step"), "status": "approved", "actor": r.Header.Get("X-Mcpwatch-Actor")}}}})
	}))
	mux.HandleFunc("GET /api/v1/incidents/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"incident": map[string]any{"incident_id": r.PathValue("id")}, "findings": []any{}, "actions": []any{},
			"playbook_runs": []any{map[string]any{"run_id": "run-live", "playbook": "contain-agent", "status": "waiting_approval",
				"steps": []any{map[string]any{"step": "page-oncall", "status": "waiting_approval", "started_at": "2026-01-02T03:04:05Z"}}}}})
	}))
	mux.HandleFunc("POST /api/v1/rules/backtest", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"rule_id": "mcp-x", "events": 3, "diff": map[string]any{"only_new": 1, "only_deployed": 0, "both": 2, "rows": []any{}}})
	}))
	st.srv = httptest.NewServer(mux)
	t.Cleanup(st.srv.Close)
	return st
}

func (s *analyzerStub) last() stubCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return stubCall{}
	}
	return s.calls[len(s.calls)-1]
}

func TestResourcesAndIncidentActions(t *testing.T) {
	stub := newAnalyzerStub(t, "tok-123")
	fx := seeded(t, Settings{AnalyzerURL: stub.srv.URL, AnalyzerToken: "tok-123"})
	a, sum := fx.app, fx.sum
	rng := "from=" + strconv.FormatInt(sum.Base.Add(-3*time.Hour).UnixMilli(), 10) + "&to=" + strconv.FormatInt(sum.Base.Add(time.Minute).UnixMilli(), 10)
	viewer := &backend.User{Login: "vera", Role: "Viewer"}
	editor := &backend.User{Login: "alice", Role: "Editor"}

	get := func(path string, out any) {
		t.Helper()
		code, b := callResource(t, a, http.MethodGet, path, viewer, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, code, b)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var ov struct {
		Totals        Totals            `json:"totals"`
		OpenIncidents map[string]uint64 `json:"open_incidents"`
		Series        []Point           `json:"series"`
	}
	get("overview?"+rng, &ov)
	if int(ov.Totals.Calls) != sum.Calls || int(ov.OpenIncidents["high"]) != sum.OpenIncidentsBySeverity["high"] || len(ov.Series) == 0 {
		t.Errorf("overview = %+v", ov)
	}
	var ag struct {
		Graph     Graph        `json:"graph"`
		Incidents []Incident   `json:"incidents"`
		Sessions  []SessionRow `json:"sessions"`
	}
	get("agents/agent-alpha?"+rng, &ag)
	if len(ag.Graph.Nodes) == 0 || len(ag.Incidents) != 1 || ag.Incidents[0].IncidentID != sum.ExfilIncident || len(ag.Sessions) == 0 {
		t.Errorf("agent detail: %d nodes, incidents %+v, %d sessions", len(ag.Graph.Nodes), ag.Incidents, len(ag.Sessions))
	}
	var det struct {
		Incident      Incident       `json:"incident"`
		Findings      []Finding      `json:"findings"`
		Events        []Event        `json:"events"`
		PlaybookSteps []PlaybookStep `json:"playbook_steps"`
	}
	get("incidents/"+sum.ExfilIncident, &det)
	if det.Incident.FindingCount != 2 || len(det.Findings) != 2 || len(det.Events) != len(sum.ExfilEventIDs) {
		t.Errorf("incident detail: count %d, %d findings, %d events", det.Incident.FindingCount, len(det.Findings), len(det.Events))
	}
	// With the analyzer reachable, its live playbook runs are shown.
	if len(det.PlaybookSteps) != 1 || det.PlaybookSteps[0].RunID != "run-live" || det.PlaybookSteps[0].Status != StepWaitingApproval {
		t.Errorf("steps from analyzer runs = %+v", det.PlaybookSteps)
	}
	// Without it, steps come from the actions audit log (approval "requested" = waiting).
	offline := a.settings
	offline.AnalyzerURL = ""
	oa, err := New(offline)
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Dispose()
	code, b := callResource(t, oa, http.MethodGet, "incidents/"+sum.ExfilIncident, viewer, "")
	if err := json.Unmarshal(b, &det); code != http.StatusOK || err != nil {
		t.Fatalf("incident without analyzer = %d %s", code, b)
	}
	var awaiting *PlaybookStep
	for i := range det.PlaybookSteps {
		if det.PlaybookSteps[i].Status == StepWaitingApproval {
			awaiting = &det.PlaybookSteps[i]
		}
	}
	if awaiting == nil || awaiting.RunID != sum.ApprovalRun || awaiting.Step != sum.ApprovalStep || awaiting.Playbook != "contain-agent" {
		t.Fatalf("playbook steps = %+v", det.PlaybookSteps)
	}
	if code, _ := callResource(t, oa, http.MethodPost, "incidents/"+sum.ExfilIncident+"/acknowledge", editor, ""); code != http.StatusServiceUnavailable {
		t.Errorf("action without analyzer URL = %d, want 503", code)
	}
	if code, _ := callResource(t, a, http.MethodGet, "incidents/nope", viewer, ""); code != http.StatusNotFound {
		t.Errorf("unknown incident = %d, want 404", code)
	}
	var tl struct {
		Definitions []ToolDefinition `json:"definitions"`
	}
	get("tools/definitions?server=filesystem&tool=read_file&"+rng, &tl)
	if len(tl.Definitions) != 2 || tl.Definitions[1].Diff == nil || !reflect.DeepEqual(tl.Definitions[1].Diff.ParamsAdded, []string{"note"}) {
		t.Errorf("definitions = %+v", tl.Definitions)
	}
	if code, _ := callResource(t, a, http.MethodGet, "overview?from=x", viewer, ""); code != http.StatusBadRequest {
		t.Errorf("bad from = %d, want 400", code)
	}

	// Viewers may not act; nothing reaches the analyzer.
	for _, p := range []string{"incidents/" + sum.ExfilIncident + "/acknowledge", "incidents/" + sum.ExfilIncident + "/playbook-runs/r/steps/s/approve"} {
		if code, _ := callResource(t, a, http.MethodPost, p, viewer, `{}`); code != http.StatusForbidden {
			t.Errorf("viewer POST %s = %d, want 403", p, code)
		}
		if code, _ := callResource(t, a, http.MethodPost, p, nil, `{}`); code != http.StatusForbidden {
			t.Errorf("anonymous POST %s = %d, want 403", p, code)
		}
	}
	if c := stub.last(); c.Method != "" && c.Method != http.MethodGet {
		t.Fatalf("analyzer got %+v from a viewer", c)
	}
	code, b = callResource(t, a, http.MethodPost, "incidents/"+sum.ExfilIncident+"/acknowledge", editor, `{"note":"looking"}`)
	if code != http.StatusOK || !strings.Contains(string(b), `"acknowledged"`) {
		t.Fatalf("acknowledge = %d %s", code, b)
	}
	c := stub.last()
	if c.Path != "/api/v1/incidents/"+sum.ExfilIncident+"/acknowledge" || c.Auth != "Bearer tok-123" || c.Actor != "alice" || c.Body["note"] != "looking" {
		t.Errorf("analyzer got %+v", c)
	}
	admin := &backend.User{Login: "root", Role: "Admin"}
	code, _ = callResource(t, a, http.MethodPost, "incidents/"+sum.ExfilIncident+"/playbook-runs/"+awaiting.RunID+"/steps/"+awaiting.Step+"/approve", admin, "")
	if c := stub.last(); code != http.StatusOK || c.Path != "/api/v1/incidents/"+sum.ExfilIncident+"/playbook-runs/"+sum.ApprovalRun+"/steps/"+sum.ApprovalStep+"/approve" || c.Actor != "root" {
		t.Errorf("approve = %d, analyzer got %+v", code, c)
	}
	if code, _ := callResource(t, a, http.MethodPost, "incidents/x/delete", editor, ""); code != http.StatusNotFound {
		t.Errorf("unknown action = %d", code)
	}
	var me map[string]any
	code, b = callResource(t, a, http.MethodGet, "me", editor, "")
	if err := json.Unmarshal(b, &me); err != nil || code != 200 || me["canAct"] != true || me["login"] != "alice" {
		t.Errorf("me = %d %s", code, b)
	}

	// A wrong token: the analyzer's 401 is passed through, not hidden.
	bst := a.settings
	bst.AnalyzerToken = "wrong"
	bad, err := New(bst)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Dispose()
	if code, _ := callResource(t, bad, http.MethodPost, "incidents/"+sum.ExfilIncident+"/resolve", editor, ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token = %d, want 401", code)
	}
}

func TestQueryDataEveryTypeOneResponsePerRefID(t *testing.T) {
	fx := seeded(t, Settings{})
	f := fx.scope()
	var qs []backend.DataQuery
	// Query types that need more than a time range (blast_radius: a subject).
	extra := map[string]string{QueryBlastRadius: `,"fingerprint":"9f8e7d6c"`}
	for _, qt := range QueryTypes {
		qs = append(qs, backend.DataQuery{RefID: qt, QueryType: qt, TimeRange: backend.TimeRange{From: f.From, To: f.To}, JSON: []byte(`{"queryType":"` + qt + `"` + extra[qt] + `}`)})
	}
	qs = append(qs, backend.DataQuery{RefID: "bad", TimeRange: backend.TimeRange{From: f.From, To: f.To}, JSON: []byte(`{"queryType":"nope"}`)})
	resp, err := fx.app.QueryData(context.Background(), &backend.QueryDataRequest{Queries: qs})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Responses) != len(qs) {
		t.Fatalf("%d responses for %d queries", len(resp.Responses), len(qs))
	}
	for _, qt := range QueryTypes {
		r := resp.Responses[qt]
		if r.Error != nil || len(r.Frames) == 0 || r.Frames[0].Rows() == 0 {
			t.Errorf("%s: err %v, %d frames", qt, r.Error, len(r.Frames))
		}
	}
	if resp.Responses["bad"].Error == nil {
		t.Error("unknown query type did not fail its own response")
	}
	g := resp.Responses[QueryAgentGraph].Frames
	if len(g) != 2 || g[0].Name != "nodes" || g[1].Name != "edges" {
		t.Fatalf("agent graph frames = %v", g)
	}
	for _, name := range []string{"id", "title", "subTitle", "mainStat"} {
		if _, i := g[0].FieldByName(name); i < 0 {
			t.Errorf("nodes frame lacks %s", name)
		}
	}
	for _, name := range []string{"id", "source", "target"} {
		if _, i := g[1].FieldByName(name); i < 0 {
			t.Errorf("edges frame lacks %s", name)
		}
	}
	calls := resp.Responses[QueryCallsOverTime].Frames[0]
	if calls.Fields[0].Type() != data.FieldTypeTime || calls.Fields[1].Config.Unit != "short" {
		t.Errorf("calls frame field types: %v %v", calls.Fields[0].Type(), calls.Fields[1].Config)
	}
	var total uint64
	for i := 0; i < calls.Rows(); i++ {
		total += calls.Fields[1].At(i).(uint64)
	}
	if int(total) != fx.sum.Calls {
		t.Errorf("calls_over_time total = %d, want %d", total, fx.sum.Calls)
	}
	// Variable scoping: an agent filter narrows top_agents to that agent.
	r, _ := fx.app.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{RefID: "A",
		TimeRange: backend.TimeRange{From: f.From, To: f.To}, JSON: []byte(`{"queryType":"top_agents","agent":"agent-bravo"}`)}}})
	if fr := r.Responses["A"].Frames[0]; fr.Rows() != 1 || fr.Fields[0].At(0) != "agent-bravo" {
		t.Errorf("agent-scoped top_agents = %v", fr)
	}

	// The same through the /query resource the frontend data source uses.
	body := `{"from":"` + strconv.FormatInt(f.From.UnixMilli(), 10) + `","to":"` + strconv.FormatInt(f.To.UnixMilli(), 10) + `","queries":[{"refId":"A","queryType":"top_tools"},{"refId":"B","queryType":"nope"}]}`
	code, b := callResource(t, fx.app, http.MethodPost, "query", &backend.User{Role: "Viewer"}, body)
	if code != http.StatusOK {
		t.Fatalf("query = %d %s", code, b)
	}
	var qdr backend.QueryDataResponse
	if err := jsoniter.Unmarshal(b, &qdr); err != nil {
		t.Fatal(err)
	}
	if qdr.Responses["A"].Error != nil || qdr.Responses["A"].Frames[0].Rows() == 0 || qdr.Responses["B"].Error == nil {
		t.Errorf("query resource = %s", b)
	}
}

func TestCheckHealthSaysWhatIsWrong(t *testing.T) {
	stub := newAnalyzerStub(t, "t")
	fx := seeded(t, Settings{AnalyzerURL: stub.srv.URL, AnalyzerToken: "t"})
	check := func(st Settings) *backend.CheckHealthResult {
		t.Helper()
		a, err := New(st)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Dispose()
		r, err := a.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	good := fx.app.settings
	if r := check(good); r.Status != backend.HealthStatusOk || !strings.Contains(r.Message, "analyzer API") {
		t.Errorf("healthy = %v %q", r.Status, r.Message)
	}
	cases := []struct {
		name string
		mod  func(*Settings)
		want string
	}{
		{"cannot connect", func(s *Settings) { s.ClickHouseAddress = "127.0.0.1:1" }, "cannot connect to ClickHouse at 127.0.0.1:1"},
		{"wrong password", func(s *Settings) { s.Username, s.Password = "mcpwatch", "wrong" }, "authentication failed for user \"mcpwatch\""},
		{"unknown user", func(s *Settings) { s.Username = "nobody" }, "authentication failed"},
		{"database missing", func(s *Settings) { s.Database = "no_such_db" }, "database \"no_such_db\" does not exist"},
		{"analyzer down", func(s *Settings) { s.AnalyzerURL = "http://127.0.0.1:1" }, "cannot reach analyzer API"},
	}
	for _, c := range cases {
		st := good
		c.mod(&st)
		if r := check(st); r.Status != backend.HealthStatusError || !strings.Contains(r.Message, c.want) {
			t.Errorf("%s: %v %q, want it to contain %q", c.name, r.Status, r.Message, c.want)
		}
	}
	// Right password for the second user works.
	st := good
	st.Username, st.Password = "mcpwatch", "secret"
	if r := check(st); r.Status != backend.HealthStatusOk {
		t.Errorf("mcpwatch user: %q", r.Message)
	}
	// Tables missing: an empty database.
	if err := chserver.Exec(context.Background(), chAddr, "CREATE DATABASE IF NOT EXISTS "+fx.db+"_empty"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chserver.Exec(context.Background(), chAddr, "DROP DATABASE IF EXISTS "+fx.db+"_empty") })
	if err := chserver.Exec(context.Background(), chAddr, "CREATE TABLE "+fx.db+"_empty.events (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	st = good
	st.Database = fx.db + "_empty"
	if r := check(st); r.Status != backend.HealthStatusError || !strings.Contains(r.Message, "missing tables: tool_definitions, findings, incidents, actions, calls_per_minute") {
		t.Errorf("missing tables: %q", r.Message)
	}
	// No analyzer URL: healthy, but says actions are disabled.
	st = good
	st.AnalyzerURL = ""
	if r := check(st); r.Status != backend.HealthStatusOk || !strings.Contains(r.Message, "incident actions are disabled") {
		t.Errorf("no analyzer: %q", r.Message)
	}
}

func TestLoadSettingsRejectsBadDatabaseName(t *testing.T) {
	_, err := LoadSettings(backend.AppInstanceSettings{JSONData: []byte(`{"database":"x; DROP TABLE y"}`)})
	if err == nil {
		t.Fatal("accepted a database name that is not an identifier")
	}
	st, err := LoadSettings(backend.AppInstanceSettings{JSONData: []byte(`{"clickhouseAddress":"ch:9000","analyzerUrl":"http://a/"}`),
		DecryptedSecureJSONData: map[string]string{"password": "p", "analyzerToken": "t"}})
	if err != nil || st.Database != "mcpwatch" || st.Password != "p" || st.AnalyzerToken != "t" || st.AnalyzerURL != "http://a" {
		t.Errorf("settings = %+v, %v", st, err)
	}
}
