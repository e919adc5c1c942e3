package store

import (
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestRollupCountsCalls: the per-minute rollup (schema 0017) counts one
// call once when its observations share a call_id and fall in the same
// bucket, never counts an observation tagged duplicate_observation, counts
// rows without a call_id (written before 0016) by event_id, nor (schema
// 0029) an observation the analyzer tagged call_already_counted (another
// observation of the call counts it: here one a minute later, with another
// outcome, which would be a second bucket), and a replay changes nothing.
func TestRollupCountsCalls(t *testing.T) {
	s := migratedStore(t)
	ctx := ctxT(t)
	obs := func(id, call string, tags ...string) event.Event {
		return event.Event{EventID: id, CallID: call, Tenant: "acme", Kind: event.KindMessage, Time: t0.Add(time.Second),
			Source: event.SourceSpan, Observer: event.ObserverClient, Method: "tools/call", AgentID: "a1",
			ServerName: "fs", ToolName: "read_file", Outcome: event.OutcomeOK, Tags: tags}
	}
	evs := []event.Event{
		obs("c1-client", "call-1"), obs("c1-server", "call-1"), obs("c1-fastmcp", "call-1", event.TagDuplicate),
		obs("c2-client", "call-2"), obs("c2-fastmcp-unlinked", "c2-fastmcp-unlinked", event.TagDuplicate),
		obs("old-1", ""), obs("old-2", ""), // before 0016: no call id
		obs("c3-client", "call-3"), obs("c3-server", "call-3", "call_already_counted"),
	}
	evs[len(evs)-2].Time = t0.Add(59*time.Second + 990*time.Millisecond)
	evs[len(evs)-1].Time, evs[len(evs)-1].Outcome = t0.Add(time.Minute+10*time.Millisecond), event.OutcomeToolError
	q := CallsQuery{Tenant: "acme", From: t0, To: t0.Add(time.Hour)}
	for round := 0; round < 2; round++ { // the second round is a replay
		if err := s.InsertEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		n, err := s.CallsTotal(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Fatalf("round %d: %d calls, want 5 (call-1, call-2, old-1, old-2, call-3)", round, n)
		}
	}
	back, err := s.queryEvents(ctx, "WHERE tenant = ? AND event_id = ?", "acme", "c1-server")
	if err != nil || len(back) != 1 || back[0].CallID != "call-1" {
		t.Fatalf("call_id read back: %+v %v", back, err)
	}
}
