package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestRunWiresDetectionsAndAPI runs the binary with the built-in rule pack
// and the incident response stack: a tool call carrying a (redacted) secret
// becomes a stored finding and an incident served by the API on the admin
// listener.
func TestRunWiresDetectionsAndAPI(t *testing.T) {
	bin := buildAnalyzer(t)
	k := testbed.Kfake(t)
	ch := testbed.ClickHouse(t)
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "analyzer.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
kafka: {brokers: [%s], topic: wire.ev, dead_letter_topic: wire.dlq, partitions: 1}
clickhouse: {addr: [%s], database: %s}
analyzer: {admin_addr: "%s", batch_interval: 200ms}
response:
  data_dir: %s
  api_tokens:
    - {name: test, role: admin, env: MCPWATCH_TEST_API_TOKEN}
log: {format: text}
`, k.Brokers[0], ch.Addr, ch.Database, admin, filepath.Join(dir, "data"))), 0o644)
	const token = "wiring-test-token-0123456789"
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Env = append(os.Environ(), "MCPWATCH_TEST_API_TOKEN="+token)
	logPath := filepath.Join(dir, "run.log")
	p, err := testbed.StartProcess(cmd, logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(20 * time.Second)

	e := event.Event{EventID: "wire-1", Tenant: "acme", Kind: event.KindMessage, Time: time.Now().UTC(), Source: event.SourceSpan,
		Observer: event.ObserverServer, Method: "tools/call", AgentID: "agent-9", SessionKey: "s-9", ServerName: "mail", ToolName: "send_email",
		Arguments: `{"body":"key [REDACTED:aws_access_key:1a2b3c4d]"}`, Tags: []string{"secret:aws_access_key"}, Outcome: event.OutcomeOK}
	v, err := event.Marshal([]event.Event{e})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The analyzer creates the topic after migrating; until then the
	// produce fails with UNKNOWN_TOPIC_OR_PARTITION.
	for start := time.Now(); ; {
		err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "wire.ev", Key: []byte(e.PartitionKey()), Value: v}).FirstErr()
		if err == nil {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	get := func(path string, auth bool) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+admin+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := get("/api/v1/incidents", true)
		if code == 200 && strings.Contains(body, "mcp-secret-in-arguments") {
			break
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("no incident: %d %s\n%s", code, body, testbed.Tail(logPath, 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := get("/api/v1/incidents", false); code != 401 {
		t.Errorf("unauthenticated API call answered %d", code)
	}
	if code, _ := get("/readyz", false); code != 200 {
		t.Errorf("readyz %d", code)
	}
	if code, body := get("/metrics", false); code != 200 || !strings.Contains(body, "mcpwatch_analyzer_rows_inserted_total") {
		t.Errorf("metrics %d", code)
	}
}
