package scenario

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

func TestBenignIsDeterministicAndLabelled(t *testing.T) {
	a, b := Benign(7, 3000), Benign(7, 3000)
	if !reflect.DeepEqual(a.Plain(), b.Plain()) {
		t.Fatal("Benign is not deterministic for a seed")
	}
	if c := Benign(8, 3000); reflect.DeepEqual(a.Plain()[:50], c.Plain()[:50]) {
		t.Fatal("different seeds produced the same events")
	}
	if len(a.Events) < 3000 {
		t.Fatalf("got %d events, want ≥ 3000", len(a.Events))
	}
	ids := map[string]bool{}
	profiles := map[string]int{}
	var prev time.Time
	for _, l := range a.Events {
		e := l.Event
		if l.Label == nil || l.Label.Attack || len(l.Label.Expect) > 0 {
			t.Fatalf("benign event %s has label %+v", e.EventID, l.Label)
		}
		if ids[e.EventID] {
			t.Fatalf("duplicate event id %s", e.EventID)
		}
		ids[e.EventID] = true
		if e.Time.Before(prev) {
			t.Fatalf("events not ordered by time at %s", e.EventID)
		}
		prev = e.Time
		if e.Time.Before(BaseTime) || e.Time.After(BaseTime.Add(BenignSpan+time.Hour)) {
			t.Fatalf("event %s at %s is outside the span", e.EventID, e.Time)
		}
		if e.Tenant == "" || e.SessionKey == "" || e.Method == "" || e.ServerName == "" {
			t.Fatalf("event %s lacks context: %+v", e.EventID, e)
		}
		profiles[strings.Split(l.Label.Case, "/")[1]]++
	}
	for _, p := range []string{"coding", "data", "support"} {
		if profiles[p] < 300 {
			t.Errorf("profile %s has only %d events", p, profiles[p])
		}
	}
}

func TestAttacksCoverEveryCaseWithExpectations(t *testing.T) {
	c := Attacks(1)
	perCase := map[*Label]int{}
	for _, l := range c.Events {
		perCase[l.Label]++
	}
	for _, l := range c.Cases {
		if !l.Attack || len(l.Expect) == 0 {
			t.Errorf("attack case %s has no expectation", l.Case)
		}
		if perCase[l] < 3 {
			t.Errorf("attack case %s has %d events; an attack is a session, not one event", l.Case, perCase[l])
		}
	}
	// Every rule the cases name is expected by at least two variants or is
	// the subject of one.
	if n := len(RuleIDs()); n < 32 {
		t.Errorf("attack cases cover %d rule ids, want ≥ 32", n)
	}
}

func TestDemoContainsItsAttacks(t *testing.T) {
	c := Demo(1)
	found := map[string]bool{}
	for _, l := range c.Cases {
		if l.Attack {
			found[strings.TrimPrefix(l.Case, "attack/")] = true
		}
	}
	for _, name := range DemoAttacks {
		if !found[name] {
			t.Errorf("demo lacks attack %s", name)
		}
	}
	first, last := c.Events[0].Event.Time, c.Events[len(c.Events)-1].Event.Time
	if last.Sub(first) > DemoSpan+time.Hour || last.Sub(first) < DemoSpan/2 {
		t.Errorf("demo spans %s, want about %s", last.Sub(first), DemoSpan)
	}
	if len(c.Events) < DemoEvents {
		t.Errorf("demo has %d events, want ≥ %d", len(c.Events), DemoEvents)
	}
	shifted := c.Shift(time.Hour)
	if !shifted.Events[0].Event.Time.Equal(first.Add(time.Hour)) || !c.Events[0].Event.Time.Equal(first) {
		t.Error("Shift must move a copy's timestamps and leave the original alone")
	}
}

