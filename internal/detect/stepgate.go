package detect

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"
)

// The later steps of a repartitioned sequence are often common events
// (mcp-tool-changed-then-called: every tools/call) while its first step is
// rare. The detect role can only use a later step inside `within` after a
// first step of the same group: sequence() drops it otherwise ("a later
// step with nothing in progress", or t outside [start, start+within]).
// So the ingest role forwards a later-step-only input of such a rule only
// when it knows a first step of the group whose window holds the input's
// time (a superset of what can matter), and every ingest instance learns
// every first step from a small topic (mcpwatch.detect.steps.v1) that it
// reads whole:
//
//   - the instance that sees a first step produces its notice, and has it
//     acknowledged, before it produces the step's detection input;
//   - before an instance produces a batch's inputs it reads the steps
//     topic up to its end offset as listed at that moment (a barrier), then
//     filters.
//
// A first step whose input the detect role has when an input is produced
// was noticed before that, so the barrier sees it: every later step that
// the detect role would have ordered after the first step is still
// forwarded. Only later steps produced concurrently with the first step's
// input (whose order at the detect role was a race before too) may be
// dropped rather than arriving first and being ignored. A crash before the
// commit replays the batch, and a new instance reads the whole topic
// before its first filter. Docs: docs/decisions.md, "Repartition: later
// sequence steps forwarded only within a first step's window".

// StepNotice says that the first step of a gated sequence held for a group
// at a time (one record of the steps topic).
type StepNotice struct {
	Rule   string    `json:"rule"`
	Tenant string    `json:"tenant"`
	Group  string    `json:"group"`
	Time   time.Time `json:"t"`
}

// Encode is the notice's record value.
func (n StepNotice) Encode() ([]byte, error) { return json.Marshal(n) }

// DecodeStepNotice is Encode's inverse.
func DecodeStepNotice(b []byte) (StepNotice, error) {
	var n StepNotice
	if err := json.Unmarshal(b, &n); err != nil {
		return n, err
	}
	if n.Rule == "" || n.Time.IsZero() {
		return n, errors.New("not a step notice: no rule or time")
	}
	return n, nil
}

// Gated reports whether the ingest role gates the rule's later steps: a
// repartitioned sequence with no absent step (an absent step's input
// changes the state on its own).
func (r *Rule) Gated() bool {
	if r.Kind != KindSequence || !r.Remote() || len(r.Steps) < 2 {
		return false
	}
	for _, s := range r.Steps {
		if s.Absent {
			return false
		}
	}
	return true
}

// StepNotices are the notices of ins: the inputs in which a gated rule's
// first step held.
func StepNotices(pack *Pack, ins []Input) []StepNotice {
	var out []StepNotice
	for i := range ins {
		in := &ins[i]
		if in.Conds&1 == 0 {
			continue
		}
		if r := pack.Rule(in.RuleID); r != nil && r.Gated() {
			out = append(out, StepNotice{Rule: in.RuleID, Tenant: in.Tenant, Group: in.Group, Time: in.Event.Time})
		}
	}
	return out
}

// maxGateWindows bounds the disjoint windows kept per group; beyond it the
// two oldest merge into one covering both (more is forwarded, never less).
const maxGateWindows = 32

// maxGateGroups bounds the groups the gate holds (~200 bytes each). Beyond
// it the gate raises its horizon to the median end of the groups' newest
// windows and forgets the windows that ended before it; inputs older than
// the horizon are always forwarded, so what it forgot cannot be needed.
// The horizon only moves when memory requires it: a backlog read out of
// time order (partitions one after the other) keeps its gating.
const maxGateGroups = 1 << 16

type gateWindow struct{ from, to time.Time }

// StepGate is the ingest role's knowledge of the gated rules' first steps,
// from every ingest instance. Safe for concurrent use.
type StepGate struct {
	mu      sync.Mutex
	windows map[string][]gateWindow // rule NUL tenant NUL group → sorted, disjoint
	horizon time.Time               // monotone; inputs before it are forwarded
}

// NewStepGate returns an empty gate.
func NewStepGate() *StepGate {
	return &StepGate{windows: map[string][]gateWindow{}}
}

func gateKey(rule, tenant, group string) string {
	return rule + "\x00" + tenant + "\x00" + group
}

// Learn records a first step: later steps of its group within `within`
// after n.Time are forwarded.
func (g *StepGate) Learn(pack *Pack, n StepNotice) {
	r := pack.Rule(n.Rule)
	if r == nil || !r.Gated() {
		return
	}
	w := gateWindow{n.Time, n.Time.Add(time.Duration(r.Within))}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.to.Before(g.horizon) {
		return // every input it could cover is forwarded anyway
	}
	k := gateKey(n.Rule, n.Tenant, n.Group)
	ws := g.windows[k]
	i, _ := slices.BinarySearchFunc(ws, w, func(a, b gateWindow) int { return a.from.Compare(b.from) })
	ws = slices.Insert(ws, i, w)
	// Merge overlapping neighbours.
	out := ws[:0]
	for _, x := range ws {
		if l := len(out); l > 0 && !x.from.After(out[l-1].to) {
			if x.to.After(out[l-1].to) {
				out[l-1].to = x.to
			}
			continue
		}
		out = append(out, x)
	}
	for len(out) > maxGateWindows {
		out[1].from = out[0].from
		out = out[1:]
	}
	g.windows[k] = out
	if len(g.windows) > maxGateGroups {
		g.shrink()
	}
}

// shrink raises the horizon to the median end of the groups' newest
// windows and forgets every window that ended before it.
func (g *StepGate) shrink() {
	ends := make([]time.Time, 0, len(g.windows))
	for _, ws := range g.windows {
		ends = append(ends, ws[len(ws)-1].to)
	}
	slices.SortFunc(ends, time.Time.Compare)
	// Past the median: at least half go, even when many ends are equal.
	if h := ends[len(ends)/2].Add(time.Nanosecond); h.After(g.horizon) {
		g.horizon = h
	}
	for k, ws := range g.windows {
		i := 0
		for i < len(ws) && ws[i].to.Before(g.horizon) {
			i++
		}
		if i == len(ws) {
			delete(g.windows, k)
		} else if i > 0 {
			g.windows[k] = ws[i:]
		}
	}
}

// Filter drops, in place, the inputs the detect role cannot use: a gated
// rule's input in which no first step held, whose time is in no window of
// its group's known first steps. Call it after the barrier (every notice
// produced before it learned) and after learning the batch's own notices.
// It returns the inputs kept and the number dropped.
func (g *StepGate) Filter(pack *Pack, ins []Input) ([]Input, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := ins[:0]
	dropped := 0
	var last *Rule
	for i := range ins {
		in := ins[i]
		if in.Conds&1 == 0 {
			if last == nil || last.ID != in.RuleID {
				last = pack.Rule(in.RuleID)
			}
			if last != nil && last.Gated() && !g.covered(in) {
				dropped++
				continue
			}
		}
		out = append(out, in)
	}
	clear(ins[len(out):])
	return out, dropped
}

// covered reports whether in must be forwarded: its time is before the
// horizon or inside a known window of its group.
func (g *StepGate) covered(in Input) bool {
	t := in.Event.Time
	if t.Before(g.horizon) {
		return true
	}
	for _, w := range g.windows[gateKey(in.RuleID, in.Tenant, in.Group)] {
		if !t.Before(w.from) && !t.After(w.to) {
			return true
		}
	}
	return false
}
