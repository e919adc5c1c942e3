package demo

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.Cleanup()
	os.Exit(code)
}

// TestDemoEndToEnd runs the README's main command in-process: the real
// collector binary, kfake, ClickHouse and (when present) the analyzer, with
// the demo scenario replayed over OTLP/HTTP.
func TestDemoEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The collector keeps its fingerprint key in the data dir (created on
	// first start, owner-only).
	if st, err := os.Stat(filepath.Join(s.Dir, "redact.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("redact.key in the demo dir: %v", err)
	}
	r, err := s.Run(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}

	// What was sent is what the scenario holds, and all of it reached Kafka
	// (count in = count out; nothing was rejected).
	c := Scenario(1)
	if r.Replay.Events != len(c.Events) || r.Replay.Rejected != 0 {
		t.Fatalf("replayed %d events with %d rejected, want %d and 0", r.Replay.Events, r.Replay.Rejected, len(c.Events))
	}
	if r.KafkaEvents != len(c.Events) || r.KafkaRecords < 1 || r.KafkaRecords > int64(r.KafkaEvents) {
		t.Fatalf("kafka holds %d events in %d records, want %d events", r.KafkaEvents, r.KafkaRecords, len(c.Events))
	}

	// The analyzer wrote every event to ClickHouse.
	if s.AnalyzerURL == "" {
		t.Fatal("the analyzer did not start (cmd/analyzer missing?)")
	}
	if r.EventsInClickHouse != uint64(len(c.Events)) {
		t.Fatalf("clickhouse holds %d events, want %d", r.EventsInClickHouse, len(c.Events))
	}

	// The calls table adds up to the scenario's messages, per tenant.
	wantMsgs := map[string]int{}
	for _, l := range c.Events {
		if l.Event.Kind == event.KindMessage {
			wantMsgs[l.Event.Tenant]++
		}
	}
	gotMsgs := map[string]int{}
	for _, row := range r.Calls {
		gotMsgs[row.Tenant] += row.Count
	}
	for tenant, n := range wantMsgs {
		if gotMsgs[tenant] != n {
			t.Errorf("tenant %s: %d messages in the calls table, want %d", tenant, gotMsgs[tenant], n)
		}
	}

	// The rug pull is visible in the inventory: the tool it targets has two
	// definition hashes.
	changed := 0
	for _, d := range r.ToolDefs {
		if len(d.Hashes) > 1 {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("no tool definition changed; the rug-pull case %q should change one", scenario.DemoAttacks[1])
	}
	// The exfiltration case carries an AWS key that the collector redacted
	// and tagged.
	if r.Tags["secret:aws_access_key_id"] == 0 && r.Tags["secret:aws_secret_access_key"] == 0 {
		t.Errorf("no secret:aws_* tags; tags = %v", r.Tags)
	}

	// Detections: every attack embedded in the scenario fired its rule and
	// opened an incident.
	fired := r.RulesFired()
	incidentRules := map[string]bool{}
	for _, in := range r.Incidents {
		incidentRules[in.RuleID] = true
	}
	for _, a := range scenario.DemoAttacks {
		rule, _, _ := strings.Cut(a, "/")
		if !fired[rule] {
			t.Errorf("attack %s: rule %s did not fire (fired: %v)", a, rule, fired)
		}
		if !incidentRules[rule] {
			t.Errorf("attack %s: no incident for rule %s", a, rule)
		}
	}
	// Notifications: the local webhook receiver got signed deliveries.
	if len(r.Webhooks) == 0 {
		t.Error("no webhook notification arrived")
	}
	for _, n := range r.Webhooks {
		if !n.SignatureOK {
			t.Errorf("webhook with an invalid signature: %s", n.Body)
		}
	}

	// Human in the loop: the exfiltration playbook waits for approval;
	// approving it through the API makes it call the (stand-in) gateway.
	if len(r.Approvals) == 0 {
		t.Fatal("no playbook step waits for approval")
	}
	before := len(s.Webhook.GatewayCalls())
	a := r.Approvals[0]
	req, _ := http.NewRequest(http.MethodPost, a.ApproveURL(s.AnalyzerURL), strings.NewReader(`{"note":"demo test"}`))
	req.Header.Set("Authorization", "Bearer "+s.APIToken)
	req.Header.Set("X-Mcpwatch-Actor", "demo-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("approve %s: %s", a.ApproveURL(s.AnalyzerURL), resp.Status)
	}
	deadline := time.Now().Add(time.Minute)
	for len(s.Webhook.GatewayCalls()) == before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	calls := s.Webhook.GatewayCalls()
	if len(calls) == before {
		t.Fatal("approving the step made no gateway call")
	}
	if !strings.Contains(calls[before].Path, "/revoke") {
		t.Errorf("first call after approval went to %s, want the session revoke", calls[before].Path)
	}

	var out bytes.Buffer
	r.Print(&out, s, 10)
	for _, want := range []string{"Tool calls by tool and outcome", "Tool definitions", "Attacks embedded in the scenario", "Incidents (", "Where to look next", s.OTLPHTTP} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())

	s.Close()
	for name, p := range s.children {
		if !p.Exited() {
			t.Errorf("%s still running after Close", name)
		}
	}
}
