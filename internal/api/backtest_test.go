package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/backtest"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestBacktestEndpoint backtests a changed pack rule over stored events:
// the report diffs it against the deployed rule; viewers may not run it;
// bad requests are 400 with the reason.
func TestBacktestEndpoint(t *testing.T) {
	e := newEnv(t)
	base := time.Now().UTC().Add(-30 * time.Minute)
	call := func(id, tenant, tool, args string) event.Event {
		return event.Event{EventID: id, Tenant: tenant, Kind: event.KindMessage, Time: base, Source: event.SourceSpan,
			Observer: event.ObserverServer, Outcome: event.OutcomeOK, Method: "tools/call", AgentID: "agent-1", SessionKey: "s1",
			ServerName: "files", ToolName: tool, Arguments: args}
	}
	if err := e.events.InsertEvents(t.Context(), []event.Event{
		call("e-aws", "acme", "read_file", `{"path":"~/.aws/credentials"}`),
		call("e-ssh", "acme", "read_file", `{"path":"~/.ssh/id_rsa"}`),
		call("e-dump", "acme", "dump_env", `{}`),
		call("e-other", "initech", "dump_env", `{}`),
	}); err != nil {
		t.Fatal(err)
	}
	changed := `id: mcp-sensitive-file-access
title: Access to a sensitive file (changed)
severity: high
status: test
kind: match
condition: event.arguments.contains(".aws/credentials") || event.tool_name == "dump_env"
summary: "{{agent_id}} touched {{tool_name}}"
`
	body := map[string]any{"rule_yaml": changed, "since": "1h", "tenant": "acme"}
	r := e.do(t, "POST", "/api/v1/rules/backtest", responderToken, "", body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var rep backtest.Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatal(err)
	}
	classes := map[string]backtest.Class{}
	for _, row := range rep.Diff.Rows {
		classes[row.EventID] = row.Class
	}
	if rep.Events != 3 || rep.Diff.Both != 1 || rep.Diff.OnlyDeployed != 1 || rep.Diff.OnlyNew != 1 ||
		classes["e-aws"] != backtest.Both || classes["e-ssh"] != backtest.OnlyDeployed || classes["e-dump"] != backtest.OnlyNew {
		t.Fatalf("report %s", r.body)
	}

	expectError(t, e.do(t, "POST", "/api/v1/rules/backtest", viewerToken, "", body), http.StatusForbidden)
	// The rule list carries each rule's file, to edit and backtest.
	var list struct {
		Rules []struct{ ID, YAML string }
	}
	if err := json.Unmarshal(e.do(t, "GET", "/api/v1/rules", viewerToken, "", nil).body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Rules) == 0 {
		t.Fatal("no rules listed")
	}
	for _, r := range list.Rules {
		if !strings.HasPrefix(r.YAML, "id: "+r.ID+"\n") {
			t.Errorf("rule %s: yaml %.40q", r.ID, r.YAML)
		}
	}
	for name, bad := range map[string]map[string]any{
		"both rule fields":  {"rule_yaml": changed, "rule_id": "mcp-sensitive-file-access", "since": "1h"},
		"no rule":           {"since": "1h"},
		"unknown rule id":   {"rule_id": "nope", "since": "1h"},
		"broken rule":       {"rule_yaml": "id: x\nkind: match\ncondition: event.nope ==\n", "since": "1h"},
		"no since":          {"rule_id": "mcp-sensitive-file-access"},
		"since after until": {"rule_id": "mcp-sensitive-file-access", "since": time.Now().UTC().Format(time.RFC3339), "until": "2h"},
		"bad time":          {"rule_id": "mcp-sensitive-file-access", "since": "yesterday"},
		"unknown field":     {"rule_id": "mcp-sensitive-file-access", "since": "1h", "notify": true},
		"negative limit":    {"rule_id": "mcp-sensitive-file-access", "since": "1h", "max_events": -1},
	} {
		r := e.do(t, "POST", "/api/v1/rules/backtest", responderToken, "", bad)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, r.status, r.body)
		}
	}
	// A limit below the analyzer's is honoured and reported.
	r = e.do(t, "POST", "/api/v1/rules/backtest", responderToken, "", map[string]any{"rule_id": "mcp-sensitive-file-access", "since": "1h", "max_events": 2})
	if !strings.Contains(string(r.body), `"stopped":"max_events"`) {
		t.Errorf("max_events 2: %s", r.body)
	}
}
