package scenario

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// RuleScore is the evaluation of one rule over a labelled corpus.
type RuleScore struct {
	RuleID   string
	Severity event.Severity
	TP, FP   int // findings attributed to a case that expects/allows the rule, or not
	BenignFP int // FP findings whose events are all benign
	// BenignHigh are the BenignFP findings of severity high or critical, by
	// the finding's own severity (a rule may grade its findings).
	BenignHigh    int
	Expected      int // (case, rule) pairs the corpus expects
	Caught        int // of those, how many produced a finding
	Missed        []string
	FalsePositive []string // case names of FP findings (first few)
	FPExample     string   // server/tool and arguments of one FP finding's last event
}

// Precision is TP/(TP+FP), 1 when the rule produced nothing.
func (s RuleScore) Precision() float64 {
	if s.TP+s.FP == 0 {
		return 1
	}
	return float64(s.TP) / float64(s.TP+s.FP)
}

// Recall is Caught/Expected, 1 when nothing was expected.
func (s RuleScore) Recall() float64 {
	if s.Expected == 0 {
		return 1
	}
	return float64(s.Caught) / float64(s.Expected)
}

// Evaluation scores findings against a corpus' labels.
type Evaluation struct {
	Rules  []RuleScore
	Events int
	Cases  int
}

// Evaluate attributes each finding to the cases of its events: a finding is
// a true positive when one of its events belongs to a case whose label
// expects or allows the rule, else a false positive (benign when all its
// events are benign). A (case, rule) expectation is caught when a finding
// of that rule has an event of that case. severity maps rule id → severity.
func Evaluate(c Corpus, findings []event.Finding, severity map[string]event.Severity) Evaluation {
	labels := c.ByEventID()
	byID := make(map[string]*event.Event, len(c.Events))
	for i := range c.Events {
		byID[c.Events[i].Event.EventID] = &c.Events[i].Event
	}
	scores := map[string]*RuleScore{}
	get := func(id string) *RuleScore {
		s, ok := scores[id]
		if !ok {
			s = &RuleScore{RuleID: id, Severity: severity[id]}
			scores[id] = s
		}
		return s
	}
	for id := range severity {
		get(id)
	}
	caught := map[string]bool{} // rule + "\x00" + case
	for _, f := range findings {
		s := get(f.RuleID)
		tp, benign := false, true
		var anyCase string
		for _, id := range f.EventIDs {
			l := labels[id]
			if l == nil {
				continue
			}
			if anyCase == "" || l.Attack {
				anyCase = l.Case
			}
			if l.Attack {
				benign = false
			}
			if l.Expects(f.RuleID) {
				tp = true
				caught[f.RuleID+"\x00"+l.Case] = true
			}
		}
		switch {
		case tp:
			s.TP++
		default:
			s.FP++
			if benign {
				s.BenignFP++
				if f.Severity.Rank() >= event.SeverityHigh.Rank() {
					s.BenignHigh++
				}
			}
			if n := len(f.EventIDs); s.FPExample == "" && n > 0 && byID[f.EventIDs[n-1]] != nil {
				e := byID[f.EventIDs[n-1]]
				a := e.Arguments
				if len(a) > 120 {
					a = a[:120] + "…"
				}
				s.FPExample = e.ServerName + "/" + e.ToolName + " " + a
			}
			if len(s.FalsePositive) < 5 {
				s.FalsePositive = append(s.FalsePositive, anyCase)
			}
		}
	}
	for _, l := range c.Cases {
		for _, id := range l.Expect {
			s := get(id)
			s.Expected++
			if caught[id+"\x00"+l.Case] {
				s.Caught++
			} else {
				s.Missed = append(s.Missed, l.Case)
			}
		}
	}
	ev := Evaluation{Events: len(c.Events), Cases: len(c.Cases)}
	for _, s := range scores {
		ev.Rules = append(ev.Rules, *s)
	}
	sort.Slice(ev.Rules, func(i, j int) bool { return ev.Rules[i].RuleID < ev.Rules[j].RuleID })
	return ev
}

// Totals sums the per-rule figures.
func (e Evaluation) Totals() RuleScore {
	var t RuleScore
	t.RuleID = "overall"
	for _, s := range e.Rules {
		t.TP += s.TP
		t.FP += s.FP
		t.BenignFP += s.BenignFP
		t.BenignHigh += s.BenignHigh
		t.Expected += s.Expected
		t.Caught += s.Caught
	}
	return t
}

// Print writes a per-rule table and the overall figures.
func (e Evaluation) Print(w io.Writer) {
	fmt.Fprintf(w, "%d events, %d cases\n", e.Events, e.Cases)
	fmt.Fprintf(w, "%-42s %-8s %5s %5s %6s %8s %9s %7s\n", "rule", "severity", "TP", "FP", "benFP", "caught", "precision", "recall")
	for _, s := range append(e.Rules, e.Totals()) {
		fmt.Fprintf(w, "%-42s %-8s %5d %5d %6d %4d/%-3d %9.3f %7.3f\n", s.RuleID, s.Severity, s.TP, s.FP, s.BenignFP, s.Caught, s.Expected, s.Precision(), s.Recall())
	}
	for _, s := range e.Rules {
		if len(s.Missed) > 0 {
			fmt.Fprintf(w, "MISSED %s: %s\n", s.RuleID, strings.Join(s.Missed, ", "))
		}
		if s.FP > 0 {
			fmt.Fprintf(w, "FP %s (%d, %d benign): e.g. %s; %s\n", s.RuleID, s.FP, s.BenignFP, strings.Join(s.FalsePositive, ", "), s.FPExample)
		}
	}
}
