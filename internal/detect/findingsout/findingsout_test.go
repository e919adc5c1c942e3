package findingsout

import (
	"context"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

func sample() []event.Finding {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return []event.Finding{
		{FindingID: "f1", Tenant: "acme", Time: t0, RuleID: "mcp-a", RuleVersion: "v1", RuleTitle: "A", RuleKind: "match",
			Severity: event.SeverityHigh, Tags: []string{"owasp-mcp:MCP01"}, GroupKey: "acme|s1", Summary: "agent read a key",
			AgentID: "ag", UserID: "u", SessionKey: "s1", ServerName: "fs", ToolName: "read_file", EventIDs: []string{"e1", "e2"}, Evidence: `{"x":1}`,
			SuppressKey: "ag|fs|read_file", SuppressWindow: time.Hour, SuppressPos: 3<<40 | 17},
		{FindingID: "f2", Tenant: "acme", Time: t0.Add(time.Second), RuleID: "mcp-b", RuleVersion: "v2", RuleTitle: "B", RuleKind: "sequence",
			Severity: event.SeverityCritical, GroupKey: "acme|s2", Summary: "b", EventIDs: []string{"e3"}, Evidence: `{}`},
	}
}

func TestRoundTrip(t *testing.T) {
	fs := sample()
	b, err := Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, fs)
	}
	lr := ToLogs(fs[1:]).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if lr.EventName() != EventName || lr.SeverityText() != "critical" || lr.SeverityNumber().String() != "Fatal" {
		t.Errorf("record = %s %s %s", lr.EventName(), lr.SeverityText(), lr.SeverityNumber())
	}
}

func TestPublishToKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := testbed.Kfake(t)
	const topic = "mcpwatch.findings.v1"
	if err := k.CreateTopic(ctx, topic, 3); err != nil {
		t.Fatal(err)
	}
	prod := k.Client(t)
	if err := NewPublisher(prod, topic).HandleFindings(ctx, sample()); err != nil {
		t.Fatal(err)
	}
	cons := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []event.Finding
	keys := map[string]bool{}
	for len(got) < 2 {
		fetches := cons.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			fs, err := Unmarshal(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			keys[string(r.Key)] = true
			got = append(got, fs...)
		})
	}
	if len(got) != 2 || !keys["acme/mcp-a/acme|s1"] || !keys["acme/mcp-b/acme|s2"] {
		t.Fatalf("consumed %+v keys %v", got, keys)
	}
}
