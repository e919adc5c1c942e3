package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// startAnalyzer starts cmd/analyzer against the stack's Kafka and ClickHouse
// (it migrates the database on start) and waits for its /readyz.
func (s *Stack) startAnalyzer(ctx context.Context, bin, root string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	admin := "127.0.0.1:" + strconv.Itoa(ports[0])
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: %s
clickhouse:
  addr: [%s]
  database: %s
analyzer:
  group: mcpwatch-demo
  batch_interval: 200ms
  admin_addr: "%s"
response:
  data_dir: %s
  playbooks_dir: %s
  api_tokens:
    - {name: demo, role: admin, env: MCPWATCH_DEMO_API_TOKEN, forward_actor: true}
  notify:
    receivers:
      - name: secops
        type: webhook
        url: %s/webhook
        secret: {env: MCPWATCH_DEMO_WEBHOOK_SECRET}
      # The session-hijack playbook pages this receiver (check-config
      # refuses a playbook whose receiver does not exist); it stands in
      # for PagerDuty on the local receiver.
      - name: oncall-pagerduty
        type: webhook
        url: %s/oncall
        secret: {env: MCPWATCH_DEMO_WEBHOOK_SECRET}
    routes:
      - name: everything-medium-and-up
        min_severity: medium
        receivers: [secops]
    links:
      api: %s
    initial_backoff: 200ms
log:
  level: info
  format: text
`, strings.Join(s.Kafka.Brokers, ", "), s.Topic, s.CH.Addr, s.CH.Database, admin,
		filepath.Join(s.Dir, "response"), filepath.Join(root, "playbooks"), s.Webhook.URL, s.Webhook.URL, "http://"+admin)
	path := filepath.Join(s.Dir, "analyzer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("cannot write analyzer config: %w", err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Env = append(os.Environ(),
		"MCPWATCH_DEMO_API_TOKEN="+s.APIToken,
		"MCPWATCH_DEMO_WEBHOOK_SECRET="+s.Webhook.Secret,
		// The example playbooks call an MCP gateway's admin API; the local
		// receiver stands in for it.
		"MCPWATCH_GATEWAY_URL="+s.Webhook.URL+"/gateway",
		"MCPWATCH_GATEWAY_TOKEN="+randomToken(),
	)
	s.AnalyzerURL = "http://" + admin
	if err := s.startChild(ctx, "analyzer", cmd, s.AnalyzerURL+"/readyz"); err != nil {
		s.AnalyzerURL = ""
		return err
	}
	return nil
}

// collectAnalysis fills in what the analyzer produced: it waits until every
// record in Kafka is an event row in ClickHouse, then reads the incidents.
func (s *Stack) collectAnalysis(ctx context.Context, r *Report) error {
	if s.AnalyzerURL == "" {
		return nil
	}
	s.log.Info("waiting for the analyzer to write every event to ClickHouse", "events", r.KafkaEvents)
	if _, err := s.waitForEvents(ctx, uint64(r.KafkaEvents), 2*time.Minute); err != nil {
		return fmt.Errorf("cannot see every event in ClickHouse: %w\n%s", err, tailLog(s, "analyzer"))
	}
	// Detections run as events arrive; findings and incidents follow their
	// batch (the last one may still be in flight; the respond role stores a
	// batch's incidents just before its findings): wait until every embedded
	// attack's rule has findings and an incident and two reads agree, or 60 s.
	var last uint64
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		if err := s.queryClickHouse(ctx, r); err != nil {
			return err
		}
		n := findingCount(r)
		if i > 0 && n == last && allAttacksDetected(r) || time.Now().After(deadline) {
			break
		}
		last = n
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	// Notifications leave through the outbox asynchronously: wait until one
	// webhook per incident worth notifying arrived, or 20 s.
	want := 0
	for _, in := range r.Incidents {
		switch in.Severity {
		case "medium", "high", "critical":
			want++
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(s.Webhook.Webhooks()) < want && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	r.Webhooks = s.Webhook.Webhooks()
	r.GatewayCalls = s.Webhook.GatewayCalls()
	var err error
	if r.Approvals, err = s.waitingApprovals(ctx, r.Incidents); err != nil {
		return err
	}
	return nil
}

func tailLog(s *Stack, name string) string {
	b, err := os.ReadFile(s.LogPath(name))
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// allAttacksDetected reports whether every attack of the demo scenario has
// findings and an incident for its rule.
func allAttacksDetected(r *Report) bool {
	incident, found := map[string]bool{}, map[string]bool{}
	for _, in := range r.Incidents {
		incident[in.RuleID] = true
	}
	for _, f := range r.Findings {
		found[f.RuleID] = f.Count > 0
	}
	for _, a := range scenario.DemoAttacks {
		rule, _, _ := strings.Cut(a, "/")
		if !incident[rule] || !found[rule] {
			return false
		}
	}
	return true
}

// findingCount is the number of findings stored, over every rule.
func findingCount(r *Report) uint64 {
	var n uint64
	for _, f := range r.Findings {
		n += f.Count
	}
	return n
}
