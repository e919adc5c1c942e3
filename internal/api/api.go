// Package api serves the analyzer's HTTP API (docs/architecture.md, docs/api.md,
// docs/openapi.yaml): health, readiness, metrics, rules, incidents and their
// lifecycle, and playbook approvals. Authentication is by bearer token; a
// token has a role (viewer: reads; responder: reads and incident actions and
// approvals; admin: everything) and optionally a list of tenants it is
// scoped to: every route either reads no tenant's data or checks the tenant
// (scopeTenantFree, scopeList, scopeIncident). The actor recorded in
// `actions` and the incident's updated_by always names the token; a token
// marked as a trusted forwarder (the Grafana plugin's) may add the acting
// person in X-Mcpwatch-Actor, any other token sending it gets 403.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpwatch/mcpwatch/docs"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// Role of a token.
type Role string

const (
	RoleViewer    Role = "viewer"
	RoleResponder Role = "responder"
	RoleAdmin     Role = "admin"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleResponder: 2, RoleAdmin: 3}

// Token is one API credential (the analyzer reads Value from env or file).
type Token struct {
	Name  string // who the token belongs to; always part of the recorded actor
	Role  Role
	Value string
	// Tenants the token may read and act on; nil = every tenant (an empty,
	// non-nil list is a configuration error).
	Tenants []string
	// ForwardsActor marks a trusted forwarder (the Grafana plugin's token):
	// only it may name the acting person in X-Mcpwatch-Actor.
	ForwardsActor bool
}

// allows reports whether the token may see tenant's data.
func (t Token) allows(tenant string) bool {
	return t.Tenants == nil || slices.Contains(t.Tenants, tenant)
}

// scope says how a route keeps a scoped token to its tenants.
type scope int

const (
	// scopeTenantFree: the route returns no tenant's data (health, the rule
	// pack, the OpenAPI document, metrics).
	scopeTenantFree scope = iota
	// scopeList: the handler filters its query by the token's tenants.
	scopeList
	// scopeIncident: the route names an incident in {id}; an incident of
	// another tenant answers 404, exactly like a missing one, before the
	// handler runs (findings, actions and playbook runs hang off it).
	scopeIncident
)

// MaxActorLength bounds X-Mcpwatch-Actor.
const MaxActorLength = 200

// MaxUntilAhead bounds a suppression's until: longer is a resolve.
const MaxUntilAhead = 366 * 24 * time.Hour

// Incidents is the lifecycle side (*incident.Manager).
type Incidents interface {
	Get(ctx context.Context, id string) (incident.Incident, error)
	Acknowledge(ctx context.Context, id string, u incident.Update) (incident.Incident, error)
	Resolve(ctx context.Context, id string, u incident.Update) (incident.Incident, error)
	Suppress(ctx context.Context, id string, u incident.Update) (incident.Incident, error)
	Assign(ctx context.Context, id string, u incident.Update) (incident.Incident, error)
}

// Queries reads ClickHouse (*incident.CHStore).
type Queries interface {
	ListIncidents(ctx context.Context, f incident.Filter) ([]incident.Incident, uint64, error)
	FindingsFor(ctx context.Context, incidentID string, limit int) ([]event.Finding, error)
	ActionsFor(ctx context.Context, incidentID string) ([]incident.Action, error)
}

// Playbooks is the approval side (*playbook.Runner, or the analyzer's
// router, which sends a decision to the run's owner); nil = no playbooks.
type Playbooks interface {
	Runs(ctx context.Context, incidentID string) ([]playbook.Run, error)
	Decide(ctx context.Context, incidentID, runID, step, actor, note string, approve bool) (playbook.Run, error)
}

