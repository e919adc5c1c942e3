// Package rulecmd implements `analyzer rules test|lint|eval`: running every
// rule's inline tests, linting the pack, and measuring precision and recall
// over the labelled scenario corpus.
package rulecmd

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/detect"
)

// DefaultPath is the rule pack used when no path is given.
const DefaultPath = "detections"

// Main runs `rules <test|lint|eval> [flags] [paths]` and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: analyzer rules test|lint|eval [flags] [paths...]")
		return 2
	}
	switch args[0] {
	case "test":
		return runTest(args[1:], stdout, stderr)
	case "lint":
		return runLint(args[1:], stdout, stderr)
	case "eval":
		return runEval(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "unknown rules subcommand %q (want test, lint or eval)\n", args[0])
		return 2
	}
}

func load(paths []string, stderr io.Writer) (*detect.Pack, bool) {
	if len(paths) == 0 {
		paths = []string{DefaultPath}
	}
	p, err := detect.LoadPaths(paths)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return nil, false
	}
	return p, true
}

func runTest(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fl.SetOutput(stderr)
	verbose := fl.Bool("v", false, "print every test, not only failures")
	only := fl.String("run", "", "only rules whose id matches this regexp")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	p, ok := load(fl.Args(), stderr)
	if !ok {
		return 1
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "bad -run: %v\n", err)
			return 2
		}
		var keep []*detect.Rule
		for _, r := range p.Rules {
			if re.MatchString(r.ID) {
				keep = append(keep, r)
			}
		}
		p = &detect.Pack{Rules: keep, Lists: p.Lists}
	}
	passed, failed := Test(p, stdout, *verbose)
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// Test runs every rule's inline tests and prints PASS/FAIL per rule (and per
// failing test). It returns the number of passed and failed tests.
func Test(p *detect.Pack, w io.Writer, verbose bool) (passed, failed int) {
	byRule := map[string][]detect.TestResult{}
	for _, r := range detect.RunTests(p) {
		byRule[r.RuleID] = append(byRule[r.RuleID], r)
	}
	for _, r := range p.Rules {
		res := byRule[r.ID]
		bad := 0
		for _, t := range res {
			if t.Passed() {
				passed++
			} else {
				failed++
				bad++
			}
		}
		status := "PASS"
		if bad > 0 {
			status = "FAIL"
		}
		if len(res) == 0 {
			status = "PASS (no tests)"
		}
		fmt.Fprintf(w, "%-4s %s (%d tests)\n", status, r.ID, len(res))
		for _, t := range res {
			if t.Passed() && !verbose {
				continue
			}
			mark := "ok  "
			if !t.Passed() {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "    %s %q: want %d findings, got %d", mark, t.Test, t.Want, t.Got)
			if t.Err != "" {
				fmt.Fprintf(w, " — %s", t.Err)
			}
			if t.EvalErrors > 0 {
				fmt.Fprintf(w, " (%d CEL evaluation errors counted as no match; guard with has())", t.EvalErrors)
			}
			fmt.Fprintln(w)
			if !t.Passed() {
				for _, f := range t.Findings {
					fmt.Fprintf(w, "        finding group=%q events=%v summary=%q\n", f.GroupKey, f.EventIDs, f.Summary)
				}
			}
		}
	}
	return passed, failed
}

var (
	idRe  = regexp.MustCompile(`^mcp-[a-z0-9]+(-[a-z0-9]+)*$`)
	tagRe = regexp.MustCompile(`^(?:owasp-mcp:MCP\d{2}|owasp-llm:LLM\d{2}|owasp-agentic:T\d{1,2}|safe-mcp:T\d{4}|attack:T\d{4}(?:\.\d{3})?|atlas:AML\.T\d{4}(?:\.\d{3})?|cwe:CWE-\d+|category:[a-z0-9-]+)$`)
)

// KnownTagForms documents the accepted tag forms.
const KnownTagForms = "owasp-mcp:MCPnn, owasp-llm:LLMnn, owasp-agentic:Tn, safe-mcp:Tnnnn, attack:Tnnnn[.nnn], atlas:AML.Tnnnn[.nnn], cwe:CWE-n, category:<kebab>"

// Lint checks the pack and returns one message per problem.
func Lint(p *detect.Pack) []string {
	var out []string
	seen := map[string]string{}
	for _, r := range p.Rules {
		add := func(format string, a ...any) {
			out = append(out, fmt.Sprintf("%s (%s): %s", r.File, r.ID, fmt.Sprintf(format, a...)))
		}
		if prev, ok := seen[r.ID]; ok {
			add("duplicate id (also in %s)", prev)
		}
		seen[r.ID] = r.File
		if !idRe.MatchString(r.ID) {
			add("id must be kebab-case with prefix mcp-")
		}
		if len(r.Tags) == 0 {
			add("at least one tag is required")
		}
		for _, t := range r.Tags {
			if !tagRe.MatchString(t) {
				add("unknown tag %q (known forms: %s)", t, KnownTagForms)
			}
		}
		if strings.TrimSpace(r.Runbook) == "" {
			add("runbook is required")
		}
		if len(r.FalsePositives) == 0 {
			add("false_positives is required (say \"none known\" if so)")
		}
		if strings.TrimSpace(r.Summary) == "" {
			add("summary is required")
		}
		pos, neg := 0, 0
		for _, t := range r.Tests {
			if t.Expect > 0 {
				pos++
			} else {
				neg++
			}
		}
		if pos == 0 {
			add("needs at least one positive test (expect > 0)")
		}
		if neg == 0 {
			add("needs at least one negative test (expect: 0)")
		}
		if c := r.MaxCost(); c > detect.StaticCostLimit {
			add("estimated cost %d over limit %d", c, detect.StaticCostLimit)
		}
	}
	sort.Strings(out)
	return out
}

func runLint(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("rules lint", flag.ContinueOnError)
	fl.SetOutput(stderr)
	if err := fl.Parse(args); err != nil {
		return 2
	}
	p, ok := load(fl.Args(), stderr)
	if !ok {
		return 1
	}
	probs := Lint(p)
	for _, s := range probs {
		fmt.Fprintln(stdout, s)
	}
	var maxCost uint64
	var maxID string
	for _, r := range p.Rules {
		if c := r.MaxCost(); c > maxCost {
			maxCost, maxID = c, r.ID
		}
	}
	fmt.Fprintf(stdout, "%d rules, %d problems; highest estimated cost %d (%s), limit %d\n", len(p.Rules), len(probs), maxCost, maxID, detect.StaticCostLimit)
	if len(probs) > 0 {
		return 1
	}
	return 0
}
