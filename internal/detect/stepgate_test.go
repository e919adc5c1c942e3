package detect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestStepGate: a later step of a gated sequence is forwarded only inside
// [first step, first step + within] of a known first step of its group;
// first steps, other groups' windows, ungated rules and inputs older than
// the gate's horizon are unaffected; a notice survives its encoding.
func TestStepGate(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	const rule = "mcp-tool-changed-then-called" // within: 1h
	if r := pack.Rule(rule); r == nil || !r.Gated() {
		t.Fatalf("%s is not gated", rule)
	}
	for _, id := range []string{"mcp-session-user-mismatch", "mcp-tool-enumeration"} {
		if r := pack.Rule(id); r == nil || r.Gated() {
			t.Fatalf("%s: gated or missing", id)
		}
	}
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	in := func(rule, group string, conds uint64, at time.Duration) detect.Input {
		return detect.Input{RuleID: rule, Tenant: "t", Group: group, Conds: conds, Event: &event.Event{Time: t0.Add(at)}}
	}
	g := detect.NewStepGate()
	first := in(rule, "s\x00tool", 1, 0)
	ns := detect.StepNotices(pack, []detect.Input{first, in(rule, "s\x00tool", 2, time.Minute), in("mcp-tool-enumeration", "x", 1, 0)})
	if len(ns) != 1 || ns[0].Group != "s\x00tool" || !ns[0].Time.Equal(t0) {
		t.Fatalf("notices: %+v", ns)
	}
	b, err := ns[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	n, err := detect.DecodeStepNotice(b)
	if err != nil || n.Rule != ns[0].Rule || !n.Time.Equal(ns[0].Time) || n.Group != ns[0].Group || n.Tenant != ns[0].Tenant {
		t.Fatalf("decoded %+v, %v; want %+v", n, err, ns[0])
	}
	if _, err := detect.DecodeStepNotice([]byte(`{"rule":""}`)); err == nil {
		t.Fatal("an empty notice decoded")
	}
	// Before anything is learned, later steps are dropped; first steps kept.
	kept, dropped := g.Filter(pack, []detect.Input{in(rule, "s\x00tool", 2, time.Minute), first})
	if len(kept) != 1 || kept[0].Conds != 1 || dropped != 1 {
		t.Fatalf("nothing learned: kept %+v, dropped %d", kept, dropped)
	}
	g.Learn(pack, n)
	cases := []struct {
		in   detect.Input
		keep bool
	}{
		{in(rule, "s\x00tool", 2, 0), true},                      // at the first step
		{in(rule, "s\x00tool", 2, time.Hour), true},              // at the end of within
		{in(rule, "s\x00tool", 2, time.Hour+time.Second), false}, // after it
		{in(rule, "s\x00tool", 2, -time.Second), false},          // before the first step
		{in(rule, "s\x00other", 2, time.Minute), false},          // another group
		{in(rule, "s\x00tool", 3, time.Hour+time.Minute), true},  // a first step itself
		{in("mcp-tool-enumeration", "x", 2, time.Minute), true},  // not gated
		{in(rule, "s\x00tool", 2, -12*time.Hour), false},         // not yet behind the horizon
	}
	for i, c := range cases {
		kept, _ := g.Filter(pack, []detect.Input{c.in})
		if (len(kept) == 1) != c.keep {
			t.Errorf("case %d (%+v at %v): kept %v, want %v", i, c.in, c.in.Event.Time.Sub(t0), len(kept) == 1, c.keep)
		}
	}
	// A second first step two hours later: two windows; one in between merges.
	g.Learn(pack, detect.StepNotice{Rule: rule, Tenant: "t", Group: "s\x00tool", Time: t0.Add(2 * time.Hour)})
	if kept, _ := g.Filter(pack, []detect.Input{in(rule, "s\x00tool", 2, 150*time.Minute)}); len(kept) != 1 {
		t.Error("second window: dropped")
	}
	if kept, _ := g.Filter(pack, []detect.Input{in(rule, "s\x00tool", 2, 90*time.Minute)}); len(kept) != 0 {
		t.Error("between the windows: kept")
	}
	g.Learn(pack, detect.StepNotice{Rule: rule, Tenant: "t", Group: "s\x00tool", Time: t0.Add(50 * time.Minute)})
	if kept, _ := g.Filter(pack, []detect.Input{in(rule, "s\x00tool", 2, 90*time.Minute)}); len(kept) != 1 {
		t.Error("third window: dropped")
	}
	// Over maxGateGroups groups, the gate forgets the older half: inputs
	// before its horizon are forwarded whatever their group.
	for i := range 1<<16 + 1 {
		g.Learn(pack, detect.StepNotice{Rule: rule, Tenant: "t", Group: fmt.Sprint("g", i), Time: t0.Add(time.Duration(i) * time.Second)})
	}
	if kept, _ := g.Filter(pack, []detect.Input{in(rule, "s\x00other", 2, -48*time.Hour)}); len(kept) != 1 {
		t.Error("behind the horizon: dropped")
	}
	if kept, _ := g.Filter(pack, []detect.Input{in(rule, "g70000", 2, 1<<17*time.Second)}); len(kept) != 0 {
		t.Error("after the horizon, no window: kept")
	}
	if kept, _ := g.Filter(pack, []detect.Input{in(rule, "g65536", 2, 65536*time.Second)}); len(kept) != 1 {
		t.Error("the newest group's window: dropped")
	}
}
