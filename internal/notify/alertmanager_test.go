package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

type amGroup struct {
	Labels map[string]string `json:"labels"`
	Alerts []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Status      struct {
			State string `json:"state"`
		} `json:"status"`
	} `json:"alerts"`
}

func amGET(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestRealAlertmanagerGroupsOurAlerts sends incidents to a real Alertmanager
// (built from github.com/prometheus/alertmanager by scripts/install-deps.sh,
// started by testbed) and reads them back grouped from its API.
func TestRealAlertmanagerGroupsOurAlerts(t *testing.T) {
	am := testbed.Alertmanager(t)
	n, err := notify.New(notify.Config{
		DataDir:   t.TempDir(),
		Receivers: []notify.ReceiverConfig{{Name: "am", Type: notify.TypeAlertmanager, URL: am}},
		Routes:    []notify.Route{{Receivers: []string{"am"}}},
		Links:     notify.Links{Incident: "https://grafana.example/incidents/{incident_id}", Runbook: "https://runbooks.example/{rule_id}"},
	}, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	ctx := context.Background()
	mk := func(id, rule string, sev event.Severity, agent string) incident.Incident {
		inc, _ := sampleIncident()
		inc.IncidentID, inc.RuleID, inc.Severity, inc.AgentID = id, rule, sev, agent
		inc.FirstSeen = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		return inc
	}
	incs := []incident.Incident{
		mk("inc-1", "mcp-exfil", event.SeverityHigh, "agent-1"),
		mk("inc-2", "mcp-exfil", event.SeverityCritical, "agent-2"),
		mk("inc-3", "mcp-ssrf", event.SeverityMedium, "agent-1"),
	}
	for _, inc := range incs {
		n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeOpened, Incident: inc})
	}
	waitDelivered(t, n)

	var groups []amGroup
	deadline := time.Now().Add(30 * time.Second)
	for {
		amGET(t, am+"/api/v2/alerts/groups", &groups)
		total := 0
		for _, g := range groups {
			total += len(g.Alerts)
		}
		if total == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert groups never held our 3 alerts: %+v", groups)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string][]string{}
	for _, g := range groups {
		key := g.Labels["alertname"] + "/" + g.Labels["tenant"]
		for _, a := range g.Alerts {
			got[key] = append(got[key], a.Labels["incident_id"])
			if a.Labels["severity"] == "" || a.Labels["agent_id"] == "" || a.Labels["server_name"] != "fs" || a.Labels["tool_name"] != "http_post" {
				t.Errorf("labels %v", a.Labels)
			}
			if a.Annotations["summary"] == "" || a.Annotations["description"] == "" || a.Annotations["runbook_url"] != "https://runbooks.example/"+g.Labels["alertname"] {
				t.Errorf("annotations %v", a.Annotations)
			}
			if a.Status.State != "active" {
				t.Errorf("state %q", a.Status.State)
			}
		}
		sort.Strings(got[key])
	}
	want := map[string][]string{"mcp-exfil/acme": {"inc-1", "inc-2"}, "mcp-ssrf/acme": {"inc-3"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups = %v, want %v", got, want)
	}

	// Resolving (and suppressing) sends endsAt; Alertmanager stops listing
	// the alert as active.
	res := incs[0]
	res.Version, res.Status, res.UpdatedAt = 2, incident.StatusResolved, time.Now().UTC().Truncate(time.Second)
	n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeResolved, Incident: res})
	sup := incs[2]
	sup.Version, sup.Status, sup.UpdatedAt = 2, incident.StatusSuppressed, time.Now().UTC().Truncate(time.Second)
	n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeSuppressed, Incident: sup})
	waitDelivered(t, n)
	deadline = time.Now().Add(30 * time.Second)
	for {
		var alerts []struct {
			Labels map[string]string `json:"labels"`
		}
		amGET(t, am+"/api/v2/alerts?active=true", &alerts)
		var ids []string
		for _, a := range alerts {
			ids = append(ids, a.Labels["incident_id"])
		}
		sort.Strings(ids)
		if slices.Equal(ids, []string{"inc-2"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("active alerts after resolve: %v", ids)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
