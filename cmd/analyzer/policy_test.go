package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestPolicyExport runs `analyzer policy export` against a real ClickHouse
// holding two agents' calls.
func TestPolicyExport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch := testbed.ClickHouse(t)
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	mk := func(id, agent, server, tool, args string, ago time.Duration) event.Event {
		return event.Event{EventID: id, Tenant: "acme", Kind: event.KindMessage, Time: now.Add(-ago), Source: event.SourceSpan,
			Observer: event.ObserverClient, Method: "tools/call", AgentID: agent, ServerName: server, ToolName: tool, Arguments: args, Outcome: event.OutcomeOK}
	}
	if err := st.InsertEvents(ctx, []event.Event{
		mk("p1", "coder", "filesystem", "read_file", `{"path":"/srv/a"}`, 2*24*time.Hour),
		mk("p2", "coder", "git", "git_log", `{"repo_path":"/srv/a"}`, 24*time.Hour),
		mk("p3", "support", "tickets", "get_ticket", `{"id":"T-1"}`, time.Hour),
		mk("p4", "coder", "shell", "run_command", `{"command":"ls"}`, 60*24*time.Hour), // older than --since
	}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		base := []string{"export", "--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database}
		code := policyMain(append(base, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := run("--tenant", "acme", "--agent", "coder")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{`mcp.tool.target == "filesystem" && mcp.tool.name in ["read_file"]`, `mcp.tool.target == "git" && mcp.tool.name in ["git_log"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("agentgateway policy lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "run_command") || strings.Contains(out, "tickets") {
		t.Errorf("policy holds calls outside --since or of another agent:\n%s", out)
	}
	code, out, stderr = run("--tenant", "acme", "--format", "toolhive", "--server", "filesystem")
	if code != 0 || !strings.Contains(out, `"read": [`) || !strings.Contains(out, `"/srv"`) {
		t.Fatalf("toolhive: exit %d, out %s, stderr %s", code, out, stderr)
	}
	for _, bad := range [][]string{
		{"--agent", "coder"},                                  // no tenant
		{"--tenant", "acme", "--format", "opa"},               // unknown format
		{"--tenant", "acme", "--since", "-1d"},                // bad range
		{"--tenant", "acme", "--agent", "nobody"},             // nothing learned
		{"--tenant", "acme", "--identity", "jwt.sub || true"}, // not a field path
	} {
		if code, _, stderr := run(bad...); code != 1 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 1 and a message", bad, code, stderr)
		}
	}
	if code := policyMain([]string{"import"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("unknown policy subcommand: exit %d, want 2", code)
	}
}
