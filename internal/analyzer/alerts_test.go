package analyzer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestGrafanaAlertThroughRespondRole: Grafana's webhook notification posted
// to a real analyzer API goes through the findings topic (kfake) to the
// respond role, which opens the incident in ClickHouse and starts its
// playbook. Grafana's retry of the same notification is counted once: a
// later firing of the same series, sent after the retry on the same key
// (so consumed after it), makes the count 2, not 3.
func TestGrafanaAlertThroughRespondRole(t *testing.T) {
	e := newPBRoute(t, "ga")
	_, srv, _ := e.responder(t, true)
	notification := func(startsAt time.Time) string {
		return fmt.Sprintf(`{"receiver":"mcpwatch analyzer","status":"firing","orgId":1,"version":"1","groupKey":"{}:{alertname=\"denials\"}",
"alerts":[{"status":"firing","labels":{"alertname":"denials","agent":"a1","tenant":"acme","severity":"high"},
"annotations":{"summary":"a1 is denied"},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":"0f1e2d3c4b5a6978",
"generatorURL":"http://grafana:3000/alerting/grafana/x/view","values":{"B":0.8}}],"externalURL":"http://grafana:3000/"}`, startsAt.UTC().Format(time.RFC3339))
	}
	post := func(body string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/alerts/grafana", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+pbRouteToken)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	type incident struct {
		ID           string `json:"incident_id"`
		Status       string `json:"status"`
		FindingCount int    `json:"finding_count"`
		AgentID      string `json:"agent_id"`
	}
	list := func() ([]incident, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/incidents?rule_id=grafana-alert:denials", nil)
		req.Header.Set("Authorization", "Bearer "+pbRouteToken)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer r.Body.Close()
		var v struct{ Incidents []incident }
		return v.Incidents, json.NewDecoder(r.Body).Decode(&v)
	}
	start := time.Now().Add(-time.Minute)
	// 503 until the respond role's producer is up; Grafana retries so.
	testbed.WaitUntil(t, "the alert to be accepted", time.Minute, func() (bool, string) {
		code := post(notification(start))
		return code == http.StatusAccepted, fmt.Sprint(code)
	})
	var inc incident
	testbed.WaitUntil(t, "the incident", time.Minute, func() (bool, string) {
		incs, err := list()
		if err != nil || len(incs) != 1 {
			return false, fmt.Sprint(incs, err)
		}
		inc = incs[0]
		return true, ""
	})
	if inc.Status != "open" || inc.AgentID != "a1" || inc.FindingCount != 1 {
		t.Fatalf("incident %+v", inc)
	}
	// Its playbook started: the first step called the gateway.
	testbed.WaitUntil(t, "the playbook's first step", time.Minute, func() (bool, string) {
		return len(e.paths()["/disable"]) > 0, fmt.Sprint(e.paths())
	})
	if code := post(notification(start)); code != http.StatusAccepted {
		t.Fatalf("retry: %d", code)
	}
	if code := post(notification(start.Add(30 * time.Second))); code != http.StatusAccepted {
		t.Fatalf("later firing: %d", code)
	}
	testbed.WaitUntil(t, "the later firing counted", time.Minute, func() (bool, string) {
		incs, err := list()
		return err == nil && len(incs) == 1 && incs[0].FindingCount >= 2, fmt.Sprint(incs, err)
	})
	if incs, err := list(); err != nil || len(incs) != 1 || incs[0].ID != inc.ID || incs[0].FindingCount != 2 {
		t.Fatalf("after a retry and a later firing: %+v %v (want one incident, 2 findings)", incs, err)
	}
}
