package scenario

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

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
		if e.CallID == e.EventID { // a call id of its own: the record's hash
			e.CallID = ""
		}
		e.EventID = ""
		got[key(e)] = norm(e)
	}
	for _, w := range want {
		g, ok := got[key(w)]
		if !ok {
			t.Fatalf("event %s missing after the round trip", key(w))
		}
		w.EventID, w.Source, w.ParentSpanID, w.DurationNs, w.IngestedAt = "", event.SourceLog, "", 0, recv
		// A log record has no parent span: a server or gateway record's
		// call id is its own.
		w.CallID = event.CallIDOf(&w)
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

// TestToTracesUsesSemanticConventions checks the attribute names a standard
// MCP instrumentation would use, not only that our own mapping reads them.
func TestToTracesUsesSemanticConventions(t *testing.T) {
	evs := Attacks(5).Plain()
	td := ToTraces(evs)
	seen := map[string]bool{}
	var callName string
	rs := td.ResourceSpans()
	for i := 0; i < rs.Len(); i++ {
		if _, ok := rs.At(i).Resource().Attributes().Get("service.name"); !ok {
			t.Fatal("resource without service.name")
		}
		ss := rs.At(i).ScopeSpans()
		for j := 0; j < ss.Len(); j++ {
			sp := ss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				s := sp.At(k)
				s.Attributes().Range(func(key string, _ pcommon.Value) bool {
					seen[key] = true
					return true
				})
				if m, _ := s.Attributes().Get("mcp.method.name"); m.Str() == "tools/call" && callName == "" {
					callName = s.Name()
				}
			}
		}
	}
	for _, k := range []string{"mcp.method.name", "mcp.session.id", "mcp.protocol.version", "jsonrpc.request.id",
		"gen_ai.tool.name", "gen_ai.tool.call.id", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
		"gen_ai.conversation.id", "gen_ai.agent.id", "gen_ai.agent.name", "user.id", "client.address",
		"server.address", "server.port", "network.transport", "user_agent.original", "http.request.header.origin",
		"gen_ai.tool.definitions", "rpc.response.status_code", "error.type"} {
		if !seen[k] {
			t.Errorf("no span carries %s", k)
		}
	}
	if !strings.HasPrefix(callName, "tools/call ") {
		t.Errorf("tools/call span named %q, want \"tools/call {tool}\"", callName)
	}
}

func TestEvaluate(t *testing.T) {
	benign := &Label{Case: "benign/x"}
	atk := &Label{Case: "attack/r1/v", Attack: true, Expect: []string{"r1"}, Allow: []string{"r2"}}
	missed := &Label{Case: "attack/r1/w", Attack: true, Expect: []string{"r1"}}
	c := Corpus{Cases: []*Label{benign, atk, missed}, Events: []Labeled{
		{event.Event{EventID: "b1"}, benign}, {event.Event{EventID: "b2"}, benign},
		{event.Event{EventID: "a1"}, atk}, {event.Event{EventID: "a2"}, atk}, {event.Event{EventID: "m1"}, missed},
	}}
	fs := []event.Finding{
		{RuleID: "r1", EventIDs: []string{"b1", "a2"}}, // completed by an attack event: TP
		{RuleID: "r2", EventIDs: []string{"a1"}},       // allowed: TP, no expectation
		{RuleID: "r3", EventIDs: []string{"b2"}},       // benign FP
		{RuleID: "r3", EventIDs: []string{"m1"}},       // FP in an attack case, not benign
	}
	ev := Evaluate(c, fs, map[string]event.Severity{"r1": "high", "r2": "low", "r3": "medium", "r4": "info"})
	got := map[string]RuleScore{}
	for _, s := range ev.Rules {
		got[s.RuleID] = s
	}
	if s := got["r1"]; s.TP != 1 || s.FP != 0 || s.Expected != 2 || s.Caught != 1 || len(s.Missed) != 1 || s.Missed[0] != "attack/r1/w" {
		t.Errorf("r1: %+v", s)
	}
	if s := got["r2"]; s.TP != 1 || s.Expected != 0 || s.Recall() != 1 {
		t.Errorf("r2: %+v", s)
	}
	if s := got["r3"]; s.FP != 2 || s.BenignFP != 1 || s.Precision() != 0 {
		t.Errorf("r3: %+v", s)
	}
	if s, ok := got["r4"]; !ok || s.Precision() != 1 || s.Recall() != 1 {
		t.Errorf("r4 (silent rule) missing or wrong: %+v", s)
	}
	if tot := ev.Totals(); tot.TP != 2 || tot.FP != 2 || tot.Caught != 1 || tot.Expected != 2 {
		t.Errorf("totals: %+v", tot)
	}
}
