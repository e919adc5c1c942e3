// Package api serves the analyzer's HTTP API (docs/architecture.md, docs/api.md,
// docs/openapi.yaml): health, readiness, metrics, rules, incidents and their
// lifecycle, and playbook approvals. Authentication is by bearer token; a
// token has a role (viewer: reads; responder: reads and incident actions and
// approvals; admin: everything). The acting human is taken from the
// X-Mcpwatch-Actor header (the Grafana plugin sends the Grafana login) and
// recorded in `actions` and the incident's updated_by.
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
	Name  string // who the token belongs to; the actor when no X-Mcpwatch-Actor is sent
	Role  Role
	Value string
}

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
	s := &Server{cfg: cfg, mux: http.NewServeMux(), tokens: map[[32]byte]Token{}, log: cfg.Logger}
	for i, t := range cfg.Tokens {
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
	s.handle("GET /healthz", "", s.healthz)
	s.handle("GET /readyz", "", s.readyz)
	s.handle("GET /metrics", "", s.cfg.Metrics.ServeHTTP)
	s.handle("GET /api/v1/openapi.yaml", "", s.openapi)
	s.handle("GET /api/v1/rules", RoleViewer, s.rules)
	s.handle("POST /api/v1/rules/backtest", RoleResponder, s.backtest)
	s.handle("GET /api/v1/incidents", RoleViewer, s.listIncidents)
	s.handle("GET /api/v1/incidents/{id}", RoleViewer, s.getIncident)
	for _, a := range []string{"acknowledge", "resolve", "suppress", "assign"} {
		s.handle("POST /api/v1/incidents/{id}/"+a, RoleResponder, s.incidentAction(a))
	}
	s.handle("POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/approve", RoleResponder, s.decide(true))
	s.handle("POST /api/v1/incidents/{id}/playbook-runs/{run}/steps/{step}/deny", RoleResponder, s.decide(false))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeError(w, http.StatusNotFound, "no such endpoint") })
	return s, nil
}

// Routes lists the registered "METHOD /path" patterns.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

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
}

func (s *Server) handle(pattern string, role Role, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
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
		actor := strings.TrimSpace(r.Header.Get("X-Mcpwatch-Actor"))
		if len(actor) > 200 {
			writeError(w, http.StatusBadRequest, "X-Mcpwatch-Actor is longer than 200 characters")
			return
		}
		if actor == "" {
			actor = "token:" + tok.Name
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, principal{Token: tok, Actor: actor})))
	})
}

func actor(r *http.Request) string {
	p, _ := r.Context().Value(ctxKey{}).(principal)
	return p.Actor
}

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
	f := incident.Filter{Status: incident.Status(q.Get("status")), Severity: event.Severity(q.Get("severity")),
		RuleID: q.Get("rule_id"), Tenant: q.Get("tenant"), Limit: 100}
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
	id := r.PathValue("id")
	inc, err := s.cfg.Incidents.Get(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
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

func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body must be a JSON object: "+err.Error())
		return false
	}
	return true
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
			t, err := time.Parse(time.RFC3339, b.Until)
			if err != nil {
				writeError(w, http.StatusBadRequest, "until must be an RFC 3339 time")
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
