package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// tenantWorld is a database with the seed data set as tenant "default"
// and, unless alone, a second copy as tenant "globex" (five minutes
// earlier, so any leak changes an answer) plus an incident only globex has.
func tenantWorld(t *testing.T, base time.Time, alone bool, access *TenantAccess, analyzerURL string) (*App, *seed.Summary) {
	t.Helper()
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_tenants")
	sum, err := seed.SeedTenant(ctx, conn, db, base, "default")
	if err != nil {
		t.Fatal(err)
	}
	if !alone {
		if _, err := seed.SeedTenant(ctx, conn, db, base.Add(-5*time.Minute), "globex"); err != nil {
			t.Fatal(err)
		}
		insertIncident(t, conn, db, "globex", "inc-globex-only", base.Add(-30*time.Minute))
		insertCall(t, conn, db, "globex", "agent-globex-only", base.Add(-20*time.Minute))
	}
	app, err := New(Settings{ClickHouseAddress: chAddr, Database: db, Username: "default", TimeoutSeconds: 30,
		TenantAccess: access, AnalyzerURL: analyzerURL, AnalyzerToken: "tok-123"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Dispose)
	return app, sum
}

func insertIncident(t *testing.T, conn driver.Conn, db, tenant, id string, ts time.Time) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+".incidents (incident_id, version, tenant, rule_id, title, status, severity, first_seen, last_seen, created_at, updated_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(id, uint64(1), tenant, "mcp-exfil", "globex secret incident", "open", "critical", ts, ts, ts, ts); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// insertCall stores one tools/call of agent with arguments and result.
func insertCall(t *testing.T, conn driver.Conn, db, tenant, agent string, ts time.Time) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+".events (event_id, tenant, kind, ts, ts_ns, method, call_id, session_key, agent_id, server_name, tool_name, arguments, result, arguments_size, result_size, outcome, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("ev-"+agent, tenant, "message", ts, uint64(ts.UnixNano()), "tools/call", "ev-"+agent, agent+"-s0", agent, "filesystem", "read_file",
		`{"path":"/x"}`, `{"ok":true}`, uint32(13), uint32(11), "ok", ts); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestSecurityTenantScopedResources: a Grafana user mapped to tenant
