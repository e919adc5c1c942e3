// Package scenario generates realistic, labelled MCP traffic for tests, the
// rule-pack evaluation and the demo. Everything is deterministic for a seed:
// the same seed yields the same events, ids and timestamps.
//
// The stable API (used by the demo in internal/demo and by detections/):
//
//	Benign(seed, n)  ≥ n benign events: coding assistants, data-analysis
//	                 agents and support bots over BenignSpan (10 days) from
//	                 BaseTime, in two tenants.
//	Attacks(seed)    attack sessions for every rule of detections/, with
//	                 variants (encodings, case, Unicode, other tools and
//	                 paths), each embedded in an otherwise normal session,
//	                 placed from AttackStart (after the rules' learning
//	                 periods). Alone they lack the benign baseline; use Eval.
//	NearMisses(seed) benign sessions a surface pattern would flag (a benign
//	                 release under a version bump, ".." inside the workspace).
//	Eval(seed, n)    Benign(seed, n) merged with Attacks(seed) and
//	                 NearMisses(seed), time-ordered.
//	Demo(seed)       DemoSpan (6 h) of benign traffic from BaseTime plus the
//	                 demo's attacks (poisoned tool description, rug pull,
//	                 secret read then exfiltration, SSRF, path traversal,
//	                 session hijack) in its last hours. Rebase with Shift.
//	ToTraces(events) the events as OTLP traces using the OTel MCP and GenAI
//	                 semantic-convention attribute names; event.FromTraces
//	                 gives the same canonical events back.
//	ToLogs(events)   the same as mcp.audit / mcp.tools.snapshot log records
//	                 (gateways that log rather than trace).
//	Evaluate(c, findings, severities)
//	                 precision/recall per rule against the labels (used by
//	                 detections' tests; usable by `analyzer rules eval`).
//
// Every event carries its Label: the case it belongs to and which rule ids
// must (Expect) or may (Allow) fire on it; benign cases expect nothing.
package scenario

import (
	"sort"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// BaseTime is the start of every generated corpus (rebase with Shift).
var BaseTime = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

const (
	// BenignSpan is how long the benign corpus of Benign lasts.
	BenignSpan = 10 * 24 * time.Hour
	// AttackOffset is where, after BaseTime, Attacks places its cases: after
	// every learning period of the rule pack (the longest is 7 days).
	AttackOffset = 8 * 24 * time.Hour
	// DemoSpan is how long the demo's traffic lasts.
	DemoSpan = 6 * time.Hour
)

// Label describes one generated case: a benign session, or an attack.
type Label struct {
	Case   string   // e.g. "benign/coding/17", "attack/mcp-path-traversal/double-encoded"
	Attack bool     // false for benign traffic
	Expect []string // rule ids that must fire on this case
	Allow  []string // rule ids that may also fire (overlapping detections)
}

// Expects reports whether rule id is expected or allowed on this case.
func (l *Label) Expects(id string) bool {
	for _, x := range l.Expect {
		if x == id {
			return true
		}
	}
	for _, x := range l.Allow {
		if x == id {
			return true
		}
	}
	return false
}

// Labeled is one generated event with the label of its case.
type Labeled struct {
	Event event.Event
	Label *Label
}

// Corpus is a time-ordered list of labelled events and the cases they form.
type Corpus struct {
	Events []Labeled
	Cases  []*Label
}

// Plain returns the events without labels.
func (c Corpus) Plain() []event.Event {
	out := make([]event.Event, len(c.Events))
	for i := range c.Events {
		out[i] = c.Events[i].Event
	}
	return out
}

// ByEventID indexes the corpus' labels by event id.
func (c Corpus) ByEventID() map[string]*Label {
	m := make(map[string]*Label, len(c.Events))
	for i := range c.Events {
		m[c.Events[i].Event.EventID] = c.Events[i].Label
	}
	return m
}

// Shift returns a copy of the corpus with every timestamp moved by d
// (token expiries included), e.g. to replay the demo ending now.
func (c Corpus) Shift(d time.Duration) Corpus {
	out := Corpus{Events: make([]Labeled, len(c.Events)), Cases: c.Cases}
	for i, l := range c.Events {
		e := l.Event
		e.Time = e.Time.Add(d)
		if !e.TokenExpires.IsZero() {
			e.TokenExpires = e.TokenExpires.Add(d)
		}
		out.Events[i] = Labeled{Event: e, Label: l.Label}
	}
	return out
}

// Merge combines corpora and orders the events by time (stable).
func Merge(cs ...Corpus) Corpus {
	var out Corpus
	for _, c := range cs {
		out.Events = append(out.Events, c.Events...)
		out.Cases = append(out.Cases, c.Cases...)
	}
	sort.SliceStable(out.Events, func(i, j int) bool {
		return out.Events[i].Event.Time.Before(out.Events[j].Event.Time)
	})
	return out
}

// Eval is the evaluation corpus: Benign(seed, n), Attacks(seed) and
// NearMisses(seed), merged.
func Eval(seed int64, n int) Corpus {
	return Merge(Benign(seed, n), Attacks(seed), NearMisses(seed))
}
