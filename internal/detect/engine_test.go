package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

func loadYAML(t *testing.T, files map[string]string) *Pack {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, s := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(s)}
	}
	p, err := Load(fsys, ".")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func newEngine(t *testing.T, p *Pack, o Options) *Engine {
	t.Helper()
	e, err := New(p, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ev builds a test event from a map, i seconds after TestBaseTime unless ts is given.
func ev(t *testing.T, i int, m map[string]any) event.Event {
	t.Helper()
	e, err := EventFromMap(m, i)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func detect(t *testing.T, e *Engine, evs ...event.Event) []event.Finding {
	t.Helper()
	fs, err := e.Detect(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

const hdr = "title: t\nseverity: high\nrunbook: r\n"

func TestMatchFindingFields(t *testing.T) {
	p := loadYAML(t, map[string]string{"m.yaml": "id: mcp-m\n" + hdr + `kind: match
by: [tenant, agent_id]
tags: [owasp-mcp:MCP01]
condition: event.method == "tools/call" && isSensitivePath(event.args.path)
exceptions: [event.agent_id == "backup-bot"]
summary: "{{agent_id}} read {{tool_name}} ({{rule_id}})"
`})
	e := newEngine(t, p, Options{})
	fs := detect(t, e,
		ev(t, 0, map[string]any{"method": "tools/call", "tool_name": "read_file", "agent_id": "a1", "args": map[string]any{"path": "~/.aws/credentials"}}),
		ev(t, 1, map[string]any{"method": "tools/call", "tool_name": "read_file", "agent_id": "backup-bot", "args": map[string]any{"path": "~/.aws/credentials"}}),
		ev(t, 2, map[string]any{"method": "tools/list", "agent_id": "a1", "args": map[string]any{"path": "~/.aws/credentials"}}),
		ev(t, 3, map[string]any{"method": "tools/call", "tool_name": "read_file", "agent_id": "a1", "args": map[string]any{"path": "README.md"}}),
	)
	if len(fs) != 1 {
		t.Fatalf("findings = %d, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.RuleID != "mcp-m" || f.GroupKey != "default|a1" || f.Summary != "a1 read read_file (mcp-m)" || f.Severity != event.SeverityHigh ||
		len(f.EventIDs) != 1 || f.EventIDs[0] != "e1" || f.RuleVersion == "" || len(f.FindingID) != 32 || !strings.Contains(f.Evidence, `"rule_kind":"match"`) {
		t.Errorf("finding = %+v", f)
	}
	// Deterministic id: a fresh engine yields the same finding id.
	e2 := newEngine(t, p, Options{})
	fs2 := detect(t, e2, ev(t, 0, map[string]any{"method": "tools/call", "tool_name": "read_file", "agent_id": "a1", "args": map[string]any{"path": "~/.aws/credentials"}}))
	if fs2[0].FindingID != f.FindingID {
		t.Errorf("finding id not deterministic: %s vs %s", fs2[0].FindingID, f.FindingID)
	}
}

func TestThresholdCountAndDistinct(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"c.yaml": "id: mcp-c\n" + hdr + `kind: threshold
by: [tenant, agent_id]
condition: event.outcome == "denied"
window: 1m
count: 3
summary: "{{count}} in {{window}}"
`,
		"d.yaml": "id: mcp-d\n" + hdr + `kind: threshold
by: [session_key]
condition: event.method == "tools/call"
window: 10m
count: 2
distinct: client_address
summary: "clients {{distinct}}"
`})
	e := newEngine(t, p, Options{})
	deny := func(i int, agent string, at string) event.Event {
		return ev(t, i, map[string]any{"outcome": "denied", "agent_id": agent, "ts": at})
	}
	// a1: three denials within a minute → 1; a2: three spread over 3 minutes → 0.
	fs := detect(t, e, deny(0, "a1", "+0s"), deny(1, "a2", "+0s"), deny(2, "a1", "+20s"), deny(3, "a2", "+70s"), deny(4, "a1", "+40s"), deny(5, "a2", "+140s"))
	if len(fs) != 1 || fs[0].RuleID != "mcp-c" || fs[0].Summary != "3 in 1m0s" || strings.Join(fs[0].EventIDs, ",") != "e1,e3,e5" {
		t.Fatalf("count findings = %+v", fs)
	}
	// After firing the window restarts: two more denials do not fire.
	if fs := detect(t, e, deny(6, "a1", "+41s"), deny(7, "a1", "+42s")); len(fs) != 0 {
		t.Fatalf("fired again too soon: %+v", fs)
	}
	// Distinct: same address twice → 0; second address → 1.
	call := func(i int, addr string) event.Event {
		return ev(t, i, map[string]any{"method": "tools/call", "session_key": "sX", "client_address": addr, "ts": "+1h"})
	}
	if fs := detect(t, e, call(10, "10.0.0.1"), call(11, "10.0.0.1")); len(fs) != 0 {
		t.Fatalf("distinct fired on one value: %+v", fs)
	}
	fs = detect(t, e, call(12, "10.0.0.2"))
	if len(fs) != 1 || fs[0].Summary != "clients 10.0.0.1, 10.0.0.2" {
		t.Fatalf("distinct findings = %+v", fs)
	}
}

func TestNewTermLearningAndHistory(t *testing.T) {
	p := loadYAML(t, map[string]string{"n.yaml": "id: mcp-n\n" + hdr + `kind: new_term
by: [tenant, agent_id]
fields: [server_name, tool_name]
history: 30d
learning: 7d
condition: event.method == "tools/call"
summary: "new {{term}}"
`})
	e := newEngine(t, p, Options{})
	call := func(i int, at, tool string) event.Event {
		return ev(t, i, map[string]any{"method": "tools/call", "agent_id": "a", "server_name": "fs", "tool_name": tool, "ts": at})
	}
	// During learning, new tools do not alert.
	if fs := detect(t, e, call(0, "+0s", "read"), call(1, "+1d", "write")); len(fs) != 0 {
		t.Fatalf("alerted during learning: %+v", fs)
	}
	// After learning: known tool → 0, new tool → 1, again → 0.
	fs := detect(t, e, call(2, "+8d", "read"), call(3, "+8d", "delete"), call(4, "+9d", "delete"))
	if len(fs) != 1 || fs[0].Summary != "new fs|delete" || fs[0].EventIDs[0] != "e4" {
		t.Fatalf("findings = %+v", fs)
	}
	// Not seen for longer than history → new again.
	if fs := detect(t, e, call(5, "+50d", "write")); len(fs) != 1 {
		t.Fatalf("history expiry: %+v", fs)
	}
	// A different agent starts its own learning period.
	if fs := detect(t, e, ev(t, 6, map[string]any{"method": "tools/call", "agent_id": "b", "server_name": "fs", "tool_name": "x", "ts": "+51d"})); len(fs) != 0 {
		t.Fatalf("new group alerted: %+v", fs)
	}
}

func TestSequenceOrderWithinAbsent(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"s.yaml": "id: mcp-s\n" + hdr + `kind: sequence
by: [tenant, session_key]
within: 10m
steps:
  - {name: read, condition: 'event.tool_name == "read"'}
  - {name: cleared, absent: true, condition: 'event.tool_name == "clear"'}
  - {name: send, condition: 'event.tool_name == "send"'}
summary: "{{steps}}"
`,
		"a.yaml": "id: mcp-a\n" + hdr + `kind: sequence
by: [tenant, session_key]
within: 5m
steps:
  - {name: approval, absent: true, condition: 'event.method == "elicitation/create"'}
  - {name: destroy, condition: 'event.tool_name == "rm"'}
`})
	e := newEngine(t, p, Options{})
	x := func(i int, sess, tool, at string) event.Event {
		return ev(t, i, map[string]any{"tool_name": tool, "session_key": sess, "ts": at})
	}
	cases := []struct {
		name string
		evs  []event.Event
		want []string // rule ids
	}{
		{"in order", []event.Event{x(0, "s1", "read", "+0s"), x(1, "s1", "send", "+1m")}, []string{"mcp-s"}},
		{"wrong order", []event.Event{x(0, "s2", "send", "+0s"), x(1, "s2", "read", "+1m")}, nil},
		{"other session", []event.Event{x(0, "s3", "read", "+0s"), x(1, "s4", "send", "+1m")}, nil},
		{"too late", []event.Event{x(0, "s5", "read", "+0s"), x(1, "s5", "send", "+11m")}, nil},
		{"absent step occurred", []event.Event{x(0, "s6", "read", "+0s"), x(1, "s6", "clear", "+1m"), x(2, "s6", "send", "+2m")}, nil},
		{"read again after clear", []event.Event{x(0, "s7", "read", "+0s"), x(1, "s7", "clear", "+1m"), x(2, "s7", "read", "+2m"), x(3, "s7", "send", "+3m")}, []string{"mcp-s"}},
		{"destroy without approval", []event.Event{x(0, "s8", "rm", "+0s")}, []string{"mcp-a"}},
		{"destroy after approval", []event.Event{ev(t, 0, map[string]any{"method": "elicitation/create", "session_key": "s9"}), x(1, "s9", "rm", "+1m")}, nil},
		{"approval too old", []event.Event{ev(t, 0, map[string]any{"method": "elicitation/create", "session_key": "s10"}), x(1, "s10", "rm", "+6m")}, []string{"mcp-a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, f := range detect(t, e, c.evs...) {
				got = append(got, f.RuleID)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// Evidence lists the steps.
	fs := detect(t, e, x(0, "z", "read", "+0s"), x(1, "z", "send", "+1s"))
	if len(fs) != 1 || fs[0].Summary != "read → send" || strings.Join(fs[0].EventIDs, ",") != "e1,e2" || !strings.Contains(fs[0].Evidence, `"step":"send"`) {
		t.Fatalf("sequence finding = %+v", fs)
	}
}

func TestLoadErrorsAllAtOnce(t *testing.T) {
	fsys := fstest.MapFS{
		"ok.yaml":         {Data: []byte("id: mcp-ok\n" + hdr + "kind: match\ncondition: event.method == \"x\"\n")},
		"typo.yaml":       {Data: []byte("id: mcp-typo\n" + hdr + "kind: match\nconditon: true\n")},
		"nonbool.yaml":    {Data: []byte("id: mcp-nb\n" + hdr + "kind: match\ncondition: event.method\n")},
		"field.yaml":      {Data: []byte("id: mcp-f\n" + hdr + "kind: match\ncondition: event.methd == \"x\"\n")},
		"list.yaml":       {Data: []byte("id: mcp-l\n" + hdr + "kind: match\ncondition: event.tool_name in lists.nope\n")},
		"sev.yaml":        {Data: []byte("id: mcp-s\ntitle: t\nseverity: urgent\nkind: match\ncondition: true\n")},
		"cost.yaml":       {Data: []byte("id: mcp-cost\n" + hdr + "kind: match\ncondition: leafStrings(event.args).exists(a, leafStrings(event.args).exists(b, leafStrings(event.args).exists(c, a.matches(b + c))))\n")},
		"dup.yaml":        {Data: []byte("id: mcp-ok\n" + hdr + "kind: match\ncondition: true\n")},
		"tmpl.yaml":       {Data: []byte("id: mcp-t\n" + hdr + "kind: match\ncondition: true\nsummary: \"{{nope}}\"\n")},
		"seq.yaml":        {Data: []byte("id: mcp-q\n" + hdr + "kind: sequence\nwithin: 1m\nsteps: [{name: a, condition: 'true'}, {name: b, absent: true, condition: 'true'}]\n")},
		"lists/l.yaml":    {Data: []byte("egress: [a]\n")},
		"testdata/x.yaml": {Data: []byte("not: a rule\n")},
	}
	_, err := Load(fsys, ".")
	if err == nil {
		t.Fatal("Load accepted a broken pack")
	}
	msg := err.Error()
	for _, want := range []string{
		"typo.yaml", "field conditon not found",
		"nonbool.yaml", "must be bool",
		"field.yaml", "methd",
		"list.yaml", `undefined list "nope"`,
		"sev.yaml", `severity "urgent"`,
		"cost.yaml", "exceeds limit",
		"dup.yaml", "duplicate rule id",
		"tmpl.yaml", "{{nope}}",
		"seq.yaml", "last step cannot be absent",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "testdata") {
		t.Errorf("testdata was loaded: %s", msg)
	}
}

func TestEvalErrorsCountAsNoMatch(t *testing.T) {
	p := loadYAML(t, map[string]string{"m.yaml": "id: mcp-m\n" + hdr + "kind: match\ncondition: event.args.path == \"/x\"\n"})
	e := newEngine(t, p, Options{})
	fs := detect(t, e, ev(t, 0, map[string]any{"args": map[string]any{"other": 1}}), ev(t, 1, map[string]any{"args": map[string]any{"path": "/x"}}))
	if len(fs) != 1 || e.Stats().EvalErrors != 1 {
		t.Fatalf("findings %d, eval errors %d", len(fs), e.Stats().EvalErrors)
	}
}

func TestStateBoundedEvictionsCounted(t *testing.T) {
	p := loadYAML(t, map[string]string{"c.yaml": "id: mcp-c\n" + hdr + "kind: threshold\nby: [agent_id]\ncondition: 'true'\nwindow: 1h\ncount: 2\n"})
	e := newEngine(t, p, Options{MaxKeysPerRule: 10})
	var evs []event.Event
	for i := 0; i < 25; i++ {
		evs = append(evs, ev(t, i, map[string]any{"agent_id": "a" + strings.Repeat("x", i)}))
	}
	detect(t, e, evs...)
	if got := e.Stats().Evictions; got != 15 {
		t.Errorf("evictions = %d, want 15", got)
	}
	if n := e.rules[0].thr.len(); n != 10 {
		t.Errorf("keys = %d, want 10", n)
	}
	// The oldest group was evicted: its second event starts over (no finding),
	// the newest group's second event fires.
	fs := detect(t, e, ev(t, 30, map[string]any{"agent_id": "a"}), ev(t, 31, map[string]any{"agent_id": "a" + strings.Repeat("x", 24)}))
	if len(fs) != 1 || fs[0].GroupKey != "a"+strings.Repeat("x", 24) {
		t.Errorf("findings = %+v", fs)
	}
}

func TestReplaceKeepsStateOfUnchangedRules(t *testing.T) {
	rule := "id: mcp-c\n" + hdr + "kind: threshold\nby: [agent_id]\ncondition: 'true'\nwindow: 1h\ncount: 3\n"
	p1 := loadYAML(t, map[string]string{"c.yaml": rule})
	e := newEngine(t, p1, Options{})
	a := func(i int) event.Event { return ev(t, i, map[string]any{"agent_id": "a"}) }
	detect(t, e, a(0), a(1))
	e.Replace(loadYAML(t, map[string]string{"c.yaml": rule})) // same version
	if fs := detect(t, e, a(2)); len(fs) != 1 {
		t.Fatalf("state lost on reload of an unchanged rule: %+v", fs)
	}
	detect(t, e, a(3), a(4))
	e.Replace(loadYAML(t, map[string]string{"c.yaml": strings.Replace(rule, "count: 3", "count: 4", 1)}))
	if fs := detect(t, e, a(5), a(6)); len(fs) != 0 {
		t.Fatalf("changed rule kept old state: %+v", fs)
	}
}

// writeRuleFile replaces dir/name atomically (temporary file, then rename),
// the way rule files should be deployed, so the watcher never sees a
// half-written file.
func writeRuleFile(t *testing.T, dir, name, s string) {
	t.Helper()
	tmp := filepath.Join(dir, filepath.Dir(name), "."+filepath.Base(name)+".tmp")
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// startWatch runs e.Watch on dir (polling every 20ms) until the test ends
// and returns a function that waits for the next reload attempt's result.
// The wait is bounded so a missed change fails the test with a message
// instead of hanging the suite; the bound is generous (the watcher needs two
// polls), it is not a latency assertion.
func startWatch(t *testing.T, e *Engine, dir string) func(after string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan error, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Watch(ctx, dir, 20*time.Millisecond, func(err error) { results <- err })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func(after string) error {
		t.Helper()
		const limit = 30 * time.Second
		select {
		case err := <-results:
			return err
		case <-time.After(limit):
			t.Fatalf("no reload within %s after %s: the watcher missed the change", limit, after)
			return nil
		}
	}
}

func TestWatchReloadsAndRejectsBadPack(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) { t.Helper(); writeRuleFile(t, dir, name, s) }
	write("a.yaml", "id: mcp-a\n"+hdr+"kind: match\ncondition: event.tool_name == \"a\"\n")
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, p, Options{})
	next := startWatch(t, e, dir)

	write("b.yaml", "id: mcp-b\n"+hdr+"kind: match\ncondition: event.tool_name == \"b\"\n")
	if err := next("adding b.yaml"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if n := len(e.Rules()); n != 2 {
		t.Fatalf("rules after reload = %d", n)
	}
	write("c.yaml", "id: mcp-c\n"+hdr+"kind: match\ncondition: event.tool_name ==\n")
	if err := next("adding the bad c.yaml"); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Fatalf("bad pack not rejected with its file name: %v", err)
	}
	var ids []string
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "mcp-a,mcp-b" {
		t.Fatalf("running pack changed after a rejected reload: %v", ids)
	}
	if st := e.Stats(); st.ReloadOK != 1 || st.ReloadFailed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestWatchSeesEditWithSameSizeAndMtime rewrites a rule with content of the
// same size and puts its old modification time back (as cp -p, rsync -t or
// an edit within one timestamp tick would leave it): the watcher must still
// reload, because it hashes contents.
func TestWatchSeesEditWithSameSizeAndMtime(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "a.yaml")
	rule := func(id string) string {
		return "id: " + id + "\n" + hdr + "kind: match\ncondition: event.tool_name == \"a\"\n"
	}
	writeRuleFile(t, dir, "a.yaml", rule("mcp-a"))
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, p, Options{})
	next := startWatch(t, e, dir)

	writeRuleFile(t, dir, "a.yaml", rule("mcp-z"))
	if err := os.Chtimes(name, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	st2, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatalf("setup: size/mtime %d/%v, want %d/%v", st2.Size(), st2.ModTime(), st.Size(), st.ModTime())
	}
	if err := next("rewriting a.yaml with the same size and mtime"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if rs := e.Rules(); len(rs) != 1 || rs[0].ID != "mcp-z" {
		t.Fatalf("rules after reload = %+v, want mcp-z", rs)
	}
}

func TestIndexDerivation(t *testing.T) {
	cases := map[string]indexKey{
		`event.method == "tools/call" && hasSecret(event.result)`:                     {field: "method", values: []string{"tools/call"}},
		`"tools/list" == event.method`:                                                {field: "method", values: []string{"tools/list"}},
		`(event.method == "a" || event.method == "b") && true`:                        {field: "method", values: []string{"a", "b"}},
		`event.method in ["a", "b"] && event.tool_name == "x"`:                        {field: "tool_name", values: []string{"x"}},
		`event.kind == "tool_definition" && hasHiddenUnicode(event.tool_description)`: {field: "kind", values: []string{"tool_definition"}},
		`event.method == "a" || hasSecret(event.result)`:                              {},
		`!(event.method == "a")`:                                                      {},
		`(event.method == "a" || event.tool_name == "b")`:                             {},
	}
	env, _ := sharedEnv()
	for src, want := range cases {
		c, err := compile(env, src, nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got := indexOf(c)
		if got.field != want.field || strings.Join(got.values, ",") != strings.Join(want.values, ",") {
			t.Errorf("indexOf(%s) = %+v, want %+v", src, got, want)
		}
	}
}

func TestRuntimeCostLimit(t *testing.T) {
	p := loadYAML(t, map[string]string{"c.yaml": "id: mcp-c\n" + hdr + `kind: match
condition: leafStrings(event.args).exists(a, leafStrings(event.args).exists(b, (a + b).size() == 3))
`})
	e := newEngine(t, p, Options{})
	big := map[string]any{}
	for i := 0; i < 256; i++ {
		big[fmt.Sprintf("k%03d", i)] = strings.Repeat("x", 1000)
	}
	small := map[string]any{"a": "x", "b": "yy"}
	fs := detect(t, e, ev(t, 0, map[string]any{"args": big}), ev(t, 1, map[string]any{"args": small}))
	if len(fs) != 1 || fs[0].EventIDs[0] != "e2" {
		t.Fatalf("findings = %+v", fs)
	}
	if e.Stats().EvalErrors != 1 {
		t.Fatalf("eval errors = %d, want 1 (cost limit)", e.Stats().EvalErrors)
	}
}

func TestHasSecretUsesRedactor(t *testing.T) {
	for in, want := range map[string]bool{
		`{"token":"[REDACTED:aws_access_key:0a1b2c3d]"}`: true,
		"AKIAIOSFODNN7EXAMPLF and more":                  true,
		`{"note":"nothing to see"}`:                      false,
	} {
		if got := HasSecret(in); got != want {
			t.Errorf("HasSecret(%q) = %v, want %v", in, got, want)
		}
	}
}

// A threshold counts calls: the client and server observations of one call
// (one call_id) count once, in the window and after it fired.
func TestThresholdCountsCallsNotObservations(t *testing.T) {
	p := loadYAML(t, map[string]string{"c.yaml": "id: mcp-c\n" + hdr + "kind: threshold\nby: [session_key]\ncondition: event.method == 'tools/list'\nwindow: 1h\ncount: 3\n"})
	e := newEngine(t, p, Options{})
	obs := func(i int, call, observer string) event.Event {
		x := ev(t, i, map[string]any{"method": "tools/list", "session_key": "s1", "ts": fmt.Sprintf("+%ds", i)})
		x.CallID, x.Observer = call, event.Observer(observer)
		return x
	}
	// Two calls seen from both sides: four observations, two calls.
	if fs := detect(t, e, obs(0, "c1", "client"), obs(1, "c1", "server"), obs(2, "c2", "client"), obs(3, "c2", "server")); len(fs) != 0 {
		t.Fatalf("fired on two calls: %+v", fs)
	}
	fs := detect(t, e, obs(4, "c3", "server"))
	if len(fs) != 1 || strings.Join(fs[0].EventIDs, ",") != "e1,e3,e5" {
		t.Fatalf("third call: %+v", fs)
	}
	// The third call's other side arrives after the window fired: not counted.
	if fs := detect(t, e, obs(5, "c3", "client"), obs(6, "c4", "client"), obs(7, "c5", "client")); len(fs) != 0 {
		t.Fatalf("a late observation counted again: %+v", fs)
	}
}

// A sequence completed by calls seen from both sides (client then server
// observations, in that order) is one finding; other calls completing it
// are another.
func TestSequenceCompletedByTheSameCallsOnce(t *testing.T) {
	p := loadYAML(t, map[string]string{"s.yaml": "id: mcp-s\n" + hdr + `kind: sequence
by: [session_key]
within: 10m
steps:
  - {name: read, condition: 'event.tool_name == "read"'}
  - {name: send, condition: 'event.tool_name == "send"'}
`})
	e := newEngine(t, p, Options{})
	obs := func(i int, tool, call string) event.Event {
		x := ev(t, i, map[string]any{"tool_name": tool, "session_key": "s1", "ts": fmt.Sprintf("+%ds", i)})
		x.CallID = call
		return x
	}
	// The client's observations, then the server's (exported later).
	fs := detect(t, e, obs(0, "read", "r1"), obs(1, "send", "w1"), obs(2, "read", "r1"), obs(3, "send", "w1"))
	if len(fs) != 1 || strings.Join(fs[0].EventIDs, ",") != "e1,e2" {
		t.Fatalf("one read and one send seen from two sides: %+v", fs)
	}
	// Another read and send: another finding.
	if fs := detect(t, e, obs(4, "read", "r2"), obs(5, "send", "w2")); len(fs) != 1 {
		t.Fatalf("new calls: %d findings, want 1", len(fs))
	}
}

// The detect role's changelog keeps what a sequence fired with and what a
// threshold counted, by call: a new owner restored from it does not count
// the other side's observations again.
func TestChangelogKeepsOccurrenceKeys(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"s.yaml": "id: mcp-s\n" + hdr + "kind: sequence\nby: [session_key]\nwithin: 10m\nsteps:\n  - {name: read, condition: 'event.tool_name == \"read\"'}\n  - {name: send, condition: 'event.tool_name == \"send\"'}\n",
		"c.yaml": "id: mcp-c\n" + hdr + "kind: threshold\nby: [session_key]\ncondition: event.tool_name == 'send'\nwindow: 1h\ncount: 2\n",
	})
	ingest := newEngine(t, p, Options{Repartition: true})
	obs := func(i int, tool, call string) event.Event {
		x := ev(t, i, map[string]any{"tool_name": tool, "session_key": "s1", "ts": fmt.Sprintf("+%ds", i)})
		x.CallID = call
		return x
	}
	inputs := func(evs ...event.Event) []Input {
		_, ins, err := ingest.DetectSplit(context.Background(), evs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ins { // as they travel
			x := ins[i].Trimmed(p)
			ins[i].Event = &x
		}
		return ins
	}
	first := newEngine(t, p, Options{})
	if fs := first.Apply(inputs(obs(0, "read", "r1"), obs(1, "send", "w1"))); len(fs) != 1 || fs[0].RuleID != "mcp-s" {
		t.Fatalf("client side: %+v", fs)
	}
	recs, err := first.Changelog()
	if err != nil {
		t.Fatal(err)
	}
	next := newEngine(t, p, Options{})
	if n, skipped := next.Restore(recs); n != 2 || skipped != 0 {
		t.Fatalf("restored %d, skipped %d; want 2, 0", n, skipped)
	}
	// The server side of the same two calls: no sequence again, and the
	// send counts once (the threshold needs two sends).
	if fs := next.Apply(inputs(obs(2, "read", "r1"), obs(3, "send", "w1"))); len(fs) != 0 {
		t.Fatalf("the other side after a restore: %+v", fs)
	}
	if fs := next.Apply(inputs(obs(4, "send", "w2"))); len(fs) != 1 || fs[0].RuleID != "mcp-c" {
		t.Fatalf("a second send: %+v", fs)
	}
}

func TestThresholdLargeCount(t *testing.T) {
	p := loadYAML(t, map[string]string{"c.yaml": "id: mcp-c\n" + hdr + "kind: threshold\nby: [agent_id]\ncondition: 'true'\nwindow: 1h\ncount: 150\n"})
	e := newEngine(t, p, Options{})
	var evs []event.Event
	for i := 0; i < 150; i++ {
		evs = append(evs, ev(t, i, map[string]any{"agent_id": "a"}))
	}
	fs := detect(t, e, evs...)
	if len(fs) != 1 || len(fs[0].EventIDs) != 100 || fs[0].EventIDs[99] != "e150" || fs[0].Time != evs[149].Time {
		t.Fatalf("findings = %d %+v", len(fs), fs)
	}
}

func TestConfigValidateAndOpen(t *testing.T) {
	err := Config{WatchInterval: -1, MaxKeysPerRule: -1, Workers: -1, RulesDir: "/nonexistent"}.Validate()
	for _, want := range []string{"watch_interval", "max_keys_per_rule", "workers", "rules_dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
	eng, err := Open(context.Background(), Config{}, nil, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(eng.Rules()); n < 30 {
		t.Errorf("embedded pack has %d rules", n)
	}
}

func TestArgsParsingBounded(t *testing.T) {
	p := loadYAML(t, map[string]string{"m.yaml": "id: mcp-m\n" + hdr + "kind: match\ncondition: size(event.args) > 0 && has(event.args.a)\n"})
	e := newEngine(t, p, Options{})
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	fs := detect(t, e,
		ev(t, 0, map[string]any{"arguments": deep}),              // too deep → {}
		ev(t, 1, map[string]any{"arguments": "not json {"}),      // invalid → {}
		ev(t, 2, map[string]any{"arguments": `["a", "b"]`}),      // a list: has() errors → no match, counted
		ev(t, 3, map[string]any{"arguments": `{"a": {"b": 1}}`}), // ok
	)
	if len(fs) != 1 || fs[0].EventIDs[0] != "e4" {
		t.Fatalf("findings = %+v", fs)
	}
}

func TestNeedsRuntimeLimit(t *testing.T) {
	env, _ := sharedEnv()
	env, err := env.Extend()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		`event.method == "x" && hasSecret(event.arguments)`:                            false,
		`urls(event.arguments).exists(u, isInternalAddress(u))`:                        false,
		`leafStrings(event.args).exists(s, hasTraversal(s) && !s.matches("^a"))`:       false,
		`injectionMarkers(event.result).exists(m, m != "x")`:                           false,
		`event.tags.exists(t, t.startsWith("secret:"))`:                                false,
		`[1, 2].all(x, x > 0)`:                                                         false,
		`leafStrings(event.args).exists(a, leafStrings(event.args).exists(b, a == b))`: true,
		`event.args.exists(k, k == "x")`:                                               true,
		`leafStrings(event.args).exists(s, s == event.tool_name)`:                      true,
		`leafStrings(leafStrings(event.args).filter(x, x != "")).exists(s, s == "a")`:  true,
		`event.attr_keys.exists(k, k == "x")`:                                          true,
	}
	for src, want := range cases {
		c, err := env.Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := needsRuntimeLimit(c); got != want {
			t.Errorf("needsRuntimeLimit(%s) = %v, want %v", src, got, want)
		}
	}
}

func TestSequenceStepBinding(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"x.yaml": "id: mcp-x\n" + hdr + `kind: sequence
by: [tenant, session_key]
within: 10m
steps:
  - {name: read, condition: 'event.tool_name == "read"'}
  - {name: clear, absent: true, condition: 'event.tool_name == "clear"'}
  - {name: send, condition: 'event.tool_name == "send"', differ: [server_name]}
`,
		"c.yaml": "id: mcp-c\n" + hdr + `kind: sequence
by: [tenant, server_name]
within: 1h
steps:
  - {name: poisoned, condition: 'event.kind == "tool_definition"'}
  - {name: call, condition: 'event.method == "tools/call"', same: [tool_name, agent_id]}
`})
	e := newEngine(t, p, Options{})
	x := func(i int, sess, srv, tool, at string) event.Event {
		return ev(t, i, map[string]any{"tool_name": tool, "server_name": srv, "session_key": sess, "ts": at})
	}
	def := func(i int, srv, tool, at string) event.Event {
		return ev(t, i, map[string]any{"kind": "tool_definition", "method": "tools/list", "server_name": srv, "tool_name": tool, "session_key": "d", "ts": at})
	}
	call := func(i int, srv, tool, agent, at string) event.Event {
		return ev(t, i, map[string]any{"method": "tools/call", "server_name": srv, "tool_name": tool, "agent_id": agent, "session_key": "d" + at, "ts": at})
	}
	cases := []struct {
		name string
		evs  []event.Event
		want []string
	}{
		{"other server", []event.Event{x(0, "s1", "db", "read", "+0s"), x(1, "s1", "mail", "send", "+1m")}, []string{"mcp-x"}},
		{"same server", []event.Event{x(0, "s2", "db", "read", "+0s"), x(1, "s2", "db", "send", "+1m")}, nil},
		{"absent step between, then other server", []event.Event{x(0, "s3", "db", "read", "+0s"), x(1, "s3", "db", "clear", "+1m"), x(2, "s3", "mail", "send", "+2m")}, nil},
		{"server unknown on one side", []event.Event{x(0, "s5", "", "read", "+0s"), x(1, "s5", "db", "send", "+1m")}, []string{"mcp-x"}},
		{"server unknown on both sides", []event.Event{x(0, "s6", "", "read", "+0s"), x(1, "s6", "", "send", "+1m")}, []string{"mcp-x"}},
		{"latest read decides", []event.Event{x(0, "s4", "mail", "read", "+0s"), x(1, "s4", "db", "read", "+1m"), x(2, "s4", "mail", "send", "+2m")}, []string{"mcp-x"}},
		{"same tool and agent called", []event.Event{def(0, "srv1", "send", "+0s"), call(1, "srv1", "send", "", "+1m")}, []string{"mcp-c"}},
		{"another tool of the server called", []event.Event{def(0, "srv2", "send", "+0s"), call(1, "srv2", "list", "", "+1m")}, nil},
		{"same tool, other agent", []event.Event{def(0, "srv3", "send", "+0s"), call(1, "srv3", "send", "bot", "+1m")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, f := range detect(t, e, c.evs...) {
				got = append(got, f.RuleID)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// Load errors: binding on the first step, on an absent step, unknown field.
	for name, steps := range map[string]string{
		"need an earlier step":       `[{name: a, condition: 'true', same: [tool_name]}, {name: b, condition: 'true'}]`,
		"absent step cannot":         `[{name: a, condition: 'true'}, {name: b, absent: true, condition: 'true', differ: [tool_name]}, {name: c, condition: 'true'}]`,
		`unknown event field "tool"`: `[{name: a, condition: 'true'}, {name: b, condition: 'true', same: [tool]}]`,
	} {
		_, err := Load(fstest.MapFS{"q.yaml": {Data: []byte("id: mcp-q\n" + hdr + "kind: sequence\nwithin: 1m\nsteps: " + steps + "\n")}}, ".")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("steps %s: error %v, want %q", steps, err, name)
		}
	}
}

// TestWorkerAssignmentBalancedAndComplete: events go to workers by tool,
// capped at a share plus a quarter; every event is evaluated exactly once
// and the findings equal those of one worker, even when one tool makes up
// the whole batch.
func TestWorkerAssignmentBalancedAndComplete(t *testing.T) {
	p := loadYAML(t, map[string]string{"m.yaml": "id: mcp-m\n" + hdr + "kind: match\ncondition: event.arguments.contains(\"x\")\n"})
	for _, tools := range [][]string{{"same"}, {"a", "b", "c", "d", "e"}} {
		var evs []event.Event
		for i := 0; i < 400; i++ {
			arg := "y"
			if i%3 == 0 {
				arg = "x"
			}
			evs = append(evs, ev(t, i, map[string]any{"tool_name": tools[i%len(tools)], "arguments": arg}))
		}
		one, two := newEngine(t, p, Options{Workers: 1}), newEngine(t, p, Options{Workers: 2})
		f1, f2 := detect(t, one, evs...), detect(t, two, evs...)
		if len(f1) != 134 || len(f1) != len(f2) {
			t.Fatalf("tools %v: %d findings with 1 worker, %d with 2", tools, len(f1), len(f2))
		}
		counts := map[int32]int{}
		for _, k := range two.assign {
			counts[k]++
		}
		if len(two.assign) != len(evs) || counts[0]+counts[1] != len(evs) || counts[0] > 250 || counts[1] > 250 {
			t.Fatalf("tools %v: assignment %v", tools, counts)
		}
		if s := two.Stats(); s.Evaluations != one.Stats().Evaluations {
			t.Fatalf("evaluations %d vs %d", s.Evaluations, one.Stats().Evaluations)
		}
	}
}

// TestRuleTestLists: a rule test's `lists:` replace the pack's lists of the
// same name for that test only (as a deployment's lists/ folder would), so
// an opt-in rule shipped with an empty list is tested with a filled one.
func TestRuleTestLists(t *testing.T) {
	p := loadYAML(t, map[string]string{
		"lists/l.yaml": "allowed: []\nother: [x]\n",
		"r.yaml": "id: mcp-r\n" + hdr + `kind: match
condition: size(lists.allowed) > 0 && !(event.tool_name in lists.allowed) && event.tool_name != lists.other[0]
tests:
  - name: list filled by the test
    lists: {allowed: [read_file]}
    events: [{tool_name: delete_repository}, {tool_name: read_file}, {tool_name: x}]
    expect: 1
  - name: the pack's empty list
    events: [{tool_name: delete_repository}]
    expect: 0
  - name: a list the pack lacks
    lists: {nowhere: [a]}
    events: [{tool_name: a}]
    expect: 0
`})
	res := RunTests(p)
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	for _, r := range res[:2] {
		if !r.Passed() {
			t.Errorf("%s: want %d, got %d %s", r.Test, r.Want, r.Got, r.Err)
		}
	}
	if r := res[2]; r.Passed() || !strings.Contains(r.Err, `"nowhere"`) {
		t.Errorf("a test list the pack does not define: passed %v, err %q; want an error naming it", r.Passed(), r.Err)
	}
	if got := p.Rules[0].lists["allowed"]; len(got) != 0 {
		t.Errorf("the test's list leaked into the pack's rule: %v", got)
	}
}

// TestWatchListEditTurnsOptInRuleOn is the static allowlist's opt-in, as a
// deployment does it: the shipped rule and empty list in a rules_dir; the
// rule is off; filling lists/allowlist.yaml turns it on at the next reload
// (the rule file is unchanged: its state is kept, its lists are new).
func TestWatchListEditTurnsOptInRuleOn(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ListsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"mcp-tool-not-allowlisted.yaml", "lists/allowlist.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../detections", f))
		if err != nil {
			t.Fatal(err)
		}
		writeRuleFile(t, dir, f, string(b))
	}
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, p, Options{})
	next := startWatch(t, e, dir)
	call := func(i int) event.Event {
		return ev(t, i, map[string]any{"method": "tools/call", "agent_id": "a", "server_name": "github", "tool_name": "delete_repository"})
	}
	if fs := detect(t, e, call(0)); len(fs) != 0 {
		t.Fatalf("shipped empty list: %d findings, want 0", len(fs))
	}
	writeRuleFile(t, dir, "lists/allowlist.yaml", "allowlisted_tools: [github/list_issues]\n")
	if err := next("filling the allowlist"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if fs := detect(t, e, call(1)); len(fs) != 1 || fs[0].RuleID != "mcp-tool-not-allowlisted" {
		t.Fatalf("filled list: findings %v, want one of mcp-tool-not-allowlisted", fs)
	}
}

// TestThresholdGroupHasKey: the hashed "counted already?" check finds the
// window's live keys and the spent ones (also spent keys set without their
// hashes, as Restore does), and no dropped or other key.
func TestThresholdGroupHasKey(t *testing.T) {
	g := newThrGroup()
	at := time.Unix(0, 0)
	for i := 0; i < 5; i++ {
		g.add(at, fmt.Sprintf("e%d", i), fmt.Sprintf("k%d", i))
	}
	g.dropOldest(2)
	g.spent = []string{"s0", "s1"}
	for k, want := range map[string]bool{"k0": false, "k1": false, "k2": true, "k4": true, "s0": true, "s1": true, "k5": false, "": false} {
		if got := g.hasKey(keyHashS(k), k); got != want {
			t.Errorf("hasKey(%q) = %v, want %v", k, got, want)
		}
	}
	// A hash equal to a live key's with another text is not that key.
	if g.hasKey(keyHashS("k2"), "k2x") {
		t.Error("hasKey matched on the hash alone")
	}
	// Adding more than the initial storage moves the live part; hashes follow.
	for i := 5; i < 12; i++ {
		g.add(at, fmt.Sprintf("e%d", i), fmt.Sprintf("k%d", i))
	}
	for i := 2; i < 12; i++ {
		if k := fmt.Sprintf("k%d", i); !g.hasKey(keyHashS(k), k) {
			t.Errorf("hasKey(%q) = false after growing", k)
		}
	}
}

// TestEvidenceOfEncodesAsTheMap: the event evidence encodes byte for byte as
// the map of the same keys it replaced (sorted keys, empty values left out,
// values cut at 512 bytes, HTML escaping), on the corpus and edge cases.
func TestEvidenceOfEncodesAsTheMap(t *testing.T) {
	asMap := func(ev *event.Event) map[string]any {
		m := map[string]any{"event_id": ev.EventID, "ts": ev.Time.UTC().Format(time.RFC3339Nano)}
		put := func(k, v string) {
			if v != "" {
				if len(v) > 512 {
					v = v[:512] + "…"
				}
				m[k] = v
			}
		}
		put("method", ev.Method)
		put("tool_name", ev.ToolName)
		put("server_name", ev.ServerName)
		put("agent_id", ev.AgentID)
		put("session_key", ev.SessionKey)
		put("arguments", ev.Arguments)
		put("outcome", string(ev.Outcome))
		return m
	}
	evs := scenario.Eval(1, 300).Plain()
	evs = append(evs, event.Event{}, event.Event{EventID: "<&>", Arguments: strings.Repeat("é<", 400), ToolName: "\u2028x", Outcome: "ok"})
	for i := range evs {
		a, err := json.Marshal(map[string]any{"event": evidenceOf(&evs[i]), "rule_kind": "match"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"event": asMap(&evs[i]), "rule_kind": "match"})
		if string(a) != string(b) {
			t.Fatalf("event %d: struct %s, map %s", i, a, b)
		}
	}
}

// TestSameConditionEvaluatedOnce: conditions of the same meaning (same
// expression whatever the layout, same values of the lists they read) are
// evaluated once per event and their result, errors included, serves every
// rule that states them; the same text over other list values does not.
func TestSameConditionEvaluatedOnce(t *testing.T) {
	rule := func(id, cond, lists string) string {
		return "id: " + id + "\n" + hdr + "kind: match\nsuppress: {disabled: true}\ncondition: " + cond + "\n" + lists
	}
	p := loadYAML(t, map[string]string{
		"a.yaml": rule("mcp-a", `event.method == "tools/call" && event.tool_name in lists.t`, "lists: {t: [x]}\n"),
		"b.yaml": rule("mcp-b", `>`+"\n  event.method == \"tools/call\" &&\n    event.tool_name in lists.t", "lists: {t: [x]}\n"),
		"c.yaml": rule("mcp-c", `event.method == "tools/call" && event.tool_name in lists.t`, "lists: {t: [y]}\n"),
		"d.yaml": rule("mcp-d", `event.args.path == "/x"`, ""),
		"e.yaml": rule("mcp-e", `event.args.path  ==  "/x"`, ""),
	})
	e := newEngine(t, p, Options{Workers: 1})
	canon := map[string]int32{}
	for k, ce := range e.conds {
		canon[ce.rs.rule.ID] = ce.canon
		if ce.canon >= 0 && e.conds[ce.canon].canon != ce.canon {
			t.Fatalf("condition %d: canon %d is not its own canon", k, ce.canon)
		}
	}
	if canon["mcp-a"] < 0 || canon["mcp-a"] != canon["mcp-b"] || canon["mcp-c"] >= 0 || canon["mcp-d"] < 0 || canon["mcp-d"] != canon["mcp-e"] || canon["mcp-d"] == canon["mcp-a"] {
		t.Fatalf("shared conditions = %v, want a=b, d=e, c alone", canon)
	}
	ids := func(fs []event.Finding) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.RuleID)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	if got := ids(detect(t, e, ev(t, 0, map[string]any{"method": "tools/call", "tool_name": "x", "args": map[string]any{"path": "/x"}}))); got != "mcp-a,mcp-b,mcp-d,mcp-e" {
		t.Errorf("tool x: findings %s", got)
	}
	if got := ids(detect(t, e, ev(t, 1, map[string]any{"method": "tools/call", "tool_name": "y", "args": map[string]any{}}))); got != "mcp-c" {
		t.Errorf("tool y: findings %s", got)
	}
	// The missing key is an error of d's and of e's evaluation.
	if s := e.Stats(); s.EvalErrors != 2 || s.Evaluations != 10 {
		t.Errorf("stats %+v, want 2 eval errors and 10 evaluations (5 rules × 2 events)", s)
	}
}
