package detect

import (
	"slices"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestNewTermForwardsWhatMatters: the ingest role skips a term's repeats
// within the hour and earlier events that cannot move the group's first
// seen time back (another agent's, processed late), but forwards one that
// can: the detect role's learning period then ends as one engine's does.
func TestNewTermForwardsWhatMatters(t *testing.T) {
	p := loadYAML(t, map[string]string{"n.yaml": "id: mcp-nt\n" + hdr + `kind: new_term
by: [server_name]
fields: [tool_name]
condition: event.tool_name != ""
learning: 2h
history: 30d
`})
	evs := []event.Event{
		ev(t, 0, map[string]any{"agent_id": "a", "server_name": "s", "tool_name": "x", "ts": "+2h"}),
		ev(t, 1, map[string]any{"agent_id": "b", "server_name": "s", "tool_name": "x", "ts": "+30m"}),  // moves first back
		ev(t, 2, map[string]any{"agent_id": "b", "server_name": "s", "tool_name": "x", "ts": "+1h"}),   // earlier than the last, not than first
		ev(t, 3, map[string]any{"agent_id": "a", "server_name": "s", "tool_name": "x", "ts": "+150m"}), // a repeat within the hour
		ev(t, 4, map[string]any{"agent_id": "a", "server_name": "s", "tool_name": "y", "ts": "+3h"}),   // new, 2.5 h after first
	}
	one := newEngine(t, p, Options{Workers: 1})
	want := detect(t, one, evs...)
	in := newEngine(t, p, Options{Workers: 1, Repartition: true})
	_, ins, err := in.DetectSplit(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range ins {
		ids = append(ids, x.Event.EventID)
	}
	if !slices.Equal(ids, []string{"e1", "e2", "e5"}) {
		t.Fatalf("forwarded %v", ids)
	}
	got := newEngine(t, p, Options{Workers: 1}).Apply(ins)
	if len(want) != 1 || len(got) != 1 || got[0].FindingID != want[0].FindingID {
		t.Fatalf("detect role: %+v\none engine: %+v", got, want)
	}
}
