package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(testbed.Main(m))
}

// capture is a local receiver that keeps every request.
type capture struct {
	mu      sync.Mutex
	reqs    []captured
	status  []int // statuses to answer in order; then 200
	srv     *httptest.Server
	arrived chan struct{}
}

type captured struct {
	header http.Header
	body   []byte
}

func newCapture(t *testing.T, statuses ...int) *capture {
	c := &capture{status: statuses, arrived: make(chan struct{}, 100)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.reqs = append(c.reqs, captured{header: r.Header.Clone(), body: b})
		st := http.StatusOK
		if len(c.status) > 0 {
			st, c.status = c.status[0], c.status[1:]
		}
		c.mu.Unlock()
		w.WriteHeader(st)
		c.arrived <- struct{}{}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capture) all() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

func sampleIncident() (incident.Incident, []event.Finding) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	inc := incident.Incident{IncidentID: "inc-0123456789abcdef0123", Version: 1, Tenant: "acme", RuleID: "mcp-exfil-sensitive-read-then-egress",
		RuleTitle: "Sensitive file read followed by an outbound call", GroupKey: "acme|sess-1", Title: "Sensitive file read followed by an outbound call",
		Summary: "agent-1 read ~/.ssh/id_rsa, then called http_post <script>", Status: incident.StatusOpen, Severity: event.SeverityHigh,
		Tags: []string{"owasp-mcp:MCP01"}, FindingCount: 1, FirstSeen: t0, LastSeen: t0, AgentID: "agent-1", SessionKey: "sess-1",
		ServerName: "fs", ToolName: "http_post", CreatedAt: t0, UpdatedAt: t0}
	f := event.Finding{FindingID: "f1", Tenant: "acme", Time: t0, RuleID: inc.RuleID, Severity: event.SeverityHigh, GroupKey: inc.GroupKey,
		Summary: inc.Summary, AgentID: "agent-1", EventIDs: []string{"e1", "e2"}, Evidence: `{"path":"~/.ssh/id_rsa"}`, IncidentID: inc.IncidentID}
	return inc, []event.Finding{f}
}

func waitDelivered(t *testing.T, n *notify.Notifier) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still pending", n.Pending())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func run(t *testing.T, n *notify.Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestReceiverPayloads(t *testing.T) {
	store, _ := incidenttest.Store(t)
	hook, slack, pd := newCapture(t), newCapture(t), newCapture(t)
	t.Setenv("TEST_HOOK_SECRET", "s3cret")
	keyFile := t.TempDir() + "/pd"
	if err := os.WriteFile(keyFile, []byte("R0UTINGKEY0123456789012345678901\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Config{
		DataDir: t.TempDir(),
		Receivers: []notify.ReceiverConfig{
			{Name: "hook", Type: notify.TypeWebhook, URL: hook.srv.URL + "/hook", Secret: notify.Secret{Env: "TEST_HOOK_SECRET"}},
			{Name: "slack", Type: notify.TypeSlack, URL: slack.srv.URL + "/services/T/B/X"},
			{Name: "pd", Type: notify.TypePagerDuty, URL: pd.srv.URL + "/v2/enqueue", Secret: notify.Secret{File: keyFile}},
		},
		Routes: []notify.Route{{Name: "all-high", MinSeverity: event.SeverityHigh, Receivers: []string{"hook", "slack", "pd"}}},
		Links:  notify.Links{Incident: "https://grafana.example/a/mcpwatch-app/incidents/{incident_id}", API: "http://mcpwatch:8080", Runbook: "https://runbooks.example/{rule_id}"},
	}, notify.Options{Recorder: notify.RecorderFunc(store.InsertActions)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	inc, fs := sampleIncident()
	ctx := context.Background()
	n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeOpened, Incident: inc, Findings: fs})
	waitDelivered(t, n)
	ack := inc
	ack.Version, ack.Status = 2, incident.StatusAcknowledged
	n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeAcknowledged, Incident: ack}) // PagerDuty only
	waitDelivered(t, n)
	res := inc
	res.Version, res.Status, res.UpdatedAt = 3, incident.StatusResolved, inc.UpdatedAt.Add(time.Hour)
	n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeResolved, Incident: res})
	waitDelivered(t, n)

	// Webhook: signature, documented fields.
	hr := hook.all()
	if len(hr) != 2 {
		t.Fatalf("webhook got %d requests", len(hr))
	}
	for i, r := range hr {
		if err := notify.Verify([]byte("s3cret"), r.header.Get(notify.HeaderSignature), r.header.Get(notify.HeaderTimestamp), r.body, time.Now(), 5*time.Minute); err != nil {
			t.Fatalf("webhook %d: %v", i, err)
		}
		if err := notify.Verify([]byte("wrong"), r.header.Get(notify.HeaderSignature), r.header.Get(notify.HeaderTimestamp), r.body, time.Now(), 5*time.Minute); err == nil {
			t.Fatal("wrong secret verified")
		}
		var p map[string]any
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"version", "id", "status", "change", "incident", "findings", "links", "sent_at"} {
			if _, ok := p[k]; !ok {
				t.Fatalf("webhook payload lacks %q: %s", k, r.body)
			}
		}
		if p["id"] != r.header.Get("Idempotency-Key") {
			t.Fatalf("id %v != Idempotency-Key %q", p["id"], r.header.Get("Idempotency-Key"))
		}
		incj := p["incident"].(map[string]any)
		if incj["incident_id"] != inc.IncidentID || incj["severity"] != "high" {
			t.Fatalf("webhook incident = %v", incj)
		}
		links := p["links"].(map[string]any)
		if links["incident"] != "https://grafana.example/a/mcpwatch-app/incidents/"+inc.IncidentID {
			t.Fatalf("links = %v", links)
		}
		wantStatus := []string{"firing", "resolved"}[i]
		if p["status"] != wantStatus {
			t.Fatalf("webhook %d status %v", i, p["status"])
		}
	}
	if fs := mustJSON(t, hr[0].body)["findings"].([]any); len(fs) != 1 {
		t.Fatalf("findings = %v", fs)
	}
	// Tampered body fails.
	if err := notify.Verify([]byte("s3cret"), hr[0].header.Get(notify.HeaderSignature), hr[0].header.Get(notify.HeaderTimestamp), append(hr[0].body, ' '), time.Now(), time.Minute); err == nil {
		t.Fatal("tampered body verified")
	}

	// Slack: text + Block Kit blocks (https://api.slack.com/reference/block-kit/blocks).
	for _, r := range slack.all() {
		checkSlack(t, mustJSON(t, r.body))
	}
	if len(slack.all()) != 2 {
		t.Fatalf("slack got %d", len(slack.all()))
	}

	// PagerDuty Events v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).
	pr := pd.all()
	if len(pr) != 3 {
		t.Fatalf("pagerduty got %d", len(pr))
	}
	for i, r := range pr {
		checkPD(t, mustJSON(t, r.body), []string{"trigger", "acknowledge", "resolve"}[i], inc.IncidentID)
	}

	// Every attempt is in actions.
	as, err := store.ActionsFor(ctx, inc.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	delivered := map[string]int{}
	for _, a := range as {
		if a.Kind == incident.ActionNotification && a.Outcome == "delivered" && a.IdempotencyKey != "" {
			delivered[a.Target]++
		}
	}
	if delivered["hook"] != 2 || delivered["slack"] != 2 || delivered["pd"] != 3 {
		t.Fatalf("delivered actions = %v (%+v)", delivered, as)
	}
}

func mustJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

var slackBlockTypes = []string{"header", "section", "context", "actions", "divider"}

func checkSlack(t *testing.T, m map[string]any) {
	t.Helper()
	if s, ok := m["text"].(string); !ok || s == "" {
		t.Fatalf("slack text missing: %v", m)
	}
	blocks, ok := m["blocks"].([]any)
	if !ok || len(blocks) == 0 || len(blocks) > 50 {
		t.Fatalf("slack blocks: %v", m["blocks"])
	}
	sawButton := false
	for _, b := range blocks {
		bm := b.(map[string]any)
		typ, _ := bm["type"].(string)
		if !slices.Contains(slackBlockTypes, typ) {
			t.Fatalf("slack block type %q", typ)
		}
		switch typ {
		case "header":
			tx := bm["text"].(map[string]any)
			if tx["type"] != "plain_text" || len([]rune(tx["text"].(string))) > 150 {
				t.Fatalf("slack header %v", tx)
			}
		case "section":
			if bm["text"] == nil && bm["fields"] == nil {
				t.Fatalf("section without text or fields")
			}
			if fs, ok := bm["fields"].([]any); ok {
				if len(fs) > 10 {
					t.Fatal("more than 10 fields")
				}
				for _, f := range fs {
					fm := f.(map[string]any)
					if fm["type"] != "mrkdwn" && fm["type"] != "plain_text" {
						t.Fatalf("field %v", fm)
					}
					if s := fm["text"].(string); len(s) > 2000 || slices.Contains([]rune(s), '<') {
						t.Fatalf("field text unescaped or long: %q", s)
					}
				}
			}
		case "actions":
			for _, e := range bm["elements"].([]any) {
				em := e.(map[string]any)
				if em["type"] != "button" || em["url"] == "" {
					t.Fatalf("button %v", em)
				}
				sawButton = true
			}
		}
	}
	if !sawButton {
		t.Fatal("no link button in slack message")
	}
}

func checkPD(t *testing.T, m map[string]any, action, incID string) {
	t.Helper()
	if m["routing_key"] != "R0UTINGKEY0123456789012345678901" {
		t.Fatalf("routing_key = %v", m["routing_key"])
	}
	if m["event_action"] != action || m["dedup_key"] != incID {
		t.Fatalf("pd event %v", m)
	}
	if action != "trigger" {
		return
	}
	p, ok := m["payload"].(map[string]any)
	if !ok {
		t.Fatal("trigger without payload")
	}
	if s, _ := p["summary"].(string); s == "" || len(s) > 1024 {
		t.Fatalf("summary %q", s)
	}
	if s, _ := p["source"].(string); s == "" {
		t.Fatal("no source")
	}
	if !slices.Contains([]string{"critical", "error", "warning", "info"}, p["severity"].(string)) {
		t.Fatalf("severity %v", p["severity"])
	}
	if _, err := time.Parse(time.RFC3339, p["timestamp"].(string)); err != nil {
		t.Fatal(err)
	}
	if cd, ok := p["custom_details"].(map[string]any); !ok || cd["incident_id"] != incID {
		t.Fatalf("custom_details %v", p["custom_details"])
	}
}