// Config wires the API. Incidents, Queries and Tokens are required.
type Config struct {
	Tokens    []Token
	Incidents Incidents
	Queries   Queries
	Playbooks Playbooks
	// Rules returns the loaded rule pack (any JSON-encodable value); nil
	// answers an empty list.
	Rules func(ctx context.Context) (any, error)
	// Backtest serves POST /api/v1/rules/backtest (backtest.go).
	Backtest BacktestConfig
	// Alerts receives the findings of POST /api/v1/alerts/grafana
	// (alerts.go); nil answers 503.
	Alerts Findings
	// Ready reports readiness (e.g. ClickHouse ping, Kafka assigned); nil = ready.
	Ready func(ctx context.Context) error
	// Metrics serves /metrics (default promhttp.Handler()).
	Metrics http.Handler
	Logger  *slog.Logger
}

// Server is the API's http.Handler.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	tokens map[[32]byte]Token
	routes []string
	scopes map[string]scope
	log    *slog.Logger
}

// New validates cfg and builds the handler.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Incidents == nil || cfg.Queries == nil {
		errs = append(errs, errors.New("incidents and queries are required"))
	}
	if len(cfg.Tokens) == 0 {
		errs = append(errs, errors.New("at least one API token is required"))
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), tokens: map[[32]byte]Token{}, scopes: map[string]scope{}, log: cfg.Logger}
	names := map[string]bool{}
	for i, t := range cfg.Tokens {
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("tokens[%d]: name is required (it is recorded as the actor)", i))
		} else if names[t.Name] {
			errs = append(errs, fmt.Errorf("tokens[%d]: duplicate name %q", i, t.Name))
		}
		names[t.Name] = true
		if t.Tenants != nil && len(t.Tenants) == 0 {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): tenants is empty; omit it for every tenant", i, t.Name))
		}
		for _, tn := range t.Tenants {
			if strings.TrimSpace(tn) != tn || tn == "" {
				errs = append(errs, fmt.Errorf("tokens[%d] (%s): tenant %q is empty or has surrounding spaces", i, t.Name, tn))
			}
		}
		if _, dup := s.tokens[sha256.Sum256([]byte(t.Value))]; dup && t.Value != "" {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): same value as another token", i, t.Name))
		}
		if len(t.Value) < 16 {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): at least 16 characters", i, t.Name))
		}
		if roleRank[t.Role] == 0 {
			errs = append(errs, fmt.Errorf("tokens[%d] (%s): role must be viewer, responder or admin", i, t.Name))
		}
		s.tokens[sha256.Sum256([]byte(t.Value))] = t
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("cannot configure the API: %w", errors.Join(errs...))
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.Metrics == nil {
		s.cfg.Metrics = promhttp.Handler()
	}
	s.handle("GET /healthz", "", scopeTenantFree, s.healthz)
	s.handle("GET /readyz", "", scopeTenantFree, s.readyz)
	s.handle("GET /metrics", "", scopeTenantFree, s.cfg.Metrics.ServeHTTP)
	s.handle("GET /api/v1/openapi.yaml", "", scopeTenantFree, s.openapi)
	s.handle("GET /api/v1/rules", RoleViewer, scopeTenantFree, s.rules)
	s.handle("POST /api/v1/rules/backtest", RoleResponder, scopeList, s.backtest)
	s.handle("POST /api/v1/alerts/grafana", RoleResponder, scopeList, s.grafanaAlerts)
	s.handle("GET /api/v1/incidents", RoleViewer, scopeList, s.listIncidents)
	s.handle("GET /api/v1/incidents/{id}", RoleViewer, scopeIncident, s.getIncident)
	for _, a := range []string{"acknowledge", "resolve", "suppress", "assign"} {
		s.handle("POST /api/v1/incidents/{id}/"+a, RoleResponder, scopeIncident, s.incidentAction(a))
	}
	s.handle("POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/approve", RoleResponder, scopeIncident, s.decide(true))
	s.handle("POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/deny", RoleResponder, scopeIncident, s.decide(false))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeError(w, http.StatusNotFound, "no such endpoint") })
	return s, nil
}

