package detect

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

const distinctRule = "id: mcp-dist\n" + hdr + `kind: threshold
by: [session_key]
distinct: user_id
count: 2
window: 1h
condition: event.session_key != "" && event.user_id != ""
summary: "{{session_key}} used by {{distinct}}"
`

// TestDistinctWindows: the values of the current and the previous aligned
// window count together, one finding per window, none for the users of the
// last finding that keep going.
func TestDistinctWindows(t *testing.T) {
	e := newEngine(t, loadYAML(t, map[string]string{"d.yaml": distinctRule}), Options{Workers: 1})
	use := func(i int, sess, user, at string) []string {
		fs := detect(t, e, ev(t, i, map[string]any{"session_key": sess, "user_id": user, "ts": at}))
		var out []string
		for _, f := range fs {
			out = append(out, f.Summary)
		}
		return out
	}
	// 20 minutes apart across the hour boundary (TestBaseTime is on one).
	if fs := use(0, "s1", "kim", "+50m"); fs != nil {
		t.Fatalf("one user fired: %v", fs)
	}
	if fs := use(1, "s1", "eve", "+70m"); !slices.Equal(fs, []string{"s1 used by eve, kim"}) {
		t.Fatalf("two users 20 min apart across windows: %v", fs)
	}
	// Window 2: the same two users again → nothing new; a third → one finding.
	for i, u := range []string{"kim", "eve", "kim"} {
		if fs := use(2+i, "s1", u, "+130m"); fs != nil {
			t.Fatalf("the last finding's users fired again: %v", fs)
		}
	}
	if fs := use(5, "s1", "lee", "+140m"); !slices.Equal(fs, []string{"s1 used by eve, kim, lee"}) {
		t.Fatalf("a third user: %v", fs)
	}
	// Once per window: a fourth user in the same window does not fire again.
	if fs := use(6, "s1", "max", "+150m"); fs != nil {
		t.Fatalf("second finding in one window: %v", fs)
	}
	// Two windows apart (100 min): not counted together.
	use(7, "s2", "kim", "+5m")
	if fs := use(8, "s2", "eve", "+125m"); fs != nil {
		t.Fatalf("values two windows apart fired: %v", fs)
	}
}

// TestDistinctFindingIDIgnoresRepeats: the finding id and event ids are the
// window and each value's first occurrence, so an engine that sees only
// first occurrences (the detect role behind the ingest role's filter)
// gives the same finding as one that sees every event, and an earlier
// occurrence that arrives late replaces the first one seen.
func TestDistinctFindingIDIgnoresRepeats(t *testing.T) {
	p := loadYAML(t, map[string]string{"d.yaml": distinctRule})
	kim := func(i int, at string) map[string]any {
		return map[string]any{"session_key": "s", "user_id": "kim", "agent_id": "a1", "ts": at}
	}
	eve := map[string]any{"session_key": "s", "user_id": "eve", "agent_id": "a2", "ts": "+40m"}
	all := newEngine(t, p, Options{Workers: 1})
	fsAll := detect(t, all, ev(t, 0, kim(0, "+20m")), ev(t, 1, kim(1, "+25m")), ev(t, 2, kim(2, "+10m")), ev(t, 3, kim(3, "+30m")), ev(t, 4, eve))
	firsts := newEngine(t, p, Options{Workers: 1})
	fsFirst := detect(t, firsts, ev(t, 2, kim(2, "+10m")), ev(t, 4, eve))
	if len(fsAll) != 1 || len(fsFirst) != 1 {
		t.Fatalf("findings: every event %d, first occurrences %d", len(fsAll), len(fsFirst))
	}
	a, f := fsAll[0], fsFirst[0]
	if a.FindingID != f.FindingID || strings.Join(a.EventIDs, ",") != "e5,e3" || !slices.Equal(a.EventIDs, f.EventIDs) {
		t.Fatalf("every event: %s %v; first occurrences: %s %v", a.FindingID, a.EventIDs, f.FindingID, f.EventIDs)
	}
	if !strings.Contains(a.Evidence, `"count":2`) || !strings.Contains(a.Evidence, `"distinct_values":["eve","kim"]`) {
		t.Fatalf("evidence: %s", a.Evidence)
	}

	// The ingest role's filter forwards kim's first occurrence per window
	// and the earlier one that comes later, not the repeats.
	in := newEngine(t, p, Options{Workers: 1, Repartition: true})
	_, ins, err := in.DetectSplit(t.Context(), []event.Event{ev(t, 0, kim(0, "+20m")), ev(t, 1, kim(1, "+25m")), ev(t, 2, kim(2, "+10m")), ev(t, 3, kim(3, "+30m")), ev(t, 4, eve), ev(t, 5, kim(5, "+70m"))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range ins {
		ids = append(ids, x.Event.EventID)
	}
	if !slices.Equal(ids, []string{"e1", "e3", "e5", "e6"}) {
		t.Fatalf("forwarded %v", ids)
	}
	// A lost cache forwards again; the detect role ignores it.
	in.ForgetForwarded()
	_, again, _ := in.DetectSplit(t.Context(), []event.Event{ev(t, 3, kim(3, "+30m"))})
	det := newEngine(t, p, Options{Workers: 1})
	got := det.Apply(append(ins[:3:3], again...))
	if len(got) != 1 || got[0].FindingID != a.FindingID {
		t.Fatalf("detect role: %+v", got)
	}
}

// TestDistinctStateSurvivesRestore: a detect role that takes a group over
// from the changelog (rebalance, kill -9) continues its windows and
// remembers its last finding.
func TestDistinctStateSurvivesRestore(t *testing.T) {
	p := loadYAML(t, map[string]string{"d.yaml": distinctRule})
	use := func(i int, user, at string) Input {
		e := ev(t, i, map[string]any{"session_key": "s", "user_id": user, "ts": at})
		return Input{RuleID: "mcp-dist", RuleVersion: p.Rule("mcp-dist").Version, Tenant: e.Tenant, Group: "s", Conds: 1, Event: &e}
	}
	steps := [][]Input{
		{use(0, "kim", "+50m")},
		{use(1, "eve", "+70m")},                          // fires (window 1)
		{use(2, "kim", "+130m"), use(3, "eve", "+131m")}, // the same users: no finding
		{use(4, "lee", "+140m")},                         // fires (window 2)
	}
	one := newEngine(t, p, Options{Workers: 1})
	var want []string
	for _, b := range steps {
		for _, f := range one.Apply(b) {
			want = append(want, f.FindingID)
		}
	}
	var got []string
	var log []StateRecord
	for _, b := range steps {
		// A new owner for every batch, restored from the changelog alone.
		e := newEngine(t, p, Options{Workers: 1})
		if restored, skipped := e.Restore(log); skipped != 0 || (len(log) > 0 && restored != 1) {
			t.Fatalf("restored %d, skipped %d", restored, skipped)
		}
		for _, f := range e.Apply(b) {
			got = append(got, f.FindingID)
		}
		recs, err := e.Changelog()
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, recs...)
	}
	if len(want) != 2 || !slices.Equal(got, want) {
		t.Fatalf("restored every batch: %v, one engine: %v", got, want)
	}
}
