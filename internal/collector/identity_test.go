package collector

import (
	"os"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestIdentityThroughCollector sends real captures (MCP Python SDK 2.3.0,
// OpenLLMetry Python) as OTLP/HTTP protobuf and JSON to a collector with a
// configured identity chain: every event on the topic has the configured
// agent and a call id, and ResponseStreamWriter spans are ignored as
// correlation, not rejected.
func TestIdentityThroughCollector(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		cfg.Identity.AgentResourceAttributes = []string{"k8s.pod.name", "service.name"}
	})
	waitReady(t, c)
	send := func(path, ct string) {
		t.Helper()
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if r := post(t, c, "/v1/traces", ct, body, authHeader()); r.code != 200 {
			t.Fatalf("%s: %d %s", path, r.code, r.body)
		}
	}
	const sdk, tl = "../event/testdata/mcp-python-sdk-2.3.0/", "../event/testdata/traceloop-python-0.62.4/"
	send(sdk+"client.pb", "application/x-protobuf") // direct mapping
	send(sdk+"client.json", "application/json")     // pdata, then the same mapping
	send(tl+"client.pb", "application/x-protobuf")
	evs := decodeAll(t, readTopic(t, k.Brokers, testTopic))
	if len(evs) != 13+13+13+3 {
		t.Fatalf("%d events", len(evs))
	}
	perCall := map[string]int{}
	for _, e := range evs {
		want := "py-mcp-demo-client"
		if e.AgentID != want || e.CallID == "" {
			t.Errorf("event %s: agent %q call %q", e.EventID, e.AgentID, e.CallID)
		}
		if e.PartitionKey() != testTenant+"/agent:"+want {
			t.Errorf("partition key %q", e.PartitionKey())
		}
		if e.Kind == event.KindMessage {
			perCall[e.CallID]++
		}
	}
	// The SDK capture was sent twice: its 13 calls, each twice.
	twice := 0
	for _, n := range perCall {
		if n == 2 {
			twice++
		}
	}
	if twice != 13 {
		t.Errorf("%d calls seen twice, want 13", twice)
	}
	_, metrics := httpGet(t, "http://"+c.AdminAddr()+"/metrics")
	for _, want := range []string{`mcpwatch_collector_ignored_total{reason="correlation"} 13`, `mcpwatch_collector_ignored_total{reason="not_mcp"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `rejected_total{reason="correlation"}`) {
		t.Error("correlation spans rejected")
	}
}