// TestOTLPRoundTrip converts the demo (every profile, gateway identity,
// errors, denials, tool definitions, poisoned descriptions) to OTLP traces
// and maps them back with event.FromTraces: every field must survive.
func TestOTLPRoundTrip(t *testing.T) {
	c := Merge(Demo(3), Attacks(3))
	want := c.Plain()
	td := ToTraces(want)
	recv := BaseTime.Add(30 * 24 * time.Hour)
	b := event.FromTraces(td, event.MapOptions{ReceivedAt: recv})
	if b.Dropped != 0 {
		t.Fatalf("FromTraces dropped %d: %v", b.Dropped, b.DropReasons)
	}
	if len(b.Events) != len(want) {
		t.Fatalf("FromTraces returned %d events, want %d", len(b.Events), len(want))
	}
	got := map[string]event.Event{}
	for _, e := range b.Events {
		got[e.EventID] = norm(e)
	}
	diffs := 0
	for _, w := range want {
		g, ok := got[w.EventID]
		if !ok {
			t.Fatalf("event %s (%s %s) missing after the round trip", w.EventID, w.Method, w.ToolName)
		}
		w.IngestedAt = recv
		w = norm(w)
		if !reflect.DeepEqual(g, w) {
			diffs++
			if diffs <= 3 {
				gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
				for i := 0; i < gv.NumField(); i++ {
					if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
						t.Errorf("event %s field %s: got %#v, want %#v", w.EventID, gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
					}
				}
			}
		}
	}
	if diffs > 0 {
		t.Fatalf("%d of %d events differ after the round trip", diffs, len(want))
	}
}

func norm(e event.Event) event.Event {
	e.Time = e.Time.UTC()
	if !e.TokenExpires.IsZero() {
		e.TokenExpires = e.TokenExpires.UTC()
	}
	if len(e.Scopes) == 0 {
		e.Scopes = nil
	}
	if len(e.Tags) == 0 {
		e.Tags = nil
	}
	return e
}

// BenchmarkBenign measures the generator (events per second).
func BenchmarkBenign(b *testing.B) {
	b.ReportAllocs()
	n := 0
	for i := 0; i < b.N; i++ {
		n += len(Benign(int64(i), 10000).Events)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// TestOTLPLogsRoundTrip does the same through the log shapes (mcp.audit and
// mcp.tools.snapshot records).
func TestOTLPLogsRoundTrip(t *testing.T) {
	c := Merge(Demo(4), Attacks(4))
	want := c.Plain()
	recv := BaseTime.Add(30 * 24 * time.Hour)
	b := event.FromLogs(ToLogs(want), event.MapOptions{ReceivedAt: recv})
	if b.Dropped != 0 {
		t.Fatalf("FromLogs dropped %d: %v", b.Dropped, b.DropReasons)
	}
	if len(b.Events) != len(want) {
		t.Fatalf("FromLogs returned %d events, want %d", len(b.Events), len(want))
	}
	key := func(e event.Event) string { return string(e.Kind) + "/" + e.TraceID + e.SpanID + "/" + e.ToolName }
	got := map[string]event.Event{}
	ids := map[string]bool{}
	for _, e := range b.Events {
		if e.Source != event.SourceLog || e.EventID == "" || ids[e.EventID] {
			t.Fatalf("log event %s: source %s, id %q (unique ids required)", key(e), e.Source, e.EventID)
		}
		ids[e.EventID] = true
		e.EventID = ""
		got[key(e)] = norm(e)
	}
	for _, w := range want {
		g, ok := got[key(w)]
		if !ok {
			t.Fatalf("event %s missing after the round trip", key(w))
		}
		w.EventID, w.Source, w.ParentSpanID, w.DurationNs, w.IngestedAt = "", event.SourceLog, "", 0, recv
		w = norm(w)
		if !reflect.DeepEqual(g, w) {
			gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
			for i := 0; i < gv.NumField(); i++ {
				if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
					t.Errorf("event %s field %s: got %#v, want %#v", key(w), gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
				}
			}
			t.FailNow()
		}
	}
}
