package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Findings receives the findings made from alerts: the analyzer's router
// produces them to the findings topic keyed by their incident key, so the
// respond instance owning that key opens or updates the incident and
// starts its playbooks, as for any other finding.
type Findings interface {
	SubmitFindings(ctx context.Context, fs []event.Finding) error
}

// FindingsFunc adapts a function to Findings.
type FindingsFunc func(ctx context.Context, fs []event.Finding) error

// SubmitFindings calls f.
func (f FindingsFunc) SubmitFindings(ctx context.Context, fs []event.Finding) error {
	return f(ctx, fs)
}

// GrafanaAlertRulePrefix starts the rule id of a finding made from a
// Grafana alert: grafana-alert:<alertname>.
const GrafanaAlertRulePrefix = "grafana-alert:"

// MaxGrafanaAlerts bounds the alerts of one notification.
const MaxGrafanaAlerts = 1000

// grafanaNotification is what Grafana's webhook contact point posts (the
// fields used here; others are ignored, as Grafana adds fields over
// releases).
type grafanaNotification struct {
	Receiver string         `json:"receiver"`
	Status   string         `json:"status"`
	Alerts   []grafanaAlert `json:"alerts"`
}

type grafanaAlert struct {
	Status       string             `json:"status"`
	Labels       map[string]string  `json:"labels"`
	Annotations  map[string]string  `json:"annotations"`
	StartsAt     time.Time          `json:"startsAt"`
	Fingerprint  string             `json:"fingerprint"`
	GeneratorURL string             `json:"generatorURL"`
	Values       map[string]float64 `json:"values"`
}

// grafanaAlerts turns each firing alert of a Grafana webhook notification
// into a finding: rule grafana-alert:<alertname>, grouped by the alert's
// fingerprint (one incident per alerting series), id from the fingerprint
// and startsAt (Grafana's retries and repeats of the same firing are the
// same finding, which the incident counts once). Resolved alerts change
// nothing: an incident is resolved by a person. The tenant is the alert's
// "tenant" label, else the token's only tenant, else "default" for an
// unscoped token.
func (s *Server) grafanaAlerts(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "alerts are accepted only where the respond role runs")
		return
	}
	var n grafanaNotification
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
	if err := dec.Decode(&n); err != nil {
		writeError(w, http.StatusBadRequest, "cannot decode the Grafana webhook notification: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body must be one JSON object with nothing after it")
		return
	}
	if len(n.Alerts) > MaxGrafanaAlerts {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d alerts per notification", MaxGrafanaAlerts))
		return
	}
	tok := principalOf(r).Token
	var fs []event.Finding
	for i, a := range n.Alerts {
		if a.Status != "firing" {
			continue
		}
		name := a.Labels["alertname"]
		if name == "" || a.Fingerprint == "" || a.StartsAt.IsZero() {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("alerts[%d]: labels.alertname, fingerprint and startsAt are required", i))
			return
		}
		tenant := a.Labels["tenant"]
		switch {
		case tenant == "" && len(tok.Tenants) == 1:
			tenant = tok.Tenants[0]
		case tenant == "" && tok.Tenants == nil:
			tenant = event.DefaultTenant
		case tenant == "":
			writeError(w, http.StatusBadRequest, fmt.Sprintf("alerts[%d]: token %s is scoped to tenants %v: the alert needs a tenant label", i, tok.Name, tok.Tenants))
			return
		}
		if !tok.allows(tenant) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("alerts[%d]: token %s may not act on tenant %q", i, tok.Name, tenant))
			return
		}
		fs = append(fs, grafanaFinding(a, tenant, name))
	}
	if len(fs) > 0 {
		if err := s.cfg.Alerts.SubmitFindings(r.Context(), fs); err != nil {
			s.log.Error("cannot submit findings of Grafana alerts", "err", err)
			writeError(w, http.StatusServiceUnavailable, "cannot accept the alerts now; retry")
			return
		}
	}
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.FindingID
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": len(fs), "finding_ids": ids})
}

func grafanaFinding(a grafanaAlert, tenant, name string) event.Finding {
	sev := event.Severity(strings.ToLower(a.Labels["severity"]))
	if !sev.Valid() {
		sev = event.SeverityMedium
	}
	sum := sha256.Sum256([]byte(tenant + "\x00" + a.Fingerprint + "\x00" + a.StartsAt.UTC().Format(time.RFC3339Nano)))
	summary := a.Annotations["summary"]
	if summary == "" {
		summary = a.Annotations["description"]
	}
	if summary == "" {
		summary = "Grafana alert " + name + " is firing (" + labelString(a.Labels) + ")"
	}
	evidence, _ := json.Marshal(map[string]any{"source": "grafana", "labels": a.Labels, "annotations": a.Annotations,
		"starts_at": a.StartsAt.UTC(), "fingerprint": a.Fingerprint, "generator_url": a.GeneratorURL, "values": a.Values})
	agent := a.Labels["agent"]
	if agent == "" {
		agent = a.Labels["agent_id"]
	}
	return event.Finding{
		FindingID: "grafana-" + hex.EncodeToString(sum[:16]), Tenant: tenant, Time: a.StartsAt.UTC(),
		RuleID: GrafanaAlertRulePrefix + name, RuleVersion: "grafana", RuleTitle: name, RuleKind: "grafana_alert",
		Severity: sev, Tags: []string{"source:grafana"}, GroupKey: a.Fingerprint, Summary: summary,
		AgentID: agent, UserID: a.Labels["user_id"], SessionKey: a.Labels["session_key"],
		ServerName: a.Labels["server"], ToolName: a.Labels["tool"], Evidence: string(evidence),
	}
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ", ")
}
