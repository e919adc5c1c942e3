package rulecmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// RuleScore is one rule's result over a labelled corpus.
type RuleScore struct {
	RuleID     string
	Severity   string
	Raw        int // hits before suppression (docs/rules.md suppress)
	Findings   int // findings stored: after suppression
	BenignRaw  int // hits on benign cases before suppression
	TruePos    int // findings on a case that expects or allows the rule
	FalsePos   int // other findings
	BenignFP   int // false positives on benign cases
	Expected   int // attack cases that expect the rule
	Caught     int // of those, cases with at least one finding of the rule
	MissedCase []string
}

// Precision is TruePos/Findings (1 when there are no findings).
func (s RuleScore) Precision() float64 {
	if s.Findings == 0 {
		return 1
	}
	return float64(s.TruePos) / float64(s.Findings)
}

// Recall is Caught/Expected (1 when nothing is expected).
func (s RuleScore) Recall() float64 {
	if s.Expected == 0 {
		return 1
	}
	return float64(s.Caught) / float64(s.Expected)
}

// Per10k is findings per 10,000 benign events (0 when there are none).
func per10k(n, benign int) float64 {
	if benign == 0 {
		return 0
	}
	return float64(n) * 10000 / float64(benign)
}

// EvalResult is the outcome of running a pack over a corpus.
type EvalResult struct {
	Events       int
	BenignEvents int // events of benign cases: the base of the per-10k figures
	Scores       []RuleScore
	BenignFP     []event.Finding // false positives on benign cases
}

// Evaluate runs the pack over the corpus in time order and scores every rule.
func Evaluate(ctx context.Context, p *detect.Pack, c scenario.Corpus) (*EvalResult, error) {
	eng, err := detect.New(p, detect.Options{})
	if err != nil {
		return nil, err
	}
	events := c.Plain()
	labels := c.ByEventID()
	scores := map[string]*RuleScore{}
	for _, r := range p.Rules {
		scores[r.ID] = &RuleScore{RuleID: r.ID, Severity: r.Severity}
	}
	allBenign := func(f *event.Finding) bool {
		for _, id := range f.EventIDs {
			if l := labels[id]; l != nil && l.Attack {
				return false
			}
		}
		return true
	}
	// What the respond role would store: the first finding of each
	// suppression window (the corpus is one stream, numbered in order).
	supp := detect.NewSuppressor()
	var findings []event.Finding
	var n int64 // findings so far: their positions, strictly increasing
	const batch = 1000
	for i := 0; i < len(events); i += batch {
		j := min(i+batch, len(events))
		fs, err := eng.Detect(ctx, events[i:j])
		if err != nil {
			return nil, err
		}
		for k := range fs {
			f := &fs[k]
			s := scores[f.RuleID]
			s.Raw++
			if allBenign(f) {
				s.BenignRaw++
			}
			n++
			f.SuppressPos = n
			if supp.Add(f) {
				findings = append(findings, *f)
			}
		}
	}
	caught := map[string]map[*scenario.Label]bool{}
	res := &EvalResult{Events: len(events)}
	for i := range c.Events {
		if l := c.Events[i].Label; l == nil || !l.Attack {
			res.BenignEvents++
		}
	}
	for _, f := range findings {
		s := scores[f.RuleID]
		s.Findings++
		tp, benign := false, true
		for _, id := range f.EventIDs {
			l := labels[id]
			if l == nil {
				continue
			}
			if l.Attack {
				benign = false
			}
			if l.Expects(f.RuleID) {
				tp = true
				if caught[f.RuleID] == nil {
					caught[f.RuleID] = map[*scenario.Label]bool{}
				}
				caught[f.RuleID][l] = true
			}
		}
		switch {
		case tp:
			s.TruePos++
		default:
			s.FalsePos++
			if benign {
				s.BenignFP++
				res.BenignFP = append(res.BenignFP, f)
			}
		}
	}
	for _, l := range c.Cases {
		for _, id := range l.Expect {
			s := scores[id]
			if s == nil {
				continue
			}
			s.Expected++
			if caught[id][l] {
				s.Caught++
			} else {
				s.MissedCase = append(s.MissedCase, l.Case)
			}
		}
	}
	for _, r := range p.Rules {
		res.Scores = append(res.Scores, *scores[r.ID])
	}
	sort.Slice(res.Scores, func(i, j int) bool { return res.Scores[i].RuleID < res.Scores[j].RuleID })
	return res, nil
}