// "default" gets, from every resource and every data source query type,
// exactly the answer of a database that holds only "default" — never a
// row of "globex" — and cannot read or act on a globex incident. Every
// registered resource must have a case here, so a new resource without a
// tenant scope fails this test.
func TestSecurityTenantScopedResources(t *testing.T) {
	stub := newAnalyzerStub(t, "tok-123")
	base := time.Now()
	access := &TenantAccess{Users: map[string][]string{"dana": {"default"}}, Roles: map[string][]string{"Admin": {AllTenants}}}
	alone, sum := tenantWorld(t, base, true, nil, stub.srv.URL)
	both, _ := tenantWorld(t, base, false, access, stub.srv.URL)
	root := &backend.User{Login: "root", Role: "Admin"} // every tenant
	dana := &backend.User{Login: "dana", Role: "Editor"}
	eve := &backend.User{Login: "eve", Role: "Editor"} // no tenant

	rng := "from=" + strconv.FormatInt(sum.Base.Add(-3*time.Hour).UnixMilli(), 10) + "&to=" + strconv.FormatInt(sum.Base.Add(time.Minute).UnixMilli(), 10)
	var queries []string
	for _, qt := range QueryTypes {
		queries = append(queries, `{"refId":"`+qt+`","queryType":"`+qt+`","intervalMs":60000}`)
	}
	queryBody := `{"from":"` + strconv.FormatInt(sum.Base.Add(-3*time.Hour).UnixMilli(), 10) + `","to":"` +
		strconv.FormatInt(sum.Base.Add(time.Minute).UnixMilli(), 10) + `","queries":[` + strings.Join(queries, ",") + `]}`

	// same: dana's answer on both tenants equals root's on "default" alone,
	// and root's on both differs (globex's data is there to leak).
	same := func(method, path, body string) func(t *testing.T) {
		return func(t *testing.T) {
			codeA, want := callResource(t, alone, method, path, root, body)
			codeS, got := callResource(t, both, method, path, dana, body)
			if codeA != http.StatusOK || codeS != http.StatusOK || !bytes.Equal(got, want) {
				t.Fatalf("%s %s: scoped %d %s\nwant %d %s", method, path, codeS, got, codeA, want)
			}
			if _, all := callResource(t, both, method, path, root, body); bytes.Equal(all, want) {
				t.Fatalf("%s %s: the unscoped answer does not show globex's data, so this case proves nothing", method, path)
			}
			if code, none := callResource(t, both, method, path, eve, body); code == http.StatusOK && bytes.Equal(none, want) {
				t.Fatalf("%s %s: an unmapped user got default's data", method, path)
			}
		}
	}
	refused := func(method, path string) func(t *testing.T) {
		return func(t *testing.T) {
			before := stub.count()
			code, b := callResource(t, both, method, path, dana, `{"note":"x"}`)
			if code != http.StatusNotFound {
				t.Fatalf("%s %s as dana: %d %s, want 404", method, path, code, b)
			}
			if stub.count() != before {
				t.Fatalf("%s %s reached the analyzer: %+v", method, path, stub.last())
			}
		}
	}
	cases := map[string]func(t *testing.T){
		"GET /me": func(t *testing.T) {
			_, b := callResource(t, both, http.MethodGet, "/me", dana, "")
			var me struct{ Tenants []string }
			if err := json.Unmarshal(b, &me); err != nil || len(me.Tenants) != 1 || me.Tenants[0] != "default" {
				t.Fatalf("/me %s", b)
			}
		},
		"GET /overview":       same(http.MethodGet, "/overview?"+rng, ""),
		"GET /agents":         same(http.MethodGet, "/agents?"+rng, ""),
		"GET /agents/{id}":    same(http.MethodGet, "/agents/"+seed.Agents[0].ID+"?"+rng, ""),
		"GET /agent-content":  same(http.MethodGet, "/agent-content?"+rng, ""),
		"GET /sessions":       same(http.MethodGet, "/sessions?"+rng, ""),
		"GET /sessions/{key}": same(http.MethodGet, "/sessions/"+url.PathEscape(sum.ExfilSession)+"?"+rng, ""),
		"GET /incidents":      same(http.MethodGet, "/incidents", ""),
		"GET /incidents/{id}": func(t *testing.T) {
			same(http.MethodGet, "/incidents/"+sum.ExfilIncident, "")(t)
			if code, b := callResource(t, both, http.MethodGet, "/incidents/inc-globex-only", dana, ""); code != http.StatusNotFound {
				t.Fatalf("globex incident as dana: %d %s", code, b)
			}
			if code, _ := callResource(t, both, http.MethodGet, "/incidents/inc-globex-only", root, ""); code != http.StatusOK {
				t.Fatalf("globex incident as root: %d", code)
			}
		},
		"POST /incidents/{id}/{action}": func(t *testing.T) {
			refused(http.MethodPost, "/incidents/inc-globex-only/acknowledge")(t)
			if code, b := callResource(t, both, http.MethodPost, "/incidents/"+sum.ExfilIncident+"/acknowledge", dana, `{}`); code != http.StatusOK || stub.last().Actor != "dana" {
				t.Fatalf("own incident: %d %s %+v", code, b, stub.last())
			}
		},
		"POST /incidents/{id}/playbook-runs/{run}/steps/{step}/{decision}": refused(http.MethodPost,
			"/incidents/inc-globex-only/playbook-runs/"+sum.ApprovalRun+"/steps/"+sum.ApprovalStep+"/approve"),
		"GET /detections":        same(http.MethodGet, "/detections?"+rng, ""),
		"GET /tools":             same(http.MethodGet, "/tools?"+rng, ""),
		"GET /tools/definitions": same(http.MethodGet, "/tools/definitions?server=filesystem&tool=read_file&"+rng, ""),
		"POST /query":            same(http.MethodPost, "/query", queryBody),
		"POST /rules/backtest": func(t *testing.T) {
			// dana reads "default" only: her backtest is over it, and
			// another tenant is refused before the analyzer is asked.
			before := stub.count()
			if code, b := callResource(t, both, http.MethodPost, "/rules/backtest", dana, `{"rule_id":"mcp-x","since":"1h","tenant":"globex"}`); code != http.StatusForbidden || stub.count() != before {
				t.Fatalf("backtest of globex as dana: %d %s, %d analyzer calls", code, b, stub.count()-before)
			}
			if code, b := callResource(t, both, http.MethodPost, "/rules/backtest", dana, `{"rule_id":"mcp-x","since":"1h"}`); code != http.StatusOK || stub.last().Body["tenant"] != "default" {
				t.Fatalf("backtest as dana: %d %s, analyzer got %+v", code, b, stub.last())
			}
			if code, b := callResource(t, both, http.MethodPost, "/rules/backtest", root, `{"rule_id":"mcp-x","since":"1h"}`); code != http.StatusOK || stub.last().Body["tenant"] != nil {
				t.Fatalf("backtest as root: %d %s, analyzer got %+v", code, b, stub.last())
			}
		},
		"GET /blast-radius": func(t *testing.T) {
			for _, subj := range []string{"server=filesystem&tool=read_file", "fingerprint=9f8e7d6c", "session=" + url.QueryEscape(sum.ExfilSession), "incident=" + sum.ExfilIncident} {
				same(http.MethodGet, "/blast-radius?"+subj+"&"+rng, "")(t)
			}
		},
	}
	for _, route := range both.Routes() {
		tc, ok := cases[route]
		if !ok {
			t.Errorf("resource %s has no tenant-scope case in this test: add one (and scope its queries)", route)
			continue
		}
		t.Run(route, tc)
	}
	// Naming another tenant is refused, in resources and in queries.
	for _, p := range []string{"/overview?tenant=globex&" + rng, "/incidents?tenant=globex", "/tools?tenant=globex"} {
		if code, b := callResource(t, both, http.MethodGet, p, dana, ""); code != http.StatusForbidden {
			t.Errorf("%s as dana: %d %s", p, code, b)
		}
	}
	resp, err := both.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{OrgID: 1, User: dana},
		Queries: []backend.DataQuery{{RefID: "A", QueryType: QueryIncidents, JSON: []byte(`{"tenant":"globex"}`),
			TimeRange: backend.TimeRange{From: sum.Base.Add(-3 * time.Hour), To: sum.Base.Add(time.Minute)}}},
	})
	if err != nil || resp.Responses["A"].Status != backend.StatusForbidden {
		t.Fatalf("tenant=globex query as dana: %v %+v", err, resp.Responses["A"])
	}
}

