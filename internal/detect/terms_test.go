package detect

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mcpwatch/mcpwatch/internal/profile/shape"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

const profileRule = "id: mcp-p\n" + hdr + `kind: new_term
by: [tenant, agent_id]
fields: [server_name, tool_name]
terms: argShape(event.arguments)
history: 30d
learning: 3d
condition: event.method == "tools/call"
summary: "{{agent_id}} outside: {{term}}"
`

// TestNewTermSetProfile: a new_term rule with terms learns the argument
// shape per agent and reports the first call outside it once, naming the
// new terms; inside calls and other agents' profiles stay silent.
func TestNewTermSetProfile(t *testing.T) {
	e := newEngine(t, loadYAML(t, map[string]string{"p.yaml": profileRule}), Options{Baselines: nil})
	call := func(i int, agent, at, args string) map[string]any {
		return map[string]any{"method": "tools/call", "agent_id": agent, "server_name": "fs", "tool_name": "read_file", "arguments": args, "ts": at}
	}
	learn := []map[string]any{
		call(0, "a", "+0s", `{"path":"/srv/app/a.go"}`),
		call(1, "b", "+0s", `{"path":"/etc/hosts","lines":10}`),
	}
	for i, m := range learn {
		if fs := detect(t, e, ev(t, i, m)); len(fs) != 0 {
			t.Fatalf("alerted while learning: %+v", fs)
		}
	}
	inside := ev(t, 10, call(10, "a", "+4d", `{"path":"/srv/app/b/c.go"}`))
	if fs := detect(t, e, inside); len(fs) != 0 {
		t.Fatalf("inside call alerted: %+v", fs)
	}
	// b's /etc and lines are not a's.
	out := ev(t, 11, call(11, "a", "+4d", `{"path":"/etc/hosts","lines":10}`))
	fs := detect(t, e, out)
	if len(fs) != 1 || fs[0].Summary != "a outside: key:lines=number, root:/etc" {
		t.Fatalf("outside call: %+v", fs)
	}
	if !strings.Contains(fs[0].Evidence, `"outside":["key:lines=number","root:/etc"]`) {
		t.Fatalf("evidence lacks the outside terms: %+v", fs[0].Evidence)
	}
	// Once reported, the terms are learned.
	if fs := detect(t, e, ev(t, 12, call(12, "a", "+5d", `{"path":"/etc/passwd","lines":3}`))); len(fs) != 0 {
		t.Fatalf("reported twice: %+v", fs)
	}
	// A new value kind of a known key.
	if fs := detect(t, e, ev(t, 13, call(13, "a", "+5d", `{"path":"/srv/x","lines":"all"}`))); len(fs) != 1 || !strings.Contains(fs[0].Summary, "key:lines=string") {
		t.Fatalf("new value kind: %+v", fs)
	}
}

func TestTermsValidation(t *testing.T) {
	for name, body := range map[string]string{
		"not grouped by agent": strings.Replace(profileRule, "by: [tenant, agent_id]", "by: [tenant]", 1),
		"not a list":           strings.Replace(profileRule, "argShape(event.arguments)", "event.tool_name", 1),
		"not new_term":         strings.Replace(strings.Replace(profileRule, "kind: new_term", "kind: match", 1), "fields: [server_name, tool_name]\n", "", 1),
	} {
		fsys := fstest.MapFS{"p.yaml": &fstest.MapFile{Data: []byte(body)}}
		if _, err := Load(fsys, "."); err == nil || !strings.Contains(err.Error(), "terms") {
			t.Errorf("%s: err = %v, want a terms error", name, err)
		}
	}
}

// TestTermsNativeAndCELAgree: argShape(event.arguments) runs natively; any
// other expression through CEL, with the same terms.
func TestTermsNativeAndCELAgree(t *testing.T) {
	native := loadYAML(t, map[string]string{"p.yaml": profileRule}).Rules[0]
	viaCEL := loadYAML(t, map[string]string{"p.yaml": strings.Replace(profileRule, "argShape(event.arguments)", `argShape(event.arguments).filter(x, x != "")`, 1)}).Rules[0]
	if native.terms.native == nil || viaCEL.terms.native != nil {
		t.Fatalf("native path: plain %v, filtered %v", native.terms.native != nil, viaCEL.terms.native != nil)
	}
	e := ev(t, 0, map[string]any{"method": "tools/call", "arguments": `{"path":"/srv/x","url":"https://a.example/"}`})
	a, err := native.terms.eval(&e, native.listsVal)
	if err != nil {
		t.Fatal(err)
	}
	b, err := viaCEL.terms.eval(&e, viaCEL.listsVal)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(a, ",") != strings.Join(b, ",") || len(a) != 4 {
		t.Fatalf("native %q, CEL %q", a, b)
	}
}

// TestShapeCacheAgreesWithScan: the terms the shape cache returns are
// those of a fresh scan of the same arguments — for repeated texts (hits),
// texts replacing each other in one slot (a table of 1 and of 7 entries),
// and texts outside the cached sizes.
func TestShapeCacheAgreesWithScan(t *testing.T) {
	var args []string
	for _, e := range scenario.Eval(1, 2000).Plain() {
		if e.Method == "tools/call" {
			args = append(args, e.Arguments)
		}
	}
	args = append(args, "", "{}", `{"a":1}`, strings.Repeat(`{"k":"/srv/x"}`, 400)) // short and over memoMaxBytes
	join := func(ts *shape.Terms) string {
		var b strings.Builder
		for i := 0; i < ts.Len(); i++ {
			b.Write(ts.At(i))
			b.WriteByte('\n')
		}
		return b.String()
	}
	for _, size := range []int{1, 7, contentEntries} {
		c := newShapeCache(size)
		var scratch, fresh shape.Terms
		hits := 0
		for round := 0; round < 2; round++ {
			for i, a := range args {
				set := keyHashS(a) % uint64(len(c.mru))
				for _, e := range c.tab[2*set : 2*set+2] {
					if e.ok && string(e.s) == a {
						hits++
					}
				}
				got := join(c.terms(a, &scratch))
				shape.Scan(&fresh, a)
				if want := join(&fresh); got != want {
					t.Fatalf("table %d, round %d, arguments %d %q: cached terms %q, scanned %q", size, round, i, a, got, want)
				}
			}
		}
		if hits == 0 {
			t.Fatalf("table %d: no hit, the cache is not exercised", size)
		}
	}
}