// Routes lists the registered "METHOD /path" patterns.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// TenantFree reports whether a registered route returns no tenant's data
// (every other route checks the token's tenants).
func (s *Server) TenantFree(route string) bool {
	sc, ok := s.scopes[route]
	return ok && sc == scopeTenantFree
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("api handler panicked", "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	s.mux.ServeHTTP(w, r)
}

type ctxKey struct{}

type principal struct {
	Token Token
	Actor string
	// Incident is the {id} of a scopeIncident route, already checked.
	Incident incident.Incident
}

func (s *Server) handle(pattern string, role Role, sc scope, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.scopes[pattern] = sc
	if role == "" {
		s.mux.HandleFunc(pattern, h)
		return
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		raw, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || raw == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		tok, ok := s.tokens[sha256.Sum256([]byte(strings.TrimSpace(raw)))]
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpwatch", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		if roleRank[tok.Role] < roleRank[role] {
			writeError(w, http.StatusForbidden, fmt.Sprintf("role %s may not do this (needs %s)", tok.Role, role))
			return
		}
		p := principal{Token: tok}
		var status int
		if p.Actor, status = actorOf(tok, r.Header); status != 0 {
			writeError(w, status, p.Actor)
			return
		}
		if sc == scopeIncident {
			inc, err := s.cfg.Incidents.Get(r.Context(), r.PathValue("id"))
			if err == nil && !tok.allows(inc.Tenant) {
				err = incident.ErrNotFound // the same answer as a missing incident
			}
			if err != nil {
				s.fail(w, err)
				return
			}
			p.Incident = inc
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

// actorOf is the actor recorded for a request: "token:<name>", or
// "<person> via token:<name>" when a trusted forwarder names the person in
// X-Mcpwatch-Actor. Any other token sending the header is refused (403)
// rather than ignored, so a misconfigured client notices at once instead
// of having its people's actions recorded under the token. On refusal it
// returns the message and a status.
func actorOf(tok Token, h http.Header) (string, int) {
	vals := h.Values("X-Mcpwatch-Actor")
	byToken := "token:" + tok.Name
	if len(vals) == 0 {
		return byToken, 0
	}
	if !tok.ForwardsActor {
		return fmt.Sprintf("token %s is not a trusted forwarder: X-Mcpwatch-Actor is not accepted (forward_actor in its api_tokens entry)", tok.Name), http.StatusForbidden
	}
	if len(vals) > 1 {
		return "X-Mcpwatch-Actor is given more than once", http.StatusBadRequest
	}
	person := strings.TrimSpace(vals[0])
	switch {
	case len(person) > MaxActorLength:
		return fmt.Sprintf("X-Mcpwatch-Actor is longer than %d characters", MaxActorLength), http.StatusBadRequest
	case !utf8.ValidString(person) || strings.ContainsFunc(person, invisible):
		return "X-Mcpwatch-Actor must be valid UTF-8 without control or format characters (CR, LF, ESC, bidi overrides)", http.StatusBadRequest
	case person == "":
		return byToken, 0
	}
	return person + " via " + byToken, 0
}

// invisible reports control characters and format characters (bidi
// overrides, zero-width): an actor name must read as what it is.
func invisible(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(ctxKey{}).(principal)
	return p
}

func actor(r *http.Request) string { return principalOf(r).Actor }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, incident.ErrNotFound), errors.Is(err, playbook.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, incident.ErrIllegalTransition), errors.Is(err, playbook.ErrNotWaiting):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, incident.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Error("api request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(docs.OpenAPI)
}

func (s *Server) rules(w http.ResponseWriter, r *http.Request) {
	var rules any = []any{}
	if s.cfg.Rules != nil {
		v, err := s.cfg.Rules(r.Context())
		if err != nil {
			s.fail(w, err)
			return
		}
		rules = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok := principalOf(r).Token
	f := incident.Filter{Status: incident.Status(q.Get("status")), Severity: event.Severity(q.Get("severity")),
		RuleID: q.Get("rule_id"), Tenant: q.Get("tenant"), Tenants: tok.Tenants, Limit: 100}
	if f.Tenant != "" && !tok.allows(f.Tenant) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("token %s may not read tenant %q", tok.Name, f.Tenant))
		return
	}
	if f.Status != "" && !f.Status.Valid() {
		writeError(w, http.StatusBadRequest, "status must be open, acknowledged, resolved or suppressed")
		return
	}
	if f.Severity != "" && !f.Severity.Valid() {
		writeError(w, http.StatusBadRequest, "severity must be info, low, medium, high or critical")
		return
	}
	var err error
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 500 {
			writeError(w, http.StatusBadRequest, "limit must be an integer from 1 to 500")
			return
		}
	}
	if v := q.Get("offset"); v != "" {
		if f.Offset, err = strconv.Atoi(v); err != nil || f.Offset < 0 {
			writeError(w, http.StatusBadRequest, "offset must be a non-negative integer")
			return
		}
	}
	incs, total, err := s.cfg.Queries.ListIncidents(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	if incs == nil {
		incs = []incident.Incident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": incs, "total": total, "limit": f.Limit, "offset": f.Offset})
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) {
	id, inc := r.PathValue("id"), principalOf(r).Incident
	findings, err := s.cfg.Queries.FindingsFor(r.Context(), id, 500)
	if err != nil {
		s.fail(w, err)
		return
	}
	actions, err := s.cfg.Queries.ActionsFor(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	runs := []playbook.Run{}
	if s.cfg.Playbooks != nil {
		if runs, err = s.cfg.Playbooks.Runs(r.Context(), id); err != nil {
			s.fail(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc, "findings": incident.FindingsJSON(findings), "actions": actions, "playbook_runs": runs})
}

type actionBody struct {
	Note     string `json:"note"`
	Assignee string `json:"assignee"`
	Until    string `json:"until"` // RFC 3339
}

// readBody decodes an optional JSON object: empty is allowed, unknown
// fields and anything after the object are not.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return true
		}
		writeError(w, http.StatusBadRequest, "body must be a JSON object: "+err.Error())
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body must be one JSON object with nothing after it")
		return false
	}
	return true
}

// parseUntil reads a suppression's end: RFC 3339, in the future and at
// most MaxUntilAhead away.
func parseUntil(v string, now time.Time) (time.Time, string) {
	t, err := time.Parse(time.RFC3339, v)
	switch {
	case err != nil:
		return t, "until must be an RFC 3339 time"
	case !t.After(now):
		return t, "until must be in the future"
	case t.Sub(now) > MaxUntilAhead:
		return t, fmt.Sprintf("until must be at most %d days ahead (got %s); resolve the incident instead", MaxUntilAhead/(24*time.Hour), t.UTC().Format(time.RFC3339))
	}
	return t, ""
}

func (s *Server) incidentAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b actionBody
		if !readBody(w, r, &b) {
			return
		}
		if len(b.Note) > 4000 {
			writeError(w, http.StatusBadRequest, "note is longer than 4000 characters")
			return
		}
		u := incident.Update{Actor: actor(r), Note: b.Note, Assignee: strings.TrimSpace(b.Assignee)}
		var fn func(context.Context, string, incident.Update) (incident.Incident, error)
		switch action {
		case "acknowledge":
			fn = s.cfg.Incidents.Acknowledge
		case "resolve":
			fn = s.cfg.Incidents.Resolve
		case "suppress":
			t, msg := parseUntil(b.Until, time.Now())
			if msg != "" {
				writeError(w, http.StatusBadRequest, msg)
				return
			}
			u.Until = t
			fn = s.cfg.Incidents.Suppress
		case "assign":
			if u.Assignee == "" {
				writeError(w, http.StatusBadRequest, "assignee is required")
				return
			}
			fn = s.cfg.Incidents.Assign
		}
		inc, err := fn(r.Context(), r.PathValue("id"), u)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"incident": inc})
	}
}

func (s *Server) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b actionBody
		if !readBody(w, r, &b) {
			return
		}
		if s.cfg.Playbooks == nil {
			writeError(w, http.StatusNotFound, "no playbooks are configured")
			return
		}
		run, err := s.cfg.Playbooks.Decide(r.Context(), r.PathValue("id"), r.PathValue("run"), r.PathValue("step"), actor(r), b.Note, approve)
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"run": run})
	}
}
