package backtest

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// migratedStore opens a store on a fresh database of the shared test
// ClickHouse and migrates it.
func migratedStore(t testing.TB) *store.Store {
	t.Helper()
	ch := testbed.ClickHouse(t)
	st, err := store.Open(ctxT(t), store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctxT(t)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

func loadPack(t testing.TB) *detect.Pack {
	t.Helper()
	p, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatalf("load pack: %v", err)
	}
	return p
}

// byTime is the order the backtest replays in (ts_ns, then event_id).
func byTime(evs []event.Event) []event.Event {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, func(a, b event.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
	return out
}

// liveFindings runs the rules of pack over evs the way a live engine sees
// them: in time order, in batches of a few hundred.
func liveFindings(t *testing.T, pack *detect.Pack, evs []event.Event) []event.Finding {
	t.Helper()
	eng, err := detect.New(pack, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Finding
	sorted := byTime(evs)
	for i := 0; i < len(sorted); i += 300 {
		fs, err := eng.Detect(ctxT(t), sorted[i:min(i+300, len(sorted))])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fs...)
	}
	return out
}

// storeShuffled inserts evs in random order, in several inserts, one of
// them twice (a replay after a crash): the backtest must sort and
// deduplicate.
func storeShuffled(t *testing.T, st *store.Store, evs []event.Event) {
	t.Helper()
	sh := slices.Clone(evs)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
	for i := 0; i < len(sh); i += 700 {
		if err := st.InsertEvents(ctxT(t), sh[i:min(i+700, len(sh))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.InsertEvents(ctxT(t), sh[:500]); err != nil {
		t.Fatal(err)
	}
}

func TestBacktestEqualsLiveEngine(t *testing.T) {
	st := migratedStore(t)
	evs, _ := genEvents(4000, 5*24*time.Hour, 1)
	storeShuffled(t, st, evs)
	pack := loadPack(t)
	live := liveFindings(t, pack, evs)

	for _, id := range []string{"mcp-agent-call-rate-spike", "mcp-agent-new-tool", "mcp-sensitive-read-then-egress", "mcp-sensitive-file-access"} {
		t.Run(id, func(t *testing.T) {
			var want []string
			for _, f := range live {
				if f.RuleID == id {
					want = append(want, f.FindingID)
				}
			}
			if len(want) == 0 {
				t.Fatalf("the generated events fire no %s live: the test would prove nothing", id)
			}
			rule, dep, err := Resolve(id, pack)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			rep, err := Run(ctxT(t), st, Request{Rule: rule, Deployed: dep, Lists: pack.Lists,
				Since: genBase, Until: genBase.Add(6 * 24 * time.Hour),
				OnFinding: func(c Class, f *event.Finding) {
					if c != Both {
						t.Errorf("finding %s of the deployed rule classed %s", f.FindingID, c)
					}
					got = append(got, f.FindingID)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Events != int64(len(evs)) {
				t.Errorf("replayed %d events, want %d (each stored event once)", rep.Events, len(evs))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("backtest findings differ from the live engine's: got %d, want %d", len(got), len(want))
			}
			if rep.New.Findings != int64(len(want)) || rep.Deployed.Findings != int64(len(want)) || rep.Diff.Both != int64(len(want)) ||
				rep.Diff.OnlyNew != 0 || rep.Diff.OnlyDeployed != 0 {
				t.Errorf("report new=%d deployed=%d diff=%+v, want %d in both", rep.New.Findings, rep.Deployed.Findings, rep.Diff, len(want))
			}
		})
	}
}

// changedRule is the pack's rule file id with its condition replaced.
func changedRule(t testing.TB, pack *detect.Pack, id, condition string) *detect.Rule {
	t.Helper()
	return changedRuleOf(t, pack, id, map[string]any{"condition": condition})
}

// changedRuleOf is the pack's rule file id with the given keys replaced
// (its inline tests dropped: they test the old rule).
func changedRuleOf(t testing.TB, pack *detect.Pack, id string, set map[string]any) *detect.Rule {
	t.Helper()
	b, err := fs.ReadFile(detections.FS, pack.Rule(id).File)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	delete(m, "tests")
	if b, err = yaml.Marshal(m); err != nil {
		t.Fatal(err)
	}
	r, err := ParseRule(b, pack.Lists)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBacktestDiffClassifiesAChangedRule(t *testing.T) {
	st := migratedStore(t)
	evs, kinds := genEvents(3000, 2*24*time.Hour, 2)
	storeShuffled(t, st, evs)
	pack := loadPack(t)
	const id = "mcp-sensitive-file-access"
	// Narrowed to AWS credentials, widened to one tool.
	rule := changedRule(t, pack, id, `event.method == "tools/call" && (event.arguments.contains(".aws/credentials") || event.tool_name == "late_tool_0")`)
	if rule.Version == pack.Rule(id).Version {
		t.Fatal("the changed rule has the deployed rule's version")
	}
	byID := map[string]*event.Event{}
	for i := range evs {
		byID[evs[i].EventID] = &evs[i]
	}
	classes := map[Class]int64{}
	rep, err := Run(ctxT(t), st, Request{Rule: rule, Deployed: pack.Rule(id), Lists: pack.Lists, Samples: 1000,
		Since: genBase, Until: genBase.Add(3 * 24 * time.Hour),
		OnFinding: func(c Class, f *event.Finding) { classes[c]++ }})
	if err != nil {
		t.Fatal(err)
	}
	// What each class must hold, read from the events themselves.
	want := map[Class]func(e *event.Event) bool{
		Both:         func(e *event.Event) bool { return strings.Contains(e.Arguments, ".aws/credentials") },
		OnlyDeployed: func(e *event.Event) bool { return strings.Contains(e.Arguments, ".ssh/id_rsa") },
		OnlyNew:      func(e *event.Event) bool { return e.ToolName == "late_tool_0" },
	}
	for _, row := range rep.Diff.Rows {
		e := byID[row.EventID]
		if e == nil || !want[row.Class](e) {
			t.Errorf("row %+v: event %v does not belong in %s", row, e, row.Class)
		}
	}
	if rep.Diff.Both == 0 || rep.Diff.OnlyDeployed == 0 || rep.Diff.OnlyNew == 0 {
		t.Fatalf("diff %d both, %d only deployed, %d only new: every class should be seen", rep.Diff.Both, rep.Diff.OnlyDeployed, rep.Diff.OnlyNew)
	}
	if rep.Diff.Both+rep.Diff.OnlyDeployed != rep.Deployed.Findings || rep.Diff.Both+rep.Diff.OnlyNew != rep.New.Findings {
		t.Errorf("diff %+v does not add up to new %d, deployed %d", rep.Diff, rep.New.Findings, rep.Deployed.Findings)
	}
	if classes[Both] != rep.Diff.Both || classes[OnlyNew] != rep.Diff.OnlyNew || classes[OnlyDeployed] != rep.Diff.OnlyDeployed {
		t.Errorf("OnFinding saw %v, report %+v", classes, rep.Diff)
	}
	// Each sensitive read is one deployed finding (no suppression folds them
	// here: every read is in its own group or far apart).
	if got, w := rep.Deployed.Findings, int64(kinds[pathAWS]+kinds[pathSSH]); got > w {
		t.Errorf("deployed rule found %d, more than the %d sensitive reads", got, w)
	}
}

// TestBacktestDiffOfAChangedThreshold: a stateful rule's diff equals what
// two live engines (deployed and changed rule) find over the same events,
// classed by the same key.
func TestBacktestDiffOfAChangedThreshold(t *testing.T) {
	st := migratedStore(t)
	evs, _ := genEvents(4000, 2*24*time.Hour, 4)
	storeShuffled(t, st, evs)
	pack := loadPack(t)
	const id = "mcp-agent-call-rate-spike"
	rule := changedRuleOf(t, pack, id, map[string]any{"count": 60, "window": "2m"})
	live := func(r *detect.Rule) map[findingKey]int64 {
		m := map[findingKey]int64{}
		for _, f := range liveFindings(t, &detect.Pack{Rules: []*detect.Rule{r}, Lists: pack.Lists}, evs) {
			m[keyOf(&f)]++
		}
		return m
	}
	newF, depF := live(rule), live(pack.Rule(id))
	var want Diff
	for k, n := range newF {
		both := min(n, depF[k])
		want.Both += both
		want.OnlyNew += n - both
	}
	for k, n := range depF {
		want.OnlyDeployed += n - min(n, newF[k])
	}
	if want.OnlyNew == 0 || want.Both+want.OnlyDeployed == 0 {
		t.Fatalf("live engines: %+v: the change should add findings and keep some", want)
	}
	rep, err := Run(ctxT(t), st, Request{Rule: rule, Deployed: pack.Rule(id), Lists: pack.Lists,
		Since: genBase, Until: genBase.Add(3 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Diff.OnlyNew != want.OnlyNew || rep.Diff.OnlyDeployed != want.OnlyDeployed || rep.Diff.Both != want.Both {
		t.Errorf("diff %d/%d/%d (only new/only deployed/both), live engines %d/%d/%d",
			rep.Diff.OnlyNew, rep.Diff.OnlyDeployed, rep.Diff.Both, want.OnlyNew, want.OnlyDeployed, want.Both)
	}
}

func TestBacktestStopsAtMaxEventsAndFiltersTenant(t *testing.T) {
	st := migratedStore(t)
	evs, _ := genEvents(2000, 24*time.Hour, 3)
	storeShuffled(t, st, evs)
	pack := loadPack(t)
	rule, dep, err := Resolve("mcp-agent-call-rate-spike", pack)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Rule: rule, Deployed: dep, Lists: pack.Lists, Since: genBase, Until: genBase.Add(48 * time.Hour), MaxEvents: 1500}
	rep, err := Run(ctxT(t), st, req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 1500 || !rep.Truncated {
		t.Errorf("events %d truncated %v, want 1500 and true", rep.Events, rep.Truncated)
	}
	req.MaxEvents, req.Tenant = 0, "t2"
	var t2 int64
	for _, e := range evs {
		if e.Tenant == "t2" {
			t2++
		}
	}
	if rep, err = Run(ctxT(t), st, req); err != nil {
		t.Fatal(err)
	}
	if rep.Events != t2 || rep.Truncated {
		t.Errorf("tenant t2: %d events (truncated %v), want %d", rep.Events, rep.Truncated, t2)
	}
	for _, g := range rep.New.Top {
		if g.Tenant != "t2" {
			t.Errorf("group %+v of another tenant", g)
		}
	}
}

func TestResolve(t *testing.T) {
	pack := loadPack(t)
	if _, _, err := Resolve("no-such-rule", pack); err == nil || !strings.Contains(err.Error(), "no-such-rule") {
		t.Errorf("unknown id: %v", err)
	}
	dir := t.TempDir()
	f := dir + "/new.yaml"
	os.WriteFile(f, []byte("id: brand-new\ntitle: t\nseverity: low\nstatus: test\nkind: match\ncondition: event.tool_name in lists.egress_tools\n"), 0o600)
	r, dep, err := Resolve(f, pack)
	if err != nil || r.ID != "brand-new" || dep != nil {
		t.Errorf("new rule file: %v %v %v", r, dep, err)
	}
	os.WriteFile(f, []byte("id: broken\nkind: match\ncondition: event.nope ==\n"), 0o600)
	if _, _, err := Resolve(f, pack); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("broken rule file: %v", err)
	}
}
