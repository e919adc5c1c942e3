package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// routes are the app's resources, each answered within the caller's
// tenants (withScope; TestSecurityTenantScopedResources covers every one).
func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	a.routeList = nil
	handle := func(pattern string, h http.HandlerFunc) {
		a.routeList = append(a.routeList, pattern)
		mux.HandleFunc(pattern, h)
	}
	handle("GET /me", a.handleMe)
	handle("GET /overview", a.handleOverview)
	// The agents table without its Content column, which the page loads
	// afterwards (/agent-content): the content read costs about as much.
	handle("GET /agents", listHandler(a, "agents", (*Store).Agents))
	handle("GET /agents/{id}", a.handleAgent)
	handle("GET /agent-content", a.handleAgentContent)
	handle("GET /sessions", listHandler(a, "sessions", (*Store).Sessions))
	handle("GET /sessions/{key}", a.handleSession)
	handle("GET /incidents", a.handleIncidents)
	handle("GET /incidents/{id}", a.handleIncident)
	handle("POST /incidents/{id}/{action}", a.handleIncidentAction)
	handle("POST /incidents/{id}/playbook-runs/{run}/steps/{step}/{decision}", a.handleStepDecision)
	handle("GET /detections", a.handleDetections)
	handle("POST /rules/backtest", a.handleBacktest)
	handle("GET /tools", listHandler(a, "tools", (*Store).Tools))
	handle("GET /tools/definitions", a.handleToolDefinitions)
	handle("GET /blast-radius", a.handleBlastRadius)
	handle("POST /query", a.handleQuery)
	return a.withScope(mux)
}

// filterFromRequest reads from/to (epoch ms, Grafana's convention; default
// the last 6 hours) and the optional scope parameters.
func (a *App) filterFromRequest(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	now := a.now()
	f := Filter{From: now.Add(-6 * time.Hour), To: now, Tenant: q.Get("tenant"), Tenants: scopeOf(r.Context()),
		Agent: q.Get("agent"), Server: q.Get("server"), Tool: q.Get("tool")}
	parse := func(name string, dst *time.Time) error {
		v := q.Get(name)
		if v == "" {
			return nil
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid %s %q: want epoch milliseconds", name, v)
		}
		*dst = time.UnixMilli(ms).UTC()
		return nil
	}
	if err := parse("from", &f.From); err != nil {
		return f, err
	}
	if err := parse("to", &f.To); err != nil {
		return f, err
	}
	if !f.From.Before(f.To) {
		return f, errors.New("from must be before to")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, fmt.Errorf("invalid limit %q", v)
		}
		f.Limit = n
	}
	return f, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		slog.Error("resource request failed", "err", err)
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (a *App) handleMe(w http.ResponseWriter, r *http.Request) {
	u := httpUser(r)
	role := ""
	if u != nil {
		role = u.Role
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": userLogin(u), "role": role, "canAct": canAct(u), "analyzer": a.analyzer.Enabled(),
		"tenants": scopeOf(r.Context())})
}

func (a *App) handleOverview(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	ov, err := a.store.Overview(ctx, f, 10)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	open, err := a.store.OpenBySeverity(ctx, f.Tenant, f.Tenants)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	totals, series, top := ov.Totals, ov.Series, ov.TopTools
	writeJSON(w, http.StatusOK, map[string]any{"totals": totals, "series": nonNil(series), "open_incidents": open, "top_tools": nonNil(top)})
}

