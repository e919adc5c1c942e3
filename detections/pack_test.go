package detections_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/detect/rulecmd"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/redact"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// requiredRules are the rule ids the pack must ship (issue 4).
var requiredRules = []string{
	"mcp-tool-description-injection", "mcp-tool-description-hidden-characters", "mcp-tool-definition-changed",
	"mcp-tool-changed-then-called", "mcp-tool-name-collision", "mcp-server-version-changed", "mcp-server-first-seen",
	"mcp-agent-new-tool", "mcp-agent-call-rate-spike", "mcp-tool-enumeration", "mcp-repeated-denials",
	"mcp-tool-call-loop", "mcp-tool-not-allowlisted",
	"mcp-path-traversal", "mcp-sensitive-file-access", "mcp-persistence-file-write", "mcp-shell-injection",
	"mcp-ssrf-internal-address", "mcp-encoded-payload", "mcp-secret-in-arguments", "mcp-secret-in-result",
	"mcp-result-prompt-injection", "mcp-destructive-command",
	"mcp-sensitive-read-then-egress", "mcp-cross-server-data-flow", "mcp-destructive-without-approval",
	"mcp-session-multiple-clients", "mcp-session-user-mismatch", "mcp-token-audience-mismatch",
	"mcp-unauthenticated-call", "mcp-untrusted-origin", "mcp-sampling-abuse",
}

func loadPack(t testing.TB) *detect.Pack {
	t.Helper()
	p, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatalf("cannot load the rule pack: %v", err)
	}
	return p
}

var tagRe = regexp.MustCompile(`^(owasp-mcp:MCP(0[1-9]|10)|safe-mcp:T[0-9]{4})$`)

// TestPack loads the whole pack, checks every rule's metadata and runs every
// inline test.
func TestPack(t *testing.T) {
	p := loadPack(t)
	have := map[string]bool{}
	for _, r := range p.Rules {
		have[r.ID] = true
		if r.File != r.ID+".yaml" {
			t.Errorf("%s: file %s should be named after the id", r.ID, r.File)
		}
		if r.Runbook == "" || len(r.FalsePositives) == 0 || r.Summary == "" || r.Description == "" {
			t.Errorf("%s: runbook, false_positives, summary and description are required", r.ID)
		}
		owasp := false
		for _, tag := range r.Tags {
			if !tagRe.MatchString(tag) {
				t.Errorf("%s: tag %q is neither owasp-mcp:MCPnn nor safe-mcp:Tnnnn", r.ID, tag)
			}
			owasp = owasp || strings.HasPrefix(tag, "safe-mcp:") || strings.HasPrefix(tag, "owasp-mcp:")
		}
		if !owasp {
			t.Errorf("%s: no OWASP MCP or SAFE-MCP tag", r.ID)
		}
		pos, neg := 0, 0
		for _, tc := range r.Tests {
			if tc.Expect > 0 {
				pos++
			} else {
				neg++
				if len(tc.Events) == 0 {
					t.Errorf("%s: negative test %q has no events", r.ID, tc.Name)
				}
			}
		}
		if pos == 0 || neg == 0 {
			t.Errorf("%s: needs a positive and a negative (near-miss) test, has %d and %d", r.ID, pos, neg)
		}
	}
	for _, id := range requiredRules {
		if !have[id] {
			t.Errorf("rule %s is missing", id)
		}
	}
	for _, res := range detect.RunTests(p) {
		if !res.Passed() {
			t.Errorf("%s / %s: want %d findings, got %d %s", res.RuleID, res.Test, res.Want, res.Got, res.Err)
		}
		if res.EvalErrors > 0 {
			t.Errorf("%s / %s: %d CEL evaluation errors", res.RuleID, res.Test, res.EvalErrors)
		}
	}
}

// TestLint runs `analyzer rules lint` on the embedded pack.
func TestLint(t *testing.T) {
	for _, msg := range rulecmd.Lint(loadPack(t)) {
		t.Error(msg)
	}
}

// TestAttackCoverage requires an attack case in internal/scenario for every rule.
func TestAttackCoverage(t *testing.T) {
	covered := map[string]bool{}
	for _, id := range scenario.RuleIDs() {
		covered[id] = true
	}
	for _, r := range loadPack(t).Rules {
		if !covered[r.ID] {
			t.Errorf("rule %s has no attack case in internal/scenario", r.ID)
		}
	}
}

