package detect

import (
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestSuppressionDefaults: medium and low match rules suppress by agent,
// server and tool for an hour unless they say otherwise; high ones and the
// aggregating kinds do not.
func TestSuppressionDefaults(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"m.yaml":   "id: mcp-m\ntitle: t\nseverity: medium\nrunbook: r\nkind: match\ncondition: event.method == 'tools/call'\n",
		"h.yaml":   "id: mcp-h\ntitle: t\nseverity: high\nrunbook: r\nkind: match\ncondition: event.method == 'tools/call'\n",
		"hs.yaml":  "id: mcp-hs\ntitle: t\nseverity: high\nrunbook: r\nkind: match\ncondition: event.method == 'tools/call'\nsuppress: {by: [session_key], window: 10m}\n",
		"off.yaml": "id: mcp-off\ntitle: t\nseverity: low\nrunbook: r\nkind: match\ncondition: event.method == 'tools/call'\nsuppress: {disabled: true}\n",
		"t.yaml":   "id: mcp-t\ntitle: t\nseverity: low\nrunbook: r\nkind: threshold\ncount: 2\nwindow: 1m\ncondition: event.method == 'tools/call'\n",
	})
	want := map[string]string{"mcp-m": "[agent_id server_name tool_name] 1h0m0s", "mcp-h": "", "mcp-hs": "[session_key] 10m0s", "mcp-off": "", "mcp-t": ""}
	for _, r := range p.Rules {
		got := ""
		if s := r.Suppression(); s != nil {
			got = "[" + strings.Join(s.By, " ") + "] " + s.Window.String()
		}
		if got != want[r.ID] {
			t.Errorf("%s: suppression %q, want %q", r.ID, got, want[r.ID])
		}
	}
}

func TestSuppressionSchemaErrors(t *testing.T) {
	for name, tc := range map[string]struct{ rule, want string }{
		"not match":     {"kind: threshold\ncount: 2\nwindow: 1m\ncondition: 'true'\nsuppress: {window: 1h}\n", "only for kind match"},
		"short window":  {"kind: match\ncondition: 'true'\nsuppress: {window: 10s}\n", "from 1m"},
		"long window":   {"kind: match\ncondition: 'true'\nsuppress: {window: 2d}\n", "to 24h0m0s"},
		"unknown field": {"kind: match\ncondition: 'true'\nsuppress: {by: [agnet_id]}\n", `unknown event field "agnet_id"`},
		"disabled+by":   {"kind: match\ncondition: 'true'\nsuppress: {disabled: true, by: [agent_id]}\n", "disabled with by"},
		"typo key":      {"kind: match\ncondition: 'true'\nsuppress: {windw: 1h}\n", "windw"},
	} {
		_, err := Load(fstest.MapFS{"x.yaml": {Data: []byte("id: mcp-x\ntitle: t\nseverity: low\nrunbook: r\n" + tc.rule)}}, ".")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}

// TestSuppressorCountsAWindow: one finding per (rule, group, suppress key)
// and window, counting the rest with the last event; a replay (a position
// already counted) counts nothing; the next window opens a new finding;
// Reset from the stored findings continues the count exactly.
func TestSuppressorCountsAWindow(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"m.yaml": "id: mcp-m\ntitle: t\nseverity: medium\nrunbook: r\nkind: match\ncondition: event.method == 'tools/call'\n",
	})
	e := newEngine(t, p, Options{})
	base := TestBaseTime.Truncate(time.Hour)
	call := func(i int, tool string, at time.Time) map[string]any {
		return map[string]any{"method": "tools/call", "agent_id": "bot", "server_name": "s", "tool_name": tool,
			"event_id": "e" + strconv.Itoa(i), "ts": at}
	}
	var all []map[string]any
	for i := 0; i < 100; i++ {
		all = append(all, call(i, "t", base.Add(time.Duration(i)*time.Second)))
	}
	all = append(all, call(100, "u", base.Add(200*time.Second)))       // another tool: its own window
	all = append(all, call(101, "t", base.Add(time.Hour+time.Second))) // the next window
	var in []event.Event
	for i, m := range all {
		in = append(in, ev(t, i, m))
	}
	evs := detect(t, e, in...)
	s := NewSuppressor()
	var kept []string
	for i := range evs {
		evs[i].SuppressPos = int64(i + 1)
		if s.Add(&evs[i]) {
			kept = append(kept, evs[i].EventIDs[0])
		}
	}
	if strings.Join(kept, ",") != "e0,e100,e101" {
		t.Fatalf("kept %v, want e0,e100,e101", kept)
	}
	stored := s.Flush()
	if len(stored) != 3 {
		t.Fatalf("flushed %d windows, want 3", len(stored))
	}
	var first *event.Finding
	for i := range stored {
		if stored[i].EventIDs[0] == "e0" {
			first = &stored[i]
		}
	}
	if first.SuppressedCount != 99 || first.LastEventID != "e99" || !first.LastSeen.Equal(base.Add(99*time.Second)) || first.SuppressPos != 100 {
		t.Fatalf("first window = count %d last %s at %s pos %d, want 99, e99, +99s, 100", first.SuppressedCount, first.LastEventID, first.LastSeen, first.SuppressPos)
	}
	// A replay of positions 50..99 after a restart counts nothing.
	s2 := NewSuppressor()
	s2.Reset(stored)
	for i := 50; i < 100; i++ {
		if s2.Add(&evs[i]) {
			t.Fatalf("replayed finding %d kept", i)
		}
	}
	if got := s2.Flush(); len(got) != 0 {
		t.Fatalf("a replay changed %d windows", len(got))
	}
	// The next finding of the window counts on the reloaded one.
	next := evs[1]
	next.FindingID, next.EventIDs, next.SuppressPos = "f-next", []string{"e-next"}, 500
	if s2.Add(&next) {
		t.Fatal("a finding of a reloaded window was kept")
	}
	if got := s2.Flush(); len(got) != 1 || got[0].SuppressedCount != 100 || got[0].LastEventID != "e99" {
		t.Fatalf("after reload = %+v, want count 100 (last event stays the latest by time, e99)", got)
	}
}

// TestSuppressorCountsAFindingIDOnce: an observation produced again at a
// new position (a collector retry, the call join's release after a crash)
// gives a finding id the window counted long before (beyond any short
// memory of recent ids): it is not counted again; a new id is.
func TestSuppressorCountsAFindingIDOnce(t *testing.T) {
	base := TestBaseTime.Truncate(time.Hour)
	f := func(i int, pos int64) event.Finding {
		return event.Finding{FindingID: "f" + strconv.Itoa(i), Tenant: "t", RuleID: "r", GroupKey: "g",
			SuppressKey: "k", SuppressWindow: time.Hour, Time: base.Add(time.Duration(i) * time.Second),
			EventIDs: []string{"e" + strconv.Itoa(i)}, SuppressPos: pos}
	}
	s := NewSuppressor()
	for i := 0; i < 100; i++ {
		x := f(i, int64(i+1))
		s.Add(&x)
	}
	again := f(3, 1000) // counted as the 4th, produced again after 96 others
	if s.Add(&again) {
		t.Fatal("a finding id of the window opened a new one")
	}
	fresh := f(100, 1001)
	s.Add(&fresh)
	got := s.Flush()
	if len(got) != 1 || got[0].SuppressedCount != 100 {
		t.Fatalf("windows %d, count %d; want 1 window counting 99 + the new id = 100", len(got), got[0].SuppressedCount)
	}
}
