package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Analyzer calls the analyzer HTTP API (owned by internal/api in the root
// module; see docs/openapi.yaml) for incident actions.
type Analyzer struct {
	base   string
	token  string
	client *http.Client
	// slow is for backtests, which the analyzer bounds by its own time
	// limit (default 2m).
	slow *http.Client
}

// NewAnalyzer returns a client; an empty base disables it.
func NewAnalyzer(base, token string) *Analyzer {
	return &Analyzer{base: base, token: token, client: &http.Client{Timeout: 15 * time.Second},
		slow: &http.Client{Timeout: 3 * time.Minute}}
}

// Enabled reports whether an analyzer URL is configured.
func (a *Analyzer) Enabled() bool { return a.base != "" }

// APIError is a non-2xx answer from the analyzer.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("analyzer API answered %d: %s", e.Status, e.Body)
}

func (a *Analyzer) do(ctx context.Context, method, path, actor string, body any, out any) error {
	return a.doWith(a.client, ctx, method, path, actor, body, out)
}

func (a *Analyzer) doWith(client *http.Client, ctx context.Context, method, path, actor string, body any, out any) error {
	if !a.Enabled() {
		return &APIError{Status: http.StatusServiceUnavailable, Body: "analyzer API URL is not configured"}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("cannot encode analyzer request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("cannot build analyzer request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if actor != "" {
		req.Header.Set("X-Mcpwatch-Actor", actor)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach analyzer API at %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &APIError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("cannot decode analyzer response: %w", err)
		}
	}
	return nil
}

// Health checks GET /healthz.
func (a *Analyzer) Health(ctx context.Context) error {
	if err := a.do(ctx, http.MethodGet, "/healthz", "", nil, nil); err != nil {
		return fmt.Errorf("analyzer API %s: %w", a.base, err)
	}
	return nil
}

// IncidentAction posts acknowledge|resolve|suppress|assign for an incident.
func (a *Analyzer) IncidentAction(ctx context.Context, id, action, actor string, body map[string]any) (json.RawMessage, error) {
	var out json.RawMessage
	err := a.do(ctx, http.MethodPost, "/api/v1/incidents/"+url.PathEscape(id)+"/"+action, actor, body, &out)
	return out, err
}

// StepDecision posts approve|deny for a playbook step.
func (a *Analyzer) StepDecision(ctx context.Context, id, run, step, decision, actor string, body map[string]any) (json.RawMessage, error) {
	var out json.RawMessage
	p := "/api/v1/incidents/" + url.PathEscape(id) + "/playbook-runs/" + url.PathEscape(run) + "/steps/" + url.PathEscape(step) + "/" + decision
	err := a.do(ctx, http.MethodPost, p, actor, body, &out)
	return out, err
}

// Incident fetches GET /api/v1/incidents/{id} (incident, findings, playbook runs).
func (a *Analyzer) Incident(ctx context.Context, id string) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	err := a.do(ctx, http.MethodGet, "/api/v1/incidents/"+url.PathEscape(id), "", nil, &out)
	return out, err
}

// Rules fetches GET /api/v1/rules.
func (a *Analyzer) Rules(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := a.do(ctx, http.MethodGet, "/api/v1/rules", "", nil, &out)
	return out, err
}

// Backtest posts a backtest (POST /api/v1/rules/backtest: rule_yaml or
// rule_id, since, until, tenant) and returns the report.
func (a *Analyzer) Backtest(ctx context.Context, actor string, body map[string]any) (json.RawMessage, error) {
	var out json.RawMessage
	err := a.doWith(a.slow, ctx, http.MethodPost, "/api/v1/rules/backtest", actor, body, &out)
	return out, err
}