// runPack runs the whole pack over a corpus in analyzer-sized batches.
func runPack(t *testing.T, p *detect.Pack, c scenario.Corpus) (scenario.Evaluation, string) {
	t.Helper()
	eng, err := detect.New(p, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs := c.Plain()
	var findings []event.Finding
	for i := 0; i < len(evs); i += 500 {
		j := min(i+500, len(evs))
		fs, err := eng.Detect(context.Background(), evs[i:j])
		if err != nil {
			t.Fatal(err)
		}
		findings = append(findings, fs...)
	}
	if st := eng.Stats(); st.EvalErrors > 0 {
		t.Errorf("%d CEL evaluation errors over the corpus", st.EvalErrors)
	}
	sev := map[string]event.Severity{}
	for _, r := range p.Rules {
		sev[r.ID] = event.Severity(r.Severity)
	}
	ev := scenario.Evaluate(c, findings, sev)
	var b strings.Builder
	ev.Print(&b)
	return ev, b.String()
}

// checkQuality fails on a missed expectation or a high/critical benign finding.
func checkQuality(t *testing.T, ev scenario.Evaluation, table string) {
	t.Helper()
	if testing.Verbose() || os.Getenv("MCPWATCH_EVAL_VERBOSE") != "" {
		t.Log("\n" + table)
	}
	failed := false
	for _, s := range ev.Rules {
		if s.Caught < s.Expected {
			t.Errorf("%s: caught %d of %d attack cases; missed %v", s.RuleID, s.Caught, s.Expected, s.Missed)
			failed = true
		}
		if s.BenignHigh > 0 {
			t.Errorf("%s (%s): %d high or critical findings on benign traffic, e.g. %v %s", s.RuleID, s.Severity, s.BenignHigh, s.FalsePositive, s.FPExample)
			failed = true
		}
	}
	if failed {
		t.Log("\n" + table)
	}
}

// TestDemo runs the pack over the demo scenario (what cmd/demo replays): every
// demo attack must be found and nothing high or critical on its benign part.
func TestDemo(t *testing.T) {
	ev, table := runPack(t, loadPack(t), scenario.Demo(1))
	checkQuality(t, ev, table)
}

// evalEvents is the size of the benign corpus of TestEval.
const evalEvents = 12000

// TestEval runs the whole pack over ≥ 10k benign events with the attack
// sessions embedded (scenario.Eval), prints precision and recall per rule
// and overall, and requires every expected attack detection and no high or
// critical finding on benign traffic. MCPWATCH_EVAL_VERBOSE=1 prints the table
// even when the test passes (go test -v prints it too).
func TestEval(t *testing.T) {
	ev, table := runPack(t, loadPack(t), scenario.Eval(1, evalEvents))
	checkQuality(t, ev, table)
}

// TestEvalRedacted is TestEval on what the analyzer really sees: events
// redacted by the collector's default redactor (secrets replaced by
// [REDACTED:kind:hash] markers).
func TestEvalRedacted(t *testing.T) {
	r, err := redact.New(redact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := scenario.Eval(1, evalEvents)
	for i := range c.Events {
		r.Apply(&c.Events[i].Event)
	}
	ev, table := runPack(t, loadPack(t), c)
	checkQuality(t, ev, table)
}

// packWithAllowlist loads the pack as a deployment that opts in to the
// static allowlist does: its rules_dir's lists/allowlist.yaml filled, here
// with the demo world's list (testdata/allowlist.yaml).
func packWithAllowlist(t testing.TB) *detect.Pack {
	t.Helper()
	list, err := os.ReadFile("testdata/allowlist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := detections.WithFiles(map[string][]byte{"lists/allowlist.yaml": list})
	if err != nil {
		t.Fatal(err)
	}
	p, err := detect.Load(fsys, ".")
	if err != nil {
		t.Fatalf("cannot load the pack with the allowlist: %v", err)
	}
	return p
}

// TestStaticAllowlist: the shipped allowlist is empty and
// mcp-tool-not-allowlisted never fires; filled (a deployment that opts in),
// it catches every attack case written for it (the delete_repository call,
// the case variant, the homoglyph) and still nothing high or critical on
// the benign traffic of the demo world, whose tools are all listed.
func TestStaticAllowlist(t *testing.T) {
	const rule = "mcp-tool-not-allowlisted"
	c := scenario.Eval(1, evalEvents)
	caught := func(p *detect.Pack) (cases map[string]bool, benign int) {
		eng, err := detect.New(p, detect.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := eng.Detect(context.Background(), c.Plain())
		if err != nil {
			t.Fatal(err)
		}
		labels := c.ByEventID()
		cases = map[string]bool{}
		for _, f := range fs {
			if f.RuleID != rule {
				continue
			}
			for _, id := range f.EventIDs {
				if l := labels[id]; l != nil && l.Attack {
					cases[l.Case] = true
				} else if l != nil {
					benign++
				}
			}
		}
		return cases, benign
	}
	if p := loadPack(t); len(p.Lists["allowlisted_tools"]) != 0 {
		t.Errorf("the shipped allowlist has %d entries, want none (opt-in)", len(p.Lists["allowlisted_tools"]))
	} else if cases, benign := caught(p); len(cases)+benign != 0 {
		t.Errorf("shipped pack: %s fired on %d attack cases and %d benign events, want none", rule, len(cases), benign)
	}
	cases, benign := caught(packWithAllowlist(t))
	want := 0
	for _, l := range c.Cases {
		if strings.HasPrefix(l.Case, "attack/"+rule+"/") {
			want++
			if !cases[l.Case] {
				t.Errorf("with the allowlist filled, %s missed %s", rule, l.Case)
			}
		}
	}
	if want < 3 {
		t.Errorf("%d attack cases for %s, want ≥ 3", want, rule)
	}
	if benign != 0 {
		t.Errorf("with the demo's allowlist, %s fired on %d benign events of the demo world", rule, benign)
	}
	ev, table := runPack(t, packWithAllowlist(t), c)
	checkQuality(t, ev, table)
}
