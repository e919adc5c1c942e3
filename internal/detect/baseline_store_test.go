package detect_test

import (
	"context"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

// TestNewTermBaselinesSurviveRestart runs a new_term rule against a real
// ClickHouse (schema migrated by internal/store), restarts the engine, and
// checks that terms seen before the restart do not alert again while a new
// one does.
func TestNewTermBaselinesSurviveRestart(t *testing.T) {
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
	conn := ch.Conn(t)
	bs := detect.NewClickHouseBaselines(conn, ch.Database)

	pack, err := detect.Load(fstest.MapFS{"n.yaml": {Data: []byte(`id: mcp-new-tool
title: new tool
severity: low
kind: new_term
by: [tenant, agent_id]
fields: [tool_name]
learning: 7d
condition: event.method == "tools/call"
`)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	call := func(i int, at, tool string) event.Event {
		e, err := detect.EventFromMap(map[string]any{"method": "tools/call", "agent_id": "a", "tool_name": tool, "ts": at}, i)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1, err := detect.New(pack, detect.Options{Baselines: bs})
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.LoadBaselines(ctx); err != nil {
		t.Fatal(err)
	}
	fs, _ := e1.Detect(ctx, []event.Event{call(0, "+0s", "read"), call(1, "+1d", "write"), call(2, "+8d", "search")})
	if len(fs) != 1 || fs[0].ToolName != "search" {
		t.Fatalf("before restart: %+v", fs)
	}
	if st := e1.Stats(); st.BaselineErrors != 0 {
		t.Fatalf("baseline errors: %+v", st)
	}

	// Restart: a new engine loads the baselines from ClickHouse.
	e2, err := detect.New(pack, detect.Options{Baselines: bs})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.LoadBaselines(ctx); err != nil {
		t.Fatal(err)
	}
	fs, _ = e2.Detect(ctx, []event.Event{call(3, "+9d", "read"), call(4, "+9d", "write"), call(5, "+9d", "search"), call(6, "+9d", "delete")})
	if len(fs) != 1 || fs[0].ToolName != "delete" {
		t.Fatalf("after restart: %+v", fs)
	}
	// Without baselines the restarted engine would be in learning (no alert at all),
	// so also check the group age was restored: a brand-new engine with no store
	// does not alert on "delete".
	e3, _ := detect.New(pack, detect.Options{})
	if fs, _ := e3.Detect(ctx, []event.Event{call(7, "+9d", "delete2")}); len(fs) != 0 {
		t.Fatalf("engine without baselines alerted: %+v", fs)
	}
}
