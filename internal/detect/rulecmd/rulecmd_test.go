package rulecmd

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

func run(args ...string) (int, string) {
	var out bytes.Buffer
	code := Main(args, &out, &out)
	return code, out.String()
}

func TestRulesTestAndLint(t *testing.T) {
	code, out := run("test", "testdata/pack")
	if code != 1 || !strings.Contains(out, "PASS mcp-good (2 tests)") || !strings.Contains(out, "FAIL mcp_Sloppy") ||
		!strings.Contains(out, `FAIL "wrong expectation": want 2 findings, got 1`) || !strings.HasSuffix(out, "2 passed, 1 failed\n") {
		t.Errorf("rules test: exit %d\n%s", code, out)
	}
	code, out = run("test", "testdata/pack/good.yaml")
	if code != 0 || !strings.HasSuffix(out, "2 passed, 0 failed\n") {
		t.Errorf("rules test one file: exit %d\n%s", code, out)
	}
	code, out = run("lint", "testdata/pack")
	for _, want := range []string{"kebab-case", `unknown tag "made-up:1"`, "runbook is required", "false_positives is required", "summary is required", "negative test", "2 rules, 6 problems"} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || strings.Contains(out, "(mcp-good):") {
		t.Errorf("lint: exit %d\n%s", code, out)
	}
	if code, out := run("test", "testdata/missing"); code != 1 || !strings.Contains(out, "cannot read") {
		t.Errorf("missing path: exit %d %s", code, out)
	}
	if code, _ := run("bogus"); code != 2 {
		t.Errorf("unknown subcommand exit %d", code)
	}
}

func TestEvalScoresTheCorpus(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(context.Background(), pack, scenario.Eval(1, 2000))
	if err != nil {
		t.Fatal(err)
	}
	var expected, caught int
	for _, s := range res.Scores {
		expected += s.Expected
		caught += s.Caught
		if s.TruePos+s.FalsePos != s.Findings {
			t.Errorf("%s: tp+fp != findings", s.RuleID)
		}
	}
	if expected == 0 || caught == 0 {
		t.Fatalf("expected %d, caught %d", expected, caught)
	}
	var out bytes.Buffer
	Report(res, &out, 5)
	if !strings.Contains(out.String(), "overall") || !strings.Contains(out.String(), "precision") {
		t.Errorf("report:\n%s", out.String())
	}
	t.Logf("caught %d of %d expected attack cases", caught, expected)
}

// packDirWithAllowlist writes the shipped pack to a directory with
// lists/allowlist.yaml filled with the demo world's list — a rules_dir
// that opts in to the static allowlist — and loads it as the analyzer does.
func packDirWithAllowlist(t *testing.T) *detect.Pack {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(detections.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, p), 0o755)
		}
		b, err := fs.ReadFile(detections.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile("../../../detections/testdata/allowlist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lists", "allowlist.yaml"), list, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := detect.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalSuppressesTheChattyAgent: over the chatty benign agent, the
// shipped pack's allowlist rule is off (its list is empty); in a rules_dir
// that fills the list it hits every call but stores one finding per tool
// and hour (its suppression), and the report gives both figures per 10k
// benign events.
func TestEvalSuppressesTheChattyAgent(t *testing.T) {
	const rule = "mcp-tool-not-allowlisted"
	vol := scenario.BenignVolume(1, 3000)
	windows := map[string]bool{}
	calls := 0
	for _, l := range vol.Events {
		if e := l.Event; e.Method == "tools/call" {
			calls++
			windows[e.ToolName+"@"+e.Time.Truncate(time.Hour).String()] = true
		}
	}
	if calls < 3000 {
		t.Fatalf("the volume corpus has %d calls, want ≥ 3000", calls)
	}
	corpus := scenario.Merge(scenario.Eval(1, 2000), vol)
	score := func(pack *detect.Pack) (*EvalResult, RuleScore, int) {
		res, err := Evaluate(context.Background(), pack, corpus)
		if err != nil {
			t.Fatal(err)
		}
		var s RuleScore
		for _, x := range res.Scores {
			if x.RuleID == rule {
				s = x
			}
		}
		var chatty int
		for _, f := range res.BenignFP {
			if f.RuleID == rule && f.AgentID == "sync-worker-1" {
				chatty++
			}
		}
		return res, s, chatty
	}
	shipped, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	if _, s, _ := score(shipped); s.Raw != 0 {
		t.Errorf("shipped pack: %s hit %d times, want 0 (the allowlist is opt-in)", rule, s.Raw)
	}
	res, s, chatty := score(packDirWithAllowlist(t))
	if s.BenignRaw < calls || chatty != len(windows) {
		t.Fatalf("allowlist rule: %d benign hits (want ≥ %d calls), %d stored for the chatty agent (want %d: one per tool and hour)",
			s.BenignRaw, calls, chatty, len(windows))
	}
	var out bytes.Buffer
	Report(res, &out, 0)
	want := fmt.Sprintf("%8.1f %8.1f", per10k(s.BenignRaw, res.BenignEvents), per10k(s.BenignFP, res.BenignEvents))
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "benign findings per 10k benign events") {
		t.Errorf("report lacks the per-10k figures %q:\n%s", want, out.String())
	}
}

// TestEvalFailsOnSevereBenignFindings: one high finding on benign traffic
// fails `rules eval` and says so; a medium one does not.
func TestEvalFailsOnSevereBenignFindings(t *testing.T) {
	for sev, want := range map[string]int{"high": 1, "critical": 1, "medium": 0} {
		res := &EvalResult{Events: 10, BenignEvents: 10, Scores: []RuleScore{{RuleID: "mcp-x", Severity: sev, Raw: 1, Findings: 1, FalsePos: 1, BenignFP: 1}},
			BenignFP: []event.Finding{{RuleID: "mcp-x", Severity: event.Severity(sev), Summary: "benign"}}}
		var out bytes.Buffer
		if code := Report(res, &out, 5); code != want || strings.Contains(out.String(), "FAIL: 1 high/critical") != (want == 1) {
			t.Errorf("%s benign finding: exit %d, want %d\n%s", sev, code, want, out.String())
		}
	}
}