func runEval(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("rules eval", flag.ContinueOnError)
	fl.SetOutput(stderr)
	seed := fl.Int64("seed", 1, "corpus seed")
	n := fl.Int("n", 10000, "benign events in the corpus")
	maxFP := fl.Int("show-fp", 50, "benign false positives to print")
	volume := fl.Int("volume", 10000, "calls of the chatty benign agent (scenario.BenignVolume) added to the corpus")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	p, ok := load(fl.Args(), stderr)
	if !ok {
		return 1
	}
	c := scenario.Eval(*seed, *n)
	if *volume > 0 {
		c = scenario.Merge(c, scenario.BenignVolume(*seed, *volume))
	}
	res, err := Evaluate(context.Background(), p, c)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return Report(res, stdout, *maxFP)
}

// Report prints the scores and returns 1 when the targets are missed: an
// expected attack case not caught, or a high/critical finding on benign
// traffic. raw is the hits before suppression, findings what is stored;
// ben/10k and raw/10k are the benign ones per 10,000 benign events.
func Report(res *EvalResult, w io.Writer, maxFP int) int {
	fmt.Fprintf(w, "%-44s %-8s %7s %8s %5s %5s %8s %8s %8s %9s %6s\n", "rule", "severity", "raw", "findings", "tp", "fp", "benignFP",
		"raw/10k", "ben/10k", "precision", "recall")
	var tot RuleScore
	line := func(id, sev string, s RuleScore) {
		fmt.Fprintf(w, "%-44s %-8s %7d %8d %5d %5d %8d %8.1f %8.1f %9.3f %3d/%-3d\n", id, sev, s.Raw, s.Findings, s.TruePos, s.FalsePos, s.BenignFP,
			per10k(s.BenignRaw, res.BenignEvents), per10k(s.BenignFP, res.BenignEvents), s.Precision(), s.Caught, s.Expected)
	}
	for _, s := range res.Scores {
		line(s.RuleID, s.Severity, s)
		tot.Raw += s.Raw
		tot.BenignRaw += s.BenignRaw
		tot.Findings += s.Findings
		tot.TruePos += s.TruePos
		tot.FalsePos += s.FalsePos
		tot.BenignFP += s.BenignFP
		tot.Expected += s.Expected
		tot.Caught += s.Caught
	}
	line("overall", "", tot)
	fmt.Fprintf(w, "events %d (%d benign); precision %.3f, recall %.3f; benign findings per 10k benign events %.1f (%.1f before suppression)\n",
		res.Events, res.BenignEvents, tot.Precision(), tot.Recall(), per10k(tot.BenignFP, res.BenignEvents), per10k(tot.BenignRaw, res.BenignEvents))
	code := 0
	for _, s := range res.Scores {
		for _, c := range s.MissedCase {
			fmt.Fprintf(w, "MISSED %s: %s\n", s.RuleID, c)
			code = 1
		}
	}
	severe := 0
	for i, f := range res.BenignFP {
		if event.Severity(f.Severity).Rank() >= event.SeverityHigh.Rank() {
			severe++
			code = 1
		}
		if i < maxFP {
			fmt.Fprintf(w, "BENIGN FP %s [%s] group=%q events=%v: %s\n", f.RuleID, f.Severity, f.GroupKey, f.EventIDs, f.Summary)
		}
	}
	if len(res.BenignFP) > maxFP {
		fmt.Fprintf(w, "... %d more benign false positives\n", len(res.BenignFP)-maxFP)
	}
	if severe > 0 {
		fmt.Fprintf(w, "FAIL: %d high/critical findings on benign traffic\n", severe)
	}
	return code
}
