package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// twoTenants stores a critical incident (with a playbook run waiting for
// approval) in each of acme and globex.
type twoTenants struct {
	acme, globex       string // incident ids
	acmeRun, globexRun string
}

func (e *env) twoTenants(t *testing.T) twoTenants {
	t.Helper()
	var tt twoTenants
	tt.acme = e.incident(t, "mcp-exfil", event.SeverityCritical, "acme")
	tt.globex = e.incident(t, "mcp-exfil", event.SeverityCritical, "globex")
	tt.acmeRun, tt.globexRun = playbook.RunID("contain", tt.acme), playbook.RunID("contain", tt.globex)
	waitRunStatus(t, e.runner, tt.acmeRun, playbook.RunWaiting)
	waitRunStatus(t, e.runner, tt.globexRun, playbook.RunWaiting)
	return tt
}

func (e *env) stored(t *testing.T, id string) incident.Incident {
	t.Helper()
	inc, err := e.store.GetIncident(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}

// TestSecurityTenantScopedReaders: a token scoped to acme reaches none of
// globex's data through any route. Every registered route must have a case
// here (or be tenant-free in the server's own declaration and here), so a
// new route without a tenant check fails this test.
func TestSecurityTenantScopedReaders(t *testing.T) {
	e := newEnv(t)
	tt := e.twoTenants(t)
	missing := e.do(t, "GET", "/api/v1/incidents/inc-does-not-exist", acmeViewerToken, "", nil)
	expectError(t, missing, http.StatusNotFound)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body := map[string]any{"note": "n", "assignee": "mallory", "until": until}

	// notFoundLikeMissing: the other tenant's incident answers exactly like
	// a missing one (no existence oracle) and stays as it was.
	notFoundLikeMissing := func(method, path string) func(t *testing.T) {
		return func(t *testing.T) {
			before := e.stored(t, tt.globex)
			r := e.do(t, method, path, acmeResponderToken, "", body)
			if r.status != http.StatusNotFound || !bytes.Equal(r.body, missing.body) {
				t.Fatalf("%s %s as acme: %d %s, want the 404 of a missing incident %s", method, path, r.status, r.body, missing.body)
			}
			if after := e.stored(t, tt.globex); after.Version != before.Version {
				t.Fatalf("globex incident changed: %+v", after)
			}
			if run, _ := e.runner.Get(tt.globexRun); run.Status != playbook.RunWaiting {
				t.Fatalf("globex run %s", run.Status)
			}
		}
	}
	noGlobex := func(path string) func(t *testing.T) {
		return func(t *testing.T) {
			r := e.do(t, "GET", path, acmeViewerToken, "", nil)
			if r.status != http.StatusOK || bytes.Contains(r.body, []byte("globex")) {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
		}
	}
	incPath := "/api/v1/incidents/" + tt.globex
	step := incPath + "/playbook-runs/" + tt.globexRun + "/steps/approve-containment/"
	cases := map[string]func(t *testing.T){
		"GET /healthz":             noGlobex("/healthz"),
		"GET /readyz":              noGlobex("/readyz"),
		"GET /metrics":             noGlobex("/metrics"),
		"GET /api/v1/openapi.yaml": noGlobex("/api/v1/openapi.yaml"),
		"GET /api/v1/rules":        noGlobex("/api/v1/rules"),
		"GET /api/v1/incidents": func(t *testing.T) {
			for _, q := range []string{"", "?severity=critical", "?rule_id=mcp-exfil", "?status=open&limit=500"} {
				m := decode(t, e.do(t, "GET", "/api/v1/incidents"+q, acmeViewerToken, "", nil))
				incs := m["incidents"].([]any)
				if m["total"] != float64(1) || len(incs) != 1 || incs[0].(map[string]any)["tenant"] != "acme" {
					t.Fatalf("list%s as acme: %v", q, m)
				}
			}
			expectError(t, e.do(t, "GET", "/api/v1/incidents?tenant=globex", acmeViewerToken, "", nil), http.StatusForbidden)
			// An unscoped token still sees both.
			if m := decode(t, e.do(t, "GET", "/api/v1/incidents", viewerToken, "", nil)); m["total"] != float64(2) {
				t.Fatalf("unscoped list: %v", m)
			}
		},
		"GET /api/v1/incidents/{id}": func(t *testing.T) {
			r := e.do(t, "GET", incPath, acmeViewerToken, "", nil)
			if r.status != http.StatusNotFound || !bytes.Equal(r.body, missing.body) {
				t.Fatalf("globex incident as acme: %d %s", r.status, r.body)
			}
			if r := e.do(t, "GET", "/api/v1/incidents/"+tt.acme, acmeViewerToken, "", nil); r.status != http.StatusOK {
				t.Fatalf("own incident: %d %s", r.status, r.body)
			}
		},
		"POST /api/v1/incidents/{id}/acknowledge": notFoundLikeMissing("POST", incPath+"/acknowledge"),
		"POST /api/v1/incidents/{id}/resolve":     notFoundLikeMissing("POST", incPath+"/resolve"),
		"POST /api/v1/incidents/{id}/suppress":    notFoundLikeMissing("POST", incPath+"/suppress"),
		"POST /api/v1/incidents/{id}/assign":      notFoundLikeMissing("POST", incPath+"/assign"),
		"POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/approve": func(t *testing.T) {
			notFoundLikeMissing("POST", step+"approve")(t)
			// Its own incident with the other tenant's run: still not found.
			mixed := "/api/v1/incidents/" + tt.acme + "/playbook-runs/" + tt.globexRun + "/steps/approve-containment/approve"
			expectError(t, e.do(t, "POST", mixed, acmeResponderToken, "", nil), http.StatusNotFound)
			if run, _ := e.runner.Get(tt.globexRun); run.Status != playbook.RunWaiting {
				t.Fatalf("globex run %s", run.Status)
			}
		},
		"POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/deny": notFoundLikeMissing("POST", step+"deny"),
		"POST /api/v1/alerts/grafana": func(t *testing.T) {
			// Its own environment: the incident it opens must not show up
			// in the other cases' lists.
			e := newEnv(t)
			alert := func(tenant string) map[string]any {
				l := map[string]string{"alertname": "scope", "severity": "high"}
				if tenant != "" {
					l["tenant"] = tenant
				}
				return grafanaNotification("firing", l, "fp-scope-"+tenant, t0)
			}
			count := func() any {
				return decode(t, e.do(t, "GET", "/api/v1/incidents?rule_id=grafana-alert:scope", viewerToken, "", nil))["total"]
			}
			expectError(t, e.do(t, "POST", "/api/v1/alerts/grafana", acmeResponderToken, "", alert("globex")), http.StatusForbidden)
			// Scoped to two tenants: the alert must say which.
			expectError(t, e.do(t, "POST", "/api/v1/alerts/grafana", acmeResponderToken, "", alert("")), http.StatusBadRequest)
			if n := count(); n != float64(0) {
				t.Fatalf("refused alerts made %v incidents", n)
			}
			if r := e.do(t, "POST", "/api/v1/alerts/grafana", acmeResponderToken, "", alert("acme")); r.status != http.StatusAccepted {
				t.Fatalf("acme alert as acme: %d %s", r.status, r.body)
			}
			m := decode(t, e.do(t, "GET", "/api/v1/incidents?rule_id=grafana-alert:scope", viewerToken, "", nil))
			if incs := m["incidents"].([]any); len(incs) != 1 || incs[0].(map[string]any)["tenant"] != "acme" {
				t.Fatalf("incidents of the acme alert: %v", m)
			}
		},
		"POST /api/v1/rules/backtest": func(t *testing.T) {
			req := func(tenant string) map[string]any {
				m := map[string]any{"rule_id": "mcp-path-traversal", "since": "1h"}
				if tenant != "" {
					m["tenant"] = tenant
				}
				return m
			}
			expectError(t, e.do(t, "POST", "/api/v1/rules/backtest", acmeResponderToken, "", req("globex")), http.StatusForbidden)
			// Scoped to two tenants: it must say which.
			expectError(t, e.do(t, "POST", "/api/v1/rules/backtest", acmeResponderToken, "", req("")), http.StatusBadRequest)
			if m := decode(t, e.do(t, "POST", "/api/v1/rules/backtest", acmeResponderToken, "", req("acme"))); m["tenant"] != "acme" {
				t.Fatalf("backtest of acme as acme: %v", m)
			}
		},
	}
	for _, route := range e.srv.Routes() {
		tc, ok := cases[route]
		if !ok {
			t.Errorf("route %s has no tenant-scope case in this test: add one (and a tenant check to the route)", route)
			continue
		}
		free := strings.HasPrefix(route, "GET /healthz") || strings.HasPrefix(route, "GET /readyz") || route == "GET /metrics" ||
			route == "GET /api/v1/openapi.yaml" || route == "GET /api/v1/rules"
		if free != e.srv.TenantFree(route) {
			t.Errorf("route %s: tenant-free here %v, in the server %v", route, free, e.srv.TenantFree(route))
		}
		t.Run(route, tc)
	}
	// The scoped responder can still act on its own tenant's incident.
	if r := e.do(t, "POST", "/api/v1/incidents/"+tt.acme+"/acknowledge", acmeResponderToken, "", nil); r.status != http.StatusOK {
		t.Fatalf("acme ack by acme-ops: %d %s", r.status, r.body)
	}
}

// TestSecurityActorForgery: the recorded actor always names the token; only
// a trusted forwarder may add a person, any other token sending
// X-Mcpwatch-Actor is refused and nothing changes.
func TestSecurityActorForgery(t *testing.T) {
	e := newEnv(t)
	id := e.incident(t, "mcp-ssrf", event.SeverityHigh, "acme")
	p := "/api/v1/incidents/" + id
	before := e.stored(t, id)
	for _, tok := range []string{scriptToken, acmeResponderToken, viewerToken} {
		r := e.do(t, "POST", p+"/acknowledge", tok, "ceo@example.com", nil)
		expectError(t, r, http.StatusForbidden)
		if !bytes.Contains(r.body, []byte("not a trusted forwarder")) && tok != viewerToken {
			t.Errorf("forged actor refusal says %s", r.body)
		}
		// Reads are refused too: the header is never silently dropped.
		expectError(t, e.do(t, "GET", p, tok, "ceo@example.com", nil), http.StatusForbidden)
	}
	if after := e.stored(t, id); after.Version != before.Version {
		t.Fatalf("a refused request changed the incident: %+v", after)
	}
	for _, bad := range []string{"alice\r\nX-Injected: 1", "alice\x1b[31m", "alice\u202egnp.exe", "ali\u200bce", strings.Repeat("a", 201), "\xff\xfe"} {
		req := httptest.NewRequest("POST", p+"/assign", strings.NewReader(`{"assignee":"x"}`))
		req.Header.Set("Authorization", "Bearer "+responderToken)
		req.Header["X-Mcpwatch-Actor"] = []string{bad}
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("actor %q: %d %s", bad, w.Code, w.Body)
		}
	}
	req := httptest.NewRequest("POST", p+"/assign", strings.NewReader(`{"assignee":"x"}`))
	req.Header.Set("Authorization", "Bearer "+responderToken)
	req.Header["X-Mcpwatch-Actor"] = []string{"alice", "bob"}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest {
		t.Errorf("two actors: %d %s", w.Code, w.Body)
	}

	if r := e.do(t, "POST", p+"/assign", scriptToken, "", map[string]any{"assignee": "bob"}); r.status != http.StatusOK {
		t.Fatalf("script assign: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", p+"/acknowledge", responderToken, "alice", nil); r.status != http.StatusOK {
		t.Fatalf("forwarded ack: %d %s", r.status, r.body)
	}
	as, err := e.store.ActionsFor(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, a := range as {
		actors = append(actors, a.Target+"/"+a.Actor)
	}
	if !slices.Equal(actors, []string{"assigned/token:script", "acknowledged/alice via token:grafana"}) {
		t.Fatalf("actions %v", actors)
	}
	if inc := e.stored(t, id); inc.UpdatedBy != "alice via token:grafana" {
		t.Fatalf("updated_by %q", inc.UpdatedBy)
	}
}

// TestSecurityStrictRequestBodies: JSON with anything after the object,
// unknown fields, and suppression ends outside a sane range are 400 with a
// message; nothing changes.
func TestSecurityStrictRequestBodies(t *testing.T) {
	e := newEnv(t)
	id := e.incident(t, "mcp-ssrf", event.SeverityHigh, "acme")
	p := "/api/v1/incidents/" + id
	post := func(path, raw string) resp {
		req := httptest.NewRequest("POST", path, strings.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+scriptToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	}
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct{ path, body, msg string }{
		{"/acknowledge", `{"note":"x"} garbage`, "nothing after it"},
		{"/acknowledge", `{"note":"x"}{"note":"y"}`, "nothing after it"},
		{"/acknowledge", `{"note":"x"}]`, "nothing after it"},
		{"/acknowledge", `{"note":"x","actor":"ceo"}`, "unknown field"},
		{"/acknowledge", `["note"]`, "JSON object"},
		{"/suppress", `{"until":"9999-12-31T23:59:59Z"}`, "days ahead"},
		{"/suppress", `{"until":"` + time.Now().Add(400*24*time.Hour).UTC().Format(time.RFC3339) + `"}`, "days ahead"},
		{"/suppress", `{"until":"1970-01-01T00:00:00Z"}`, "in the future"},
		{"/suppress", `{"until":"10000-01-01T00:00:00Z"}`, "RFC 3339"},
		{"/suppress", `{"until":"` + soon + `"} x`, "nothing after it"},
	} {
		r := post(p+c.path, c.body)
		expectError(t, r, http.StatusBadRequest)
		if msg, _ := decode(t, r)["error"].(string); !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s: error %q lacks %q", c.path, c.body, msg, c.msg)
		}
	}
	if inc := e.stored(t, id); inc.Status != incident.StatusOpen {
		t.Fatalf("a rejected body changed the incident: %+v", inc)
	}
	// Whitespace after the object and an empty body are fine.
	if r := post(p+"/suppress", `{"until":"`+soon+`"}`+"\n  "); r.status != http.StatusOK {
		t.Fatalf("suppress: %d %s", r.status, r.body)
	}
	if r := post(p+"/acknowledge", ``); r.status != http.StatusOK {
		t.Fatalf("empty body: %d %s", r.status, r.body)
	}
}

var sqlPayloads = []string{
	`' OR 1=1 --`,
	`acme' OR tenant != '`,
	`x'); DROP TABLE incidents; --`,
	`\' OR \'1\'=\'1`,
	`1 UNION ALL SELECT * FROM system.tables`,
	"x\x00y",
	`%' AND sleep(3) AND '%`,
}

// TestSecuritySQLInjectionAPIParameters sends SQL fragments in every
// parameter of every route: each is bound, never spliced, so filters match
// nothing, path ids are not found, body text is stored verbatim, and no
// request is a 500.
func TestSecuritySQLInjectionAPIParameters(t *testing.T) {
	e := newEnv(t)
	tt := e.twoTenants(t)
	count := func() float64 {
		return decode(t, e.do(t, "GET", "/api/v1/incidents", viewerToken, "", nil))["total"].(float64)
	}
	if count() != 2 {
		t.Fatal("setup")
	}
	for _, p := range sqlPayloads {
		q := url.QueryEscape(p)
		for _, param := range []string{"rule_id", "tenant"} {
			r := e.do(t, "GET", "/api/v1/incidents?"+param+"="+q, viewerToken, "", nil)
			if m := decode(t, r); r.status != http.StatusOK || m["total"] != float64(0) {
				t.Errorf("%s=%q: %d %s", param, p, r.status, r.body)
			}
		}
		for _, param := range []string{"status", "severity", "limit", "offset"} {
			expectError(t, e.do(t, "GET", "/api/v1/incidents?"+param+"="+q, viewerToken, "", nil), http.StatusBadRequest)
		}
		pe := url.PathEscape(p)
		expectError(t, e.do(t, "GET", "/api/v1/incidents/"+pe, viewerToken, "", nil), http.StatusNotFound)
		expectError(t, e.do(t, "POST", "/api/v1/incidents/"+pe+"/resolve", responderToken, "", nil), http.StatusNotFound)
		base := "/api/v1/incidents/" + tt.acme + "/playbook-runs/"
		expectError(t, e.do(t, "POST", base+pe+"/steps/approve-containment/approve", responderToken, "", nil), http.StatusNotFound)
		expectError(t, e.do(t, "POST", base+tt.acmeRun+"/steps/"+pe+"/deny", responderToken, "", nil), http.StatusNotFound)
		// Body text and the forwarded actor are stored as given.
		r := e.do(t, "POST", "/api/v1/incidents/"+tt.globex+"/assign", responderToken, p, map[string]any{"assignee": p, "note": p})
		if strings.ContainsRune(p, 0) {
			expectError(t, r, http.StatusBadRequest) // a NUL in the actor header
			continue
		}
		if r.status != http.StatusOK {
			t.Fatalf("assign %q: %d %s", p, r.status, r.body)
		}
		if inc := e.stored(t, tt.globex); inc.Assignee != p || inc.Note != p || inc.UpdatedBy != p+" via token:grafana" {
			t.Errorf("stored %q %q %q, want %q", inc.Assignee, inc.Note, inc.UpdatedBy, p)
		}
	}
	if count() != 2 {
		t.Fatalf("incidents after the payloads: %v", count())
	}
	if run, _ := e.runner.Get(tt.acmeRun); run.Status != playbook.RunWaiting {
		t.Fatalf("run %s", run.Status)
	}
}

// TestSecurityRoleLimits: a viewer cannot use any route that changes
// something (every non-GET route, found from the router), and nothing
// changes.
func TestSecurityRoleLimits(t *testing.T) {
	e := newEnv(t)
	tt := e.twoTenants(t)
	before := e.stored(t, tt.acme)
	params := map[string]string{"{id}": tt.acme, "{run}": tt.acmeRun, "{step}": "approve-containment"}
	n := 0
	for _, route := range e.srv.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if method == http.MethodGet {
			continue
		}
		for k, v := range params {
			path = strings.ReplaceAll(path, k, v)
		}
		for _, tok := range []string{viewerToken, acmeViewerToken} {
			expectError(t, e.do(t, method, path, tok, "", map[string]any{"assignee": "x", "until": time.Now().Add(time.Hour).Format(time.RFC3339)}), http.StatusForbidden)
			n++
		}
	}
	if n < 12 {
		t.Fatalf("only %d write routes tried", n)
	}
	if after := e.stored(t, tt.acme); after.Version != before.Version {
		t.Fatalf("viewer changed the incident: %+v", after)
	}
	if run, _ := e.runner.Get(tt.acmeRun); run.Status != playbook.RunWaiting {
		t.Fatalf("viewer decided the run: %s", run.Status)
	}
}
