package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/backtest"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestRulesBacktestCLI stores a few calls and backtests a changed copy of
// a pack rule with the binary: the JSON report diffs it against the
// deployed rule, and the text report names the classes.
func TestRulesBacktestCLI(t *testing.T) {
	bin := buildAnalyzer(t)
	ch := testbed.ClickHouse(t)
	ctx := t.Context()
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-2 * time.Hour)
	call := func(id, tool, args string, at time.Duration) event.Event {
		return event.Event{EventID: id, Tenant: "acme", Kind: event.KindMessage, Time: base.Add(at), Source: event.SourceSpan,
			Observer: event.ObserverServer, Outcome: event.OutcomeOK, Method: "tools/call", AgentID: "agent-1", SessionKey: "s1",
			ServerName: "files", ToolName: tool, Arguments: args}
	}
	evs := []event.Event{
		call("e-aws", "read_file", `{"path":"~/.aws/credentials"}`, time.Minute),
		call("e-ssh", "read_file", `{"path":"~/.ssh/id_rsa"}`, 2*time.Minute),
		call("e-dump", "dump_env", `{}`, 3*time.Minute),
		call("e-plain", "read_file", `{"path":"/work/main.go"}`, 4*time.Minute),
	}
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	rule := filepath.Join(t.TempDir(), "changed.yaml")
	os.WriteFile(rule, []byte(`id: mcp-sensitive-file-access
title: Access to a sensitive file (changed)
severity: high
status: test
kind: match
condition: event.arguments.contains(".aws/credentials") || event.tool_name == "dump_env"
summary: "{{agent_id}} touched {{tool_name}}"
`), 0o644)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"rules", "backtest", rule, "--since", "3h", "--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database}, args...)...)
		cmd.Env = append(os.Environ(), "MCPWATCH_ANALYZER_CONFIG=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("backtest: %v\n%s", err, out)
		}
		return string(out)
	}
	var rep backtest.Report
	if err := json.Unmarshal([]byte(run("--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Events != 4 || rep.Deployed == nil || rep.Diff.Both != 1 || rep.Diff.OnlyDeployed != 1 || rep.Diff.OnlyNew != 1 {
		t.Fatalf("report %+v, want 4 events, 1 in both, 1 only deployed, 1 only new", rep)
	}
	got := map[backtest.Class]string{}
	for _, r := range rep.Diff.Rows {
		got[r.Class] = r.EventID
	}
	if got[backtest.Both] != "e-aws" || got[backtest.OnlyDeployed] != "e-ssh" || got[backtest.OnlyNew] != "e-dump" {
		t.Errorf("diff rows %+v", rep.Diff.Rows)
	}
	text := run()
	for _, want := range []string{"1 only in new, 1 only in deployed, 1 in both", "only_new", "agent-1 touched dump_env"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}
