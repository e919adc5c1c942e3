package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// grafanaNotification is what Grafana's webhook contact point posts for one
// alert (its documented payload, fields this API ignores included).
func grafanaNotification(status string, labels map[string]string, fingerprint string, startsAt time.Time) map[string]any {
	return map[string]any{
		"receiver": "mcpwatch analyzer", "status": status, "orgId": 1, "version": "1",
		"groupKey":          `{}/{__grafana_receiver__="mcpwatch analyzer"}:{alertname="` + labels["alertname"] + `"}`,
		"groupLabels":       map[string]string{"alertname": labels["alertname"]},
		"commonLabels":      labels,
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://grafana:3000/", "truncatedAlerts": 0, "state": "alerting",
		"title": "[FIRING:1] " + labels["alertname"], "message": "**Firing**",
		"alerts": []map[string]any{{
			"status": status, "labels": labels,
			"annotations":  map[string]string{"summary": "More than half of " + labels["agent"] + "'s tool calls were denied"},
			"startsAt":     startsAt.UTC().Format(time.RFC3339Nano),
			"endsAt":       "0001-01-01T00:00:00Z",
			"generatorURL": "http://grafana:3000/alerting/grafana/mcpwatch-denial-rate-spike/view",
			"fingerprint":  fingerprint,
			"silenceURL":   "http://grafana:3000/alerting/silence/new", "dashboardURL": "", "panelURL": "",
			"values":      map[string]float64{"B": 0.8, "C": 1},
			"valueString": "[ var='B' labels={agent=agent-alpha} value=0.8 ]",
		}},
	}
}

// TestGrafanaAlertOpensIncident: the notification Grafana's webhook
// contact point posts opens an incident (as a finding of rule
// grafana-alert:<alertname>) and starts its playbook; Grafana's retry of
// the same notification adds nothing; a later firing of the same series
// is a second finding of the same incident; resolved alerts change nothing.
func TestGrafanaAlertOpensIncident(t *testing.T) {
	e := newEnv(t)
	labels := map[string]string{"alertname": "mcpwatch denial rate spike", "agent": "agent-alpha", "severity": "critical",
		"grafana_folder": "mcpwatch", "__alert_rule_uid__": "mcpwatch-denial-rate-spike"}
	start := t0.Add(10 * time.Minute)
	post := func(status string, at time.Time) map[string]any {
		t.Helper()
		r := e.do(t, "POST", "/api/v1/alerts/grafana", responderToken, "", grafanaNotification(status, labels, "8f3c2a1b9d", at))
		if r.status != http.StatusAccepted {
			t.Fatalf("post %s: %d %s", status, r.status, r.body)
		}
		return decode(t, r)
	}
	list := func() []any {
		t.Helper()
		m := decode(t, e.do(t, "GET", "/api/v1/incidents?rule_id=grafana-alert:mcpwatch%20denial%20rate%20spike", viewerToken, "", nil))
		return m["incidents"].([]any)
	}
	first := post("firing", start)
	if first["accepted"] != float64(1) {
		t.Fatalf("accepted: %v", first)
	}
	incs := list()
	if len(incs) != 1 {
		t.Fatalf("incidents after the first post: %v", incs)
	}
	inc := incs[0].(map[string]any)
	if inc["severity"] != "critical" || inc["tenant"] != event.DefaultTenant || inc["agent_id"] != "agent-alpha" || inc["finding_count"] != float64(1) ||
		inc["status"] != "open" {
		t.Fatalf("incident: %v", inc)
	}
	id := inc["incident_id"].(string)
	// The critical incident started the "contain" playbook (newEnv).
	waitRunStatus(t, e.runner, playbook.RunID("contain", id), playbook.RunWaiting)

	// Grafana retries (same fingerprint and startsAt): the same finding.
	again := post("firing", start)
	if again["finding_ids"].([]any)[0] != first["finding_ids"].([]any)[0] {
		t.Fatalf("retry made another finding id: %v vs %v", again, first)
	}
	if incs := list(); len(incs) != 1 || incs[0].(map[string]any)["finding_count"] != float64(1) {
		t.Fatalf("after the retry: %v", incs)
	}
	// Resolved: nothing accepted, nothing changed.
	if m := post("resolved", start); m["accepted"] != float64(0) {
		t.Fatalf("resolved accepted: %v", m)
	}
	// The same series firing again later: a second finding, same incident.
	post("firing", start.Add(30*time.Minute))
	if incs := list(); len(incs) != 1 || incs[0].(map[string]any)["incident_id"] != id || incs[0].(map[string]any)["finding_count"] != float64(2) {
		t.Fatalf("after a new firing: %v", incs)
	}

	// Bad input: a clear 400, nothing stored; viewers may not post.
	bad := grafanaNotification("firing", map[string]string{"alertname": "x"}, "", start)
	expectError(t, e.do(t, "POST", "/api/v1/alerts/grafana", responderToken, "", bad), http.StatusBadRequest)
	expectError(t, e.do(t, "POST", "/api/v1/alerts/grafana", responderToken, "", []string{"not", "an", "object"}), http.StatusBadRequest)
	expectError(t, e.do(t, "POST", "/api/v1/alerts/grafana", viewerToken, "", grafanaNotification("firing", labels, "fp-2", start)), http.StatusForbidden)
	if m := decode(t, e.do(t, "GET", "/api/v1/incidents?rule_id=grafana-alert:x", viewerToken, "", nil)); m["total"] != float64(0) {
		t.Fatalf("a rejected alert made an incident: %v", m)
	}
}
