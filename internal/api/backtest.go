package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/backtest"
	"github.com/mcpwatch/mcpwatch/internal/detect"
)

// BacktestConfig wires POST /api/v1/rules/backtest (docs/api.md). A nil
// Source leaves the route answering 501.
type BacktestConfig struct {
	// Source streams the stored events (*store.Store).
	Source backtest.Source
	// Pack is the deployed rule pack (e.g. engine.Pack): a rule by id, the
	// deployed version to diff against, and the named lists.
	Pack func() *detect.Pack
	// TimeLimit bounds one backtest's replay; it stops between batches and
	// reports what it saw (truncated). Default 2m.
	TimeLimit time.Duration
	// MaxEvents bounds the events one backtest replays; a request may ask
	// for fewer. Default 2,000,000.
	MaxEvents int64
}

// BacktestRequest is the body of POST /api/v1/rules/backtest.
type BacktestRequest struct {
	// Exactly one of RuleYAML (a new or changed rule file) and RuleID (a
	// rule of the deployed pack).
	RuleYAML string `json:"rule_yaml"`
	RuleID   string `json:"rule_id"`
	// Since and Until: RFC 3339 times, or durations back from now ("30d").
	// Since is required; Until defaults to now.
	Since string `json:"since"`
	Until string `json:"until"`
	// Tenant: "" = every tenant.
	Tenant    string `json:"tenant"`
	MaxEvents int64  `json:"max_events"`
	Samples   int    `json:"samples"`
}

// backtestSlot allows one backtest at a time per analyzer: each one takes
// every core for up to its time limit.
var backtestSlot = make(chan struct{}, 1)

func (c BacktestConfig) withDefaults() BacktestConfig {
	if c.TimeLimit <= 0 {
		c.TimeLimit = 2 * time.Minute
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 2000000
	}
	return c
}

func (s *Server) backtest(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Backtest.withDefaults()
	if cfg.Source == nil || cfg.Pack == nil {
		writeError(w, http.StatusNotImplemented, "backtests are not enabled on this analyzer")
		return
	}
	var req BacktestRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, backtest.MaxRuleBytes+64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body must be one JSON object with nothing after it")
		return
	}
	// A token scoped to tenants backtests over one of them: the one it
	// names, else its only tenant.
	tok := principalOf(r).Token
	req.Tenant = strings.TrimSpace(req.Tenant)
	switch {
	case tok.Tenants == nil:
	case req.Tenant == "" && len(tok.Tenants) == 1:
		req.Tenant = tok.Tenants[0]
	case req.Tenant == "":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("token %s is scoped to tenants %v: name one in tenant", tok.Name, tok.Tenants))
		return
	case !tok.allows(req.Tenant):
		writeError(w, http.StatusForbidden, fmt.Sprintf("token %s may not read tenant %q", tok.Name, req.Tenant))
		return
	}
	breq, err := req.resolve(cfg, time.Now().UTC())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	select {
	case backtestSlot <- struct{}{}:
		defer func() { <-backtestSlot }()
	default:
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "another backtest is running; try again when it is done")
		return
	}
	// The time limit stops the replay cleanly; the context is the hard stop
	// for a query that hangs.
	ctx, cancel := context.WithTimeout(r.Context(), cfg.TimeLimit+30*time.Second)
	defer cancel()
	rep, err := backtest.Run(ctx, cfg.Source, breq)
	if err != nil {
		s.log.Warn("backtest failed", "rule_id", breq.Rule.ID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "cannot run the backtest: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// resolve checks a request and turns it into a backtest.Request.
func (req BacktestRequest) resolve(cfg BacktestConfig, now time.Time) (backtest.Request, error) {
	var errs []error
	pack := cfg.Pack()
	if pack == nil {
		pack = &detect.Pack{}
	}
	out := backtest.Request{Tenant: strings.TrimSpace(req.Tenant), Lists: pack.Lists, Samples: req.Samples,
		MaxEvents: cfg.MaxEvents, TimeLimit: cfg.TimeLimit}
	switch {
	case (req.RuleYAML == "") == (req.RuleID == ""):
		errs = append(errs, errors.New("set exactly one of rule_yaml and rule_id"))
	case req.RuleID != "":
		if out.Rule = pack.Rule(req.RuleID); out.Rule == nil {
			errs = append(errs, fmt.Errorf("no rule %q in the deployed pack", req.RuleID))
		}
		out.Deployed = out.Rule
	default:
		r, err := backtest.ParseRule([]byte(req.RuleYAML), pack.Lists)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule_yaml: %w", err))
		} else {
			out.Rule, out.Deployed = r, pack.Rule(r.ID)
		}
	}
	var err error
	if out.Until, err = backtest.ParseTime(req.Until, now, now); err != nil {
		errs = append(errs, fmt.Errorf("until: %w", err))
	}
	if req.Since == "" {
		errs = append(errs, errors.New("since is required"))
	} else if out.Since, err = backtest.ParseTime(req.Since, out.Until, time.Time{}); err != nil {
		errs = append(errs, fmt.Errorf("since: %w", err))
	} else if !out.Since.Before(out.Until) {
		errs = append(errs, errors.New("since must be before until"))
	}
	if req.MaxEvents < 0 || req.Samples < 0 || req.Samples > 1000 {
		errs = append(errs, errors.New("max_events must not be negative; samples must be 0..1000"))
	}
	if req.MaxEvents > 0 && req.MaxEvents < out.MaxEvents {
		out.MaxEvents = req.MaxEvents
	}
	return out, errors.Join(errs...)
}
