package testbed

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAlertmanagerAcceptsAndGroupsAlerts(t *testing.T) {
	base := Alertmanager(t)
	body := `[{"labels":{"alertname":"mcpwatch-test","tenant":"t1","rule_id":"r1","severity":"high"},
	           "annotations":{"summary":"testbed check"},
	           "startsAt":"` + time.Now().UTC().Format(time.RFC3339) + `"}]`
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
	// Alerts are visible in groups as soon as they are accepted (the group
	// wait only delays notifications); poll briefly for robustness.
	var groups []struct {
		Labels map[string]string `json:"labels"`
		Alerts []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	for range 50 {
		r, err := http.Get(base + "/api/v2/alerts/groups")
		if err != nil {
			t.Fatal(err)
		}
		groups = nil
		err = json.NewDecoder(r.Body).Decode(&groups)
		r.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(groups) != 1 || len(groups[0].Alerts) != 1 {
		t.Fatalf("got groups %+v, want one group with one alert", groups)
	}
	if g := groups[0].Labels; g["rule_id"] != "r1" || g["tenant"] != "t1" {
		t.Fatalf("group labels %v, want rule_id=r1 tenant=t1", g)
	}
}