// TestSecurityTenantAccessMapping: orgs, roles and logins map to tenants
// (Grafana gives a plugin backend no teams); the union applies, "*" is
// every tenant, no tenantAccess is every tenant, and an unmatched user
// gets none.
func TestSecurityTenantAccessMapping(t *testing.T) {
	var none *TenantAccess
	if none.Scope(1, &backend.User{Login: "x"}) != nil {
		t.Fatal("no tenantAccess must mean every tenant")
	}
	ta := &TenantAccess{Default: []string{"shared"}, Orgs: map[string][]string{"2": {"acme"}},
		Roles: map[string][]string{"Admin": {AllTenants}, "Editor": {"ops"}}, Users: map[string][]string{"bob@example.com": {"globex", "acme"}}}
	for _, c := range []struct {
		org  int64
		user *backend.User
		want string
	}{
		{1, &backend.User{Login: "v", Role: "Viewer"}, "shared"},
		{2, &backend.User{Login: "v", Role: "Viewer"}, "acme,shared"},
		{2, &backend.User{Email: "bob@example.com", Role: "Editor"}, "acme,globex,ops,shared"},
		{1, &backend.User{Login: "root", Role: "Admin"}, "*"},
		{1, nil, "shared"},
	} {
		got := ta.Scope(c.org, c.user)
		s := strings.Join(got, ",")
		if got == nil {
			s = "*"
		}
		if s != c.want {
			t.Errorf("org %d %+v: %q, want %q", c.org, c.user, s, c.want)
		}
	}
	if got := (&TenantAccess{}).Scope(1, &backend.User{Login: "eve"}); got == nil || len(got) != 0 {
		t.Fatalf("unmatched user: %v", got)
	}
	bad := &TenantAccess{Orgs: map[string][]string{"main": {"a"}}, Roles: map[string][]string{"Owner": {"a"}}, Users: map[string][]string{"x": {" a"}}}
	err := bad.Validate()
	for _, want := range []string{`"main" is not an org id`, `"Owner" is not Viewer, Editor or Admin`, `tenant " a"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v lacks %s", err, want)
		}
	}
	if _, err := LoadSettings(backend.AppInstanceSettings{JSONData: []byte(`{"tenantAccess":{"roles":{"Owner":["a"]}}}`)}); err == nil {
		t.Fatal("invalid tenantAccess accepted")
	}
}

var sqlPayloads = []string{
	`' OR 1=1 --`,
	`default' OR tenant != '`,
	`x'); DROP TABLE events; --`,
	`\' OR \'1\'=\'1`,
	`1 UNION ALL SELECT * FROM system.tables`,
	"x\x00y",
	`%' AND sleep(3) AND '%`,
	"`events`",
}

// TestSecuritySQLInjectionPluginQueries sends SQL fragments in every
// parameter of every resource and every field of every data source query
// type, through a connection that records each statement (the query
// corpus recorder): no payload ever appears in SQL text (only as a bound
// argument), no request fails with 500, filters on a payload match
// nothing, and the data is intact afterwards.
func TestSecuritySQLInjectionPluginQueries(t *testing.T) {
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_sqli")
	sum, err := seed.Seed(ctx, conn, db, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(conn, db)
	app := &App{settings: Settings{Database: db}, store: &Store{conn: rec, db: db, timeout: 30 * time.Second}, analyzer: NewAnalyzer("", ""), now: time.Now}
	app.CallResourceHandler = httpadapter.New(app.routes())
	admin := &backend.User{Login: "root", Role: "Admin"}
	rng := "from=" + strconv.FormatInt(sum.Base.Add(-3*time.Hour).UnixMilli(), 10) + "&to=" + strconv.FormatInt(sum.Base.Add(time.Minute).UnixMilli(), 10)
	count := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()

	for _, p := range sqlPayloads {
		q, pe := url.QueryEscape(p), url.PathEscape(p)
		all := "tenant=" + q + "&agent=" + q + "&server=" + q + "&tool=" + q + "&" + rng
		var fields []string
		for _, k := range []string{"tenant", "agent", "server", "tool", "status", "severity", "rule"} {
			b, _ := json.Marshal(p)
			fields = append(fields, `"`+k+`":`+string(b))
		}
		var queries []string
		for _, qt := range QueryTypes {
			queries = append(queries, `{"refId":"`+qt+`","queryType":"`+qt+`",`+strings.Join(fields, ",")+`}`)
		}
		queryBody := `{"from":"` + strconv.FormatInt(sum.Base.Add(-3*time.Hour).UnixMilli(), 10) + `","to":"` +
			strconv.FormatInt(sum.Base.Add(time.Minute).UnixMilli(), 10) + `","queries":[` + strings.Join(queries, ",") + `]}`
		empty := func(key string) func(b []byte) bool {
			return func(b []byte) bool {
				var m map[string]json.RawMessage
				return json.Unmarshal(b, &m) == nil && (string(m[key]) == "[]" || string(m[key]) == "null")
			}
		}
		anyBody := func([]byte) bool { return true }
		type req struct {
			method, path, body string
			ok                 func([]byte) bool // nil: a 404 is wanted (or status)
			status             int
		}
		cases := map[string][]req{
			"GET /me":             {{"GET", "/me?tenant=" + q, "", anyBody, 0}},
			"GET /overview":       {{"GET", "/overview?" + all, "", anyBody, 0}},
			"GET /agents":         {{"GET", "/agents?" + all, "", empty("agents"), 0}},
			"GET /agents/{id}":    {{"GET", "/agents/" + pe + "?" + rng, "", empty("events"), 0}},
			"GET /agent-content":  {{"GET", "/agent-content?" + all, "", anyBody, 0}},
			"GET /sessions":       {{"GET", "/sessions?" + all, "", empty("sessions"), 0}},
			"GET /sessions/{key}": {{"GET", "/sessions/" + pe + "?" + rng, "", empty("events"), 0}},
			"GET /incidents": {{"GET", "/incidents?status=" + q + "&severity=" + q + "&rule_id=" + q + "&tenant=" + q + "&agent=" + q, "", empty("incidents"), 0},
				{"GET", "/incidents?rule_id=" + q, "", empty("incidents"), 0}},
			"GET /incidents/{id}":           {{"GET", "/incidents/" + pe, "", nil, 0}},
			"POST /incidents/{id}/{action}": {{"POST", "/incidents/" + pe + "/acknowledge", "{}", nil, 0}},
			"POST /incidents/{id}/playbook-runs/{run}/steps/{step}/{decision}": {{"POST", "/incidents/" + pe + "/playbook-runs/" + pe + "/steps/" + pe + "/approve", "{}", nil, 0}},
			"GET /detections":        {{"GET", "/detections?" + all, "", empty("rules"), 0}},
			"GET /tools":             {{"GET", "/tools?" + all, "", empty("tools"), 0}},
			"GET /tools/definitions": {{"GET", "/tools/definitions?" + all, "", empty("definitions"), 0}},
			"POST /query":            {{"POST", "/query", queryBody, anyBody, 0}},
			"GET /blast-radius": {{"GET", "/blast-radius?server=" + q + "&tool=" + q + "&" + rng, "", empty("agents"), 0},
				{"GET", "/blast-radius?server=filesystem&tool=read_file&definition_hash=" + q + "&" + rng, "", nil, 0},
				{"GET", "/blast-radius?session=" + q + "&" + rng, "", empty("agents"), 0},
				{"GET", "/blast-radius?incident=" + q + "&" + rng, "", empty("agents"), 0},
				{"GET", "/blast-radius?fingerprint=" + q + "&" + rng, "", nil, http.StatusBadRequest}},
			// Forwarded to the analyzer (none here: 503); the plugin runs no SQL for it.
			"POST /rules/backtest": {{"POST", "/rules/backtest", `{"rule_id":` + jsonString(p) + `,"since":"1h","tenant":` + jsonString(p) + `}`, nil, http.StatusServiceUnavailable}},
		}
		for _, route := range app.Routes() {
			reqs, ok := cases[route]
			if !ok {
				t.Fatalf("resource %s has no SQL injection case in this test: add one", route)
			}
			for _, r := range reqs {
				code, b := callResource(t, app, r.method, r.path, admin, r.body)
				switch {
				case r.status != 0:
					if code != r.status {
						t.Errorf("%s %s: %d %s, want %d", r.method, r.path, code, b, r.status)
					}
				case code >= 500:
					t.Errorf("%s %s: %d %s", r.method, r.path, code, b)
				case r.ok == nil && code != http.StatusNotFound:
					t.Errorf("%s %s: %d %s, want 404", r.method, r.path, code, b)
				case r.ok != nil && (code != http.StatusOK || !r.ok(b)):
					t.Errorf("%s %s: %d %s", r.method, r.path, code, b)
				}
				if route == "POST /query" && bytes.Contains(b, []byte(`"status":500`)) {
					t.Errorf("a query failed on %q: %s", p, b)
				}
			}
		}
	}
	rec.mu.Lock()
	entries := rec.c.Entries
	rec.mu.Unlock()
	if len(entries) < 100 {
		t.Fatalf("only %d statements recorded", len(entries))
	}
	for _, e := range entries {
		for _, p := range sqlPayloads {
			if strings.Contains(e.SQL, p) {
				t.Errorf("%s: payload %q is in the SQL text: %s", e.Site, p, e.SQL)
			}
		}
	}
	if after := count(); after != before {
		t.Fatalf("events %d → %d", before, after)
	}
}

// TestSecurityRoleLimits: a Grafana Viewer (or a request without a user)
// cannot use any resource that changes something (every POST but the
// read-only /query), and the analyzer never hears of it.
func TestSecurityRoleLimits(t *testing.T) {
	stub := newAnalyzerStub(t, "tok-123")
	fx := seeded(t, Settings{AnalyzerURL: stub.srv.URL, AnalyzerToken: "tok-123"})
	params := strings.NewReplacer("{id}", fx.sum.ExfilIncident, "{action}", "acknowledge", "{run}", fx.sum.ApprovalRun,
		"{step}", fx.sum.ApprovalStep, "{decision}", "approve")
	n := 0
	for _, route := range fx.app.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if method == http.MethodGet || path == "/query" {
			continue
		}
		for _, u := range []*backend.User{{Login: "vera", Role: "Viewer"}, {Login: "nobody"}, nil} {
			code, b := callResource(t, fx.app, method, params.Replace(path), u, `{"note":"x"}`)
			if code != http.StatusForbidden {
				t.Errorf("%s as %+v: %d %s", route, u, code, b)
			}
			n++
		}
	}
	if n < 6 {
		t.Fatalf("only %d write requests tried", n)
	}
	if stub.count() != 0 {
		t.Fatalf("the analyzer was called: %+v", stub.last())
	}
	if code, _ := callResource(t, fx.app, http.MethodPost, params.Replace("/incidents/{id}/{action}"), &backend.User{Login: "ed", Role: "Editor"}, `{}`); code != http.StatusOK || stub.count() != 1 {
		t.Fatalf("editor: %d %+v", code, stub.last())
	}
}

func (s *analyzerStub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
