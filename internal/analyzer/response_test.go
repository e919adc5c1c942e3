package analyzer_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/analyzer"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestStackFindingToSignedWebhook: findings through the wired stack open an
// incident, a signed webhook arrives and verifies, and the API shows the
// incident with its delivery in actions.
const responderToken = "responder-token-0123456789"

func TestStackFindingToSignedWebhook(t *testing.T) {
	ch := testbed.ClickHouse(t)
	conn := ch.Conn(t)
	incidenttest.Migrate(t, conn, ch.Database)
	var mu sync.Mutex
	var bodies []notify.WebhookPayload
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := notify.Verify([]byte("hook-secret"), r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), b, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p notify.WebhookPayload
		_ = json.Unmarshal(b, &p)
		mu.Lock()
		bodies = append(bodies, p)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	t.Setenv("HOOK_SECRET", "hook-secret")
	t.Setenv("API_TOKEN", responderToken)
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	st, err := analyzer.NewResponder(context.Background(), analyzer.ResponseConfig{
		DataDir: t.TempDir(),
		Notify: notify.Config{
			Receivers: []notify.ReceiverConfig{{Name: "hook", Type: notify.TypeWebhook, URL: hook.URL, Secret: notify.Secret{Env: "HOOK_SECRET"}}},
			Routes:    []notify.Route{{MinSeverity: event.SeverityMedium, Receivers: []string{"hook"}}},
		},
		Tokens: []analyzer.TokenConfig{{Name: "grafana", Role: api.RoleResponder, Env: "API_TOKEN"}},
	}, analyzer.ResponderOptions{Conn: conn, Database: ch.Database, Pack: func() *detect.Pack { return pack }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = st.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	fs := []event.Finding{{FindingID: "f1", Tenant: "acme", Time: time.Now().UTC(), RuleID: "mcp-ssrf", Severity: event.SeverityHigh,
		GroupKey: "acme|a1", AgentID: "a1"}, {FindingID: "f0", Tenant: "acme", Time: time.Now().UTC(), RuleID: "mcp-noise", Severity: event.SeverityLow, GroupKey: "acme|a1"}}
	if err := st.Manager.HandleFindings(ctx, fs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for st.Notifier.Pending() > 0 || len(snapshot(&mu, &bodies)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("webhook never delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := snapshot(&mu, &bodies)
	if len(got) != 1 || got[0].Incident.IncidentID != fs[0].IncidentID || got[0].Status != "firing" {
		t.Fatalf("webhooks %+v", got)
	}
	srv := httptest.NewServer(st.Handler)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/incidents/"+fs[0].IncidentID, nil)
	req.Header.Set("Authorization", "Bearer "+responderToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Actions []struct{ Kind, Outcome, Target string } `json:"actions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET incident: %d %v", resp.StatusCode, err)
	}
	if len(m.Actions) != 1 || m.Actions[0].Kind != "notification" || m.Actions[0].Outcome != "delivered" || m.Actions[0].Target != "hook" {
		t.Fatalf("actions %+v", m.Actions)
	}
	// Metrics: one delivery, two incidents opened (one high, one low), nothing pending.
	for metric, want := range map[string]float64{
		`mcpwatch_notify_attempts_total{outcome="delivered",receiver="hook"}`: 1,
		`mcpwatch_incident_changes_total{change="opened"}`:                    2,
		`mcpwatch_incidents{status="open"}`:                                   2,
		`mcpwatch_notify_outbox_pending`:                                      0,
	} {
		if got := gather(t, reg, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

// gather returns the value of one series, written name{label="v",...}.
func gather(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			if name != series {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

func TestRulesFromPack(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	v, err := api.RulesFromPack(func() *detect.Pack { return pack })(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rules := v.([]api.RuleInfo)
	if len(rules) != len(pack.Rules) || len(rules) == 0 {
		t.Fatalf("%d rules, pack has %d", len(rules), len(pack.Rules))
	}
	for i, r := range rules {
		if r.ID != pack.Rules[i].ID || r.Severity == "" || r.DedupSeconds <= 0 || r.Version == "" {
			t.Fatalf("rule %+v", r)
		}
	}
	dedup := analyzer.DedupFromPack(func() *detect.Pack { return pack })
	if got := dedup(pack.Rules[0].ID); got != pack.Rules[0].DedupWindow() || got <= 0 {
		t.Fatalf("dedup = %v", got)
	}
	if got := dedup("no-such-rule"); got != 0 {
		t.Fatalf("unknown rule dedup = %v, want 0 (the manager's default)", got)
	}
}

func snapshot(mu *sync.Mutex, b *[]notify.WebhookPayload) []notify.WebhookPayload {
	mu.Lock()
	defer mu.Unlock()
	return append([]notify.WebhookPayload(nil), (*b)...)
}