// listHandler serves a GET endpoint that reads the Filter from the query
// string, runs one store query and answers its rows under key ([] when none).
func listHandler[T any](a *App, key string, query func(*Store, context.Context, Filter) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := a.filterFromRequest(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		rows, err := query(a.store, r.Context(), f)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{key: nonNil(rows)})
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// handleAgentContent answers, per agent of the agents table with the same
// parameters (agent=: the agent page's one agent), the content its calls
// carry, and which rules need which content (ContentRules).
func (a *App) handleAgentContent(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	rows, err := a.store.AgentsWithContent(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	content := make(map[string]*Content, len(rows))
	for _, row := range rows {
		content[row.AgentID] = row.Content
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": content, "content_rules": contentRulesText()})
}

func (a *App) handleAgent(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	f.Agent = r.PathValue("id")
	ctx := r.Context()
	// Six independent reads, run at once.
	var (
		series   []Point
		graph    Graph
		incs     []Incident
		sessions []SessionRow
		events   []Event
		agent    []AgentRow
		wg       sync.WaitGroup
		errs     [6]error
	)
	ef := f
	ef.Limit = 20
	for i, fn := range []func() error{
		func() (err error) { series, err = a.store.CallsOverTime(ctx, f); return err },
		func() (err error) { graph, err = a.store.AgentGraph(ctx, f); return err },
		func() (err error) {
			incs, err = a.store.Incidents(ctx, IncidentFilter{Agent: f.Agent, Tenant: f.Tenant, Tenants: f.Tenants, Limit: 100})
			return err
		},
		func() (err error) {
			sessions, err = a.store.Sessions(ctx, Filter{From: f.From, To: f.To, Tenant: f.Tenant, Tenants: f.Tenants, Agent: f.Agent, Limit: 50})
			return err
		},
		func() (err error) { events, err = a.store.RecentEvents(ctx, ef); return err },
		func() (err error) { agent, err = a.store.Agents(ctx, f); return err },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn() }()
	}
	wg.Wait()
	for _, err := range errs { // the first failure, in the order above
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
	}
	// The agent's row (identity, counts; the page loads its content from
	// /agent-content); none when it made no tools/call in the range.
	var row *AgentRow
	if len(agent) > 0 {
		row = &agent[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent_id": f.Agent, "agent": row,
		"series": nonNil(series), "graph": graph, "incidents": incs, "sessions": sessions, "events": events})
}

func (a *App) handleSession(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	evs, err := a.store.SessionEvents(r.Context(), f, r.PathValue("key"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session_key": r.PathValue("key"), "events": evs})
}

// handleBlastRadius: GET /blast-radius?{server&tool[&definition_hash] |
// fingerprint | session | incident}, with the common filter (range,
// tenant, agent, limit of calls).
func (a *App) handleBlastRadius(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	// The common filter's server and tool name the subject here.
	subj := BlastSubject{Server: f.Server, Tool: f.Tool, DefinitionHash: q.Get("definition_hash"),
		Fingerprint: q.Get("fingerprint"), Session: q.Get("session"), Incident: q.Get("incident")}
	f.Server, f.Tool = "", ""
	out, err := a.store.BlastRadius(r.Context(), f, subj)
	switch {
	case errors.Is(err, ErrBadSubject):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrNoDefinition):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

func (a *App) handleIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := IncidentFilter{Status: q.Get("status"), Severity: q.Get("severity"), RuleID: q.Get("rule_id"), Tenant: q.Get("tenant"),
		Tenants: scopeOf(r.Context()), Agent: q.Get("agent")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("invalid limit %q", v))
			return
		}
		f.Limit = n
	}
	rows, err := a.store.Incidents(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": rows})
}

// PlaybookStep is a step as shown on the incident page.
type PlaybookStep struct {
	RunID    string    `json:"run_id"`
	Playbook string    `json:"playbook"`
	Step     string    `json:"step"`
	Target   string    `json:"target"`
	Status   string    `json:"status"`
	Time     time.Time `json:"ts"`
	Actor    string    `json:"actor"`
}

// StepWaitingApproval is the analyzer's status of a step that needs a human.
const StepWaitingApproval = "waiting_approval"

// stepsFromRuns flattens the analyzer's playbook runs (GET
// /api/v1/incidents/{id} → playbook_runs, docs/openapi.yaml).
func stepsFromRuns(raw json.RawMessage) []PlaybookStep {
	var runs []struct {
		RunID    string `json:"run_id"`
		Playbook string `json:"playbook"`
		Steps    []struct {
			Step       string    `json:"step"`
			Status     string    `json:"status"`
			Actor      string    `json:"actor"`
			StartedAt  time.Time `json:"started_at"`
			FinishedAt time.Time `json:"finished_at"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(raw, &runs); err != nil {
		return nil
	}
	var out []PlaybookStep
	for _, r := range runs {
		for _, s := range r.Steps {
			t := s.FinishedAt
			if t.IsZero() {
				t = s.StartedAt
			}
			out = append(out, PlaybookStep{RunID: r.RunID, Playbook: r.Playbook, Step: s.Step, Status: s.Status, Time: t, Actor: s.Actor})
		}
	}
	return out
}

// stepsFromActions derives playbook steps (latest state per run/step) from
// the actions audit log; the run id is read from detail.run_id, else the
// idempotency key's prefix.
func stepsFromActions(acts []Action) []PlaybookStep {
	out := []PlaybookStep{}
	idx := map[string]int{}
	for _, a := range acts {
		if a.Kind != "playbook_step" && a.Kind != "approval" {
			continue
		}
		var d struct {
			RunID string `json:"run_id"`
		}
		_ = json.Unmarshal([]byte(a.Detail), &d)
		run := d.RunID
		if run == "" {
			run = a.Key
			for i := 0; i < len(run); i++ {
				if run[i] == '/' {
					run = run[:i]
					break
				}
			}
		}
		k := run + "\x00" + a.Step
		pb := a.Playbook
		if pb == "" && a.Kind == "approval" {
			pb = a.Target // the analyzer records approvals with the playbook as target
		}
		status := a.Outcome
		if a.Kind == "approval" && status == "requested" {
			status = StepWaitingApproval
		}
		st := PlaybookStep{RunID: run, Playbook: pb, Step: a.Step, Target: a.Target, Status: status, Time: a.Time, Actor: a.Actor}
		if i, ok := idx[k]; ok {
			if st.Target == "" {
				st.Target = out[i].Target
			}
			out[i] = st
			continue
		}
		idx[k] = len(out)
		out = append(out, st)
	}
	return out
}

// visibleIncident reads the incident of the path's {id} within the
// caller's tenants; another tenant's incident is answered 404 like a
// missing one.
func (a *App) visibleIncident(w http.ResponseWriter, r *http.Request) (Incident, bool) {
	id := r.PathValue("id")
	incs, err := a.store.Incidents(r.Context(), IncidentFilter{ID: id, Tenants: scopeOf(r.Context()), Limit: 1})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return Incident{}, false
	}
	if len(incs) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("incident %q not found", id))
		return Incident{}, false
	}
	return incs[0], true
}

func (a *App) handleIncident(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	inc, ok := a.visibleIncident(w, r)
	if !ok {
		return
	}
	scope := scopeOf(ctx)
	findings, err := a.store.Findings(ctx, FindingFilter{Incident: id, Tenant: inc.Tenant, Tenants: scope, From: inc.FirstSeen.Add(-48 * time.Hour), To: inc.LastSeen.Add(48 * time.Hour)})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	var ids []string
	seen := map[string]bool{}
	for _, f := range findings {
		for _, e := range f.EventIDs {
			if !seen[e] {
				seen[e] = true
				ids = append(ids, e)
			}
		}
	}
	events, err := a.store.EventsByID(ctx, Filter{From: inc.FirstSeen.Add(-24 * time.Hour), To: inc.LastSeen.Add(time.Hour), Tenant: inc.Tenant, Tenants: scope, Agent: inc.AgentID}, ids)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	acts, err := a.store.Actions(ctx, id, scope)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	resp := map[string]any{"incident": inc, "findings": findings, "events": events, "actions": acts, "playbook_steps": stepsFromActions(acts)}
	// The analyzer knows the live playbook run state; include it when reachable.
	if a.analyzer.Enabled() {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		detail, err := a.analyzer.Incident(actx, id)
		cancel()
		if err != nil {
			resp["analyzer_error"] = err.Error()
		} else {
			if v, ok := detail["playbook_runs"]; ok {
				resp["playbook_runs"] = v
				if steps := stepsFromRuns(v); len(steps) > 0 {
					resp["playbook_steps"] = steps // live run state beats the audit log
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

var incidentActions = map[string]bool{"acknowledge": true, "resolve": true, "suppress": true, "assign": true}

func (a *App) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	u := httpUser(r)
	if !canAct(u) {
		role := "anonymous"
		if u != nil && u.Role != "" {
			role = u.Role
		}
		writeError(w, http.StatusForbidden, fmt.Errorf("role %s may not change incidents or run backtests: Editor or Admin required", role))
		return "", false
	}
	return userLogin(u), true
}

func readBody(r *http.Request) (map[string]any, error) {
	body := map[string]any{}
	if r.ContentLength == 0 {
		return body, nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	if err := dec.Decode(&body); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("cannot decode request body: %w", err)
	}
	return body, nil
}

func (a *App) proxyResult(w http.ResponseWriter, out json.RawMessage, err error) {
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr):
		writeJSON(w, apiErr.Status, map[string]string{"error": apiErr.Error()})
	case err != nil:
		writeError(w, http.StatusBadGateway, err)
	case len(out) == 0:
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}
}

func (a *App) handleIncidentAction(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if !incidentActions[action] {
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown incident action %q", action))
		return
	}
	actor, ok := a.authorize(w, r)
	if !ok {
		return
	}
	if _, ok := a.visibleIncident(w, r); !ok {
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out, err := a.analyzer.IncidentAction(r.Context(), r.PathValue("id"), action, actor, body)
	a.proxyResult(w, out, err)
}

func (a *App) handleStepDecision(w http.ResponseWriter, r *http.Request) {
	decision := r.PathValue("decision")
	if decision != "approve" && decision != "deny" {
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown step decision %q", decision))
		return
	}
	actor, ok := a.authorize(w, r)
	if !ok {
		return
	}
	if _, ok := a.visibleIncident(w, r); !ok {
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out, err := a.analyzer.StepDecision(r.Context(), r.PathValue("id"), r.PathValue("run"), r.PathValue("step"), decision, actor, body)
	a.proxyResult(w, out, err)
}

func (a *App) handleDetections(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	hits, series, err := a.store.DetectionHits(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	resp := map[string]any{"rules": hits, "series": series}
	if a.analyzer.Enabled() {
		actx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		rules, err := a.analyzer.Rules(actx)
		cancel()
		if err == nil {
			resp["rule_pack"] = rules
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleBacktest forwards a backtest to the analyzer (Editor or Admin: it
// runs a rule over every stored event and takes the analyzer's cores).
func (a *App) handleBacktest(w http.ResponseWriter, r *http.Request) {
	actor, ok := a.authorize(w, r)
	if !ok {
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	// A user scoped to tenants backtests over one of them: the one the
	// request names, else the only one (the analyzer's token is unscoped).
	if scope := scopeOf(r.Context()); scope != nil {
		tenant, _ := body["tenant"].(string)
		switch {
		case tenant == "" && len(scope) == 1:
			body["tenant"] = scope[0]
		case tenant == "":
			writeError(w, http.StatusBadRequest, fmt.Errorf("you may read tenants %v: name one in tenant", scope))
			return
		case !allows(scope, tenant):
			writeError(w, http.StatusForbidden, fmt.Errorf("you may not read tenant %q", tenant))
			return
		}
	}
	out, err := a.analyzer.Backtest(r.Context(), actor, body)
	a.proxyResult(w, out, err)
}

func (a *App) handleToolDefinitions(w http.ResponseWriter, r *http.Request) {
	f, err := a.filterFromRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if f.Server == "" || f.Tool == "" {
		writeError(w, http.StatusBadRequest, errors.New("server and tool are required"))
		return
	}
	defs, err := a.store.ToolDefinitions(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"definitions": defs})
}
