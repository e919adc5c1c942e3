package detect_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestProfileRuleWithClickHouseBaselines runs the shipped
// mcp-agent-outside-profile rule with its baselines in a real ClickHouse:
// the learned profile (every shape term) survives a restart, inside calls
// stay silent, and the first outside call is reported once.
func TestProfileRuleWithClickHouseBaselines(t *testing.T) {
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
	rule, err := detections.FS.ReadFile("mcp-agent-outside-profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pack, err := detect.Load(fstest.MapFS{"mcp-agent-outside-profile.yaml": {Data: rule}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	bs := detect.NewClickHouseBaselines(ch.Conn(t), ch.Database)
	start := func() *detect.Engine {
		e, err := detect.New(pack, detect.Options{Baselines: bs})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.LoadBaselines(ctx); err != nil {
			t.Fatal(err)
		}
		return e
	}
	n := 0
	call := func(agent, at, server, tool, args string) event.Event {
		n++
		e, err := detect.EventFromMap(map[string]any{"method": "tools/call", "agent_id": agent, "server_name": server, "tool_name": tool, "arguments": args, "ts": at}, n)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1 := start()
	fs, err := e1.Detect(ctx, []event.Event{
		call("coder", "+0s", "filesystem", "read_file", `{"path":"/srv/app/a.go"}`),
		call("coder", "+1d", "fetch", "fetch_url", `{"url":"https://pkg.go.dev/x"}`),
		call("support", "+1d", "fetch", "fetch_url", `{"url":"https://status.example.com/"}`),
	})
	if err != nil || len(fs) != 0 {
		t.Fatalf("learning: %v %+v", err, fs)
	}

	e2 := start() // restart: the profile comes back from ClickHouse
	fs, err = e2.Detect(ctx, []event.Event{
		call("coder", "+4d", "filesystem", "read_file", `{"path":"/srv/app/b/c.go"}`),        // inside
		call("coder", "+4d", "fetch", "fetch_url", `{"url":"https://pkg.go.dev/y"}`),         // inside
		call("coder", "+4d", "fetch", "fetch_url", `{"url":"https://status.example.com/"}`),  // support's host, not coder's
		call("coder", "+5d", "fetch", "fetch_url", `{"url":"https://status.example.com/2"}`), // learned by now
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Summary != "coder called fetch/fetch_url outside its learned profile: host:status.example.com" {
		t.Fatalf("after restart: %+v", fs)
	}
	if s := e2.Stats(); s.BaselineErrors != 0 || s.EvalErrors != 0 {
		t.Fatalf("stats: %+v", s)
	}
}
