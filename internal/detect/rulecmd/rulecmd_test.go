package rulecmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
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