func TestRoutingRateLimitAndRepeat(t *testing.T) {
	crit, team, all := newCapture(t), newCapture(t), newCapture(t)
	n, err := notify.New(notify.Config{
		DataDir: t.TempDir(),
		Receivers: []notify.ReceiverConfig{
			{Name: "crit", Type: notify.TypeWebhook, URL: crit.srv.URL},
			{Name: "team", Type: notify.TypeWebhook, URL: team.srv.URL},
			{Name: "all", Type: notify.TypeWebhook, URL: all.srv.URL},
		},
		Routes: []notify.Route{
			{Name: "critical", MinSeverity: event.SeverityCritical, Receivers: []string{"crit"}, Continue: true},
			{Name: "acme-exfil", Tenants: []string{"acme"}, Tags: []string{"owasp-mcp:MCP01"}, Receivers: []string{"team"}, RepeatInterval: time.Hour},
			{Name: "rest", Receivers: []string{"all"}, RateLimit: 2},
		},
	}, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	ctx := context.Background()
	inc, _ := sampleIncident()
	send := func(kind incident.ChangeKind, mod func(*incident.Incident)) {
		i := inc
		i.Version++
		inc = i
		mod(&inc)
		n.IncidentChanged(ctx, incident.Change{Kind: kind, Incident: inc})
	}
	send(incident.ChangeOpened, func(i *incident.Incident) {})                                  // team
	send(incident.ChangeUpdated, func(i *incident.Incident) { i.FindingCount = 2 })             // within repeat: nothing
	send(incident.ChangeEscalated, func(i *incident.Incident) { i.Severity = "critical" })      // crit + team
	send(incident.ChangeAcknowledged, func(i *incident.Incident) { i.Status = "acknowledged" }) // nothing
	other := func(id, tenant string) {
		o, _ := sampleIncident()
		o.IncidentID, o.Tenant, o.Severity = id, tenant, event.SeverityLow
		n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeOpened, Incident: o})
	}
	for _, id := range []string{"inc-a", "inc-b", "inc-c", "inc-d"} {
		other(id, "globex") // "rest" allows a burst of 2 per minute
	}
	waitDelivered(t, n)
	if got := len(crit.all()); got != 1 {
		t.Fatalf("crit got %d", got)
	}
	if got := len(team.all()); got != 2 {
		t.Fatalf("team got %d", got)
	}
	if got := len(all.all()); got != 2 {
		t.Fatalf("rate-limited route delivered %d, want 2", got)
	}
}

func TestRetryBackoffAndPermanentFailure(t *testing.T) {
	store, _ := incidenttest.Store(t)
	flaky := newCapture(t, 503, 429, 200)
	broken := newCapture(t, 400)
	n, err := notify.New(notify.Config{
		DataDir:        t.TempDir(),
		InitialBackoff: 20 * time.Millisecond,
		Receivers: []notify.ReceiverConfig{
			{Name: "flaky", Type: notify.TypeWebhook, URL: flaky.srv.URL},
			{Name: "broken", Type: notify.TypeAlertmanager, URL: broken.srv.URL},
		},
		Routes: []notify.Route{{Receivers: []string{"flaky", "broken"}}},
	}, notify.Options{Recorder: notify.RecorderFunc(store.InsertActions)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	inc, _ := sampleIncident()
	n.IncidentChanged(context.Background(), incident.Change{Kind: incident.ChangeOpened, Incident: inc})
	waitDelivered(t, n)
	reqs := flaky.all()
	if len(reqs) != 3 {
		t.Fatalf("flaky got %d attempts", len(reqs))
	}
	for _, r := range reqs {
		if r.header.Get("Idempotency-Key") != reqs[0].header.Get("Idempotency-Key") {
			t.Fatal("idempotency key changed between attempts")
		}
	}
	if len(broken.all()) != 1 {
		t.Fatalf("400 was retried: %d", len(broken.all()))
	}
	as, err := store.ActionsFor(context.Background(), inc.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, a := range as {
		outcomes = append(outcomes, a.Target+":"+a.Outcome)
	}
	slices.Sort(outcomes)
	want := []string{"broken:failed", "flaky:delivered", "flaky:retry", "flaky:retry"}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("actions = %v, want %v", outcomes, want)
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	err := notify.Config{
		Receivers: []notify.ReceiverConfig{{Name: "x", Type: "fax"}, {Name: "x", Type: notify.TypePagerDuty}},
		Routes:    []notify.Route{{MinSeverity: "urgent", Receivers: []string{"nope"}}},
	}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, s := range []string{"data_dir", "type must be", "duplicate name", "routing key", "min_severity", "unknown receiver"} {
		if !containsStr(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
}

func containsStr(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
