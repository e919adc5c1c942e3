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
	Findings   int // all findings
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

// EvalResult is the outcome of running a pack over a corpus.
type EvalResult struct {
	Events   int
	Scores   []RuleScore
	BenignFP []event.Finding // false positives on benign cases
}

// Evaluate runs the pack over the corpus in time order and scores every rule.
func Evaluate(ctx context.Context, p *detect.Pack, c scenario.Corpus) (*EvalResult, error) {
	eng, err := detect.New(p, detect.Options{})
	if err != nil {
		return nil, err
	}
	events := c.Plain()
	var findings []event.Finding
	const batch = 1000
	for i := 0; i < len(events); i += batch {
		j := min(i+batch, len(events))
		fs, err := eng.Detect(ctx, events[i:j])
		if err != nil {
			return nil, err
		}
		findings = append(findings, fs...)
	}
	labels := c.ByEventID()
	scores := map[string]*RuleScore{}
	for _, r := range p.Rules {
		scores[r.ID] = &RuleScore{RuleID: r.ID, Severity: r.Severity}
	}
	caught := map[string]map[*scenario.Label]bool{}
	res := &EvalResult{Events: len(events)}
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
	if err := fl.Parse(args); err != nil {
		return 2
	}
	p, ok := load(fl.Args(), stderr)
	if !ok {
		return 1
	}
	res, err := Evaluate(context.Background(), p, scenario.Eval(*seed, *n))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return Report(res, stdout, *maxFP)
}

// Report prints the scores and returns 1 when the targets are missed: an
// expected attack case not caught, or a high/critical false positive on
// benign traffic.
func Report(res *EvalResult, w io.Writer, maxFP int) int {
	fmt.Fprintf(w, "%-44s %-8s %8s %5s %5s %8s %9s %6s\n", "rule", "severity", "findings", "tp", "fp", "benignFP", "precision", "recall")
	var tot RuleScore
	for _, s := range res.Scores {
		fmt.Fprintf(w, "%-44s %-8s %8d %5d %5d %8d %9.3f %3d/%-3d\n", s.RuleID, s.Severity, s.Findings, s.TruePos, s.FalsePos, s.BenignFP, s.Precision(), s.Caught, s.Expected)
		tot.Findings += s.Findings
		tot.TruePos += s.TruePos
		tot.FalsePos += s.FalsePos
		tot.BenignFP += s.BenignFP
		tot.Expected += s.Expected
		tot.Caught += s.Caught
	}
	fmt.Fprintf(w, "%-44s %-8s %8d %5d %5d %8d %9.3f %3d/%-3d\n", "overall", "", tot.Findings, tot.TruePos, tot.FalsePos, tot.BenignFP, tot.Precision(), tot.Caught, tot.Expected)
	fmt.Fprintf(w, "events %d; precision %.3f, recall %.3f\n", res.Events, tot.Precision(), tot.Recall())
	code := 0
	for _, s := range res.Scores {
		for _, c := range s.MissedCase {
			fmt.Fprintf(w, "MISSED %s: %s\n", s.RuleID, c)
			code = 1
		}
	}
	for i, f := range res.BenignFP {
		if event.Severity(f.Severity).Rank() >= event.SeverityHigh.Rank() {
			code = 1
		}
		if i < maxFP {
			fmt.Fprintf(w, "BENIGN FP %s [%s] group=%q events=%v: %s\n", f.RuleID, f.Severity, f.GroupKey, f.EventIDs, f.Summary)
		}
	}
	if len(res.BenignFP) > maxFP {
		fmt.Fprintf(w, "... %d more benign false positives\n", len(res.BenignFP)-maxFP)
	}
	return code
}
