package detect

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Remote reports whether the rule keeps state grouped by more than one
// agent: a threshold, new_term or sequence whose `by` does not name
// agent_id. Events reach the analyzer partitioned by tenant and agent, so
// such a group (a session id reused by another agent, a server's tool
// baseline across agents, a tenant-wide count) is split between instances
// unless its inputs are repartitioned by the group key (the detect role).
func (r *Rule) Remote() bool {
	return r.Kind != KindMatch && !slices.Contains(r.By, "agent_id")
}

// Input is one detection input of a remote rule: an event that satisfied
// at least one of the rule's conditions, with the results of all of them,
// for the detect role that owns the group (Kafka topic mcpwatch.detect.v1,
// key = Key).
type Input struct {
	RuleID, RuleVersion string
	Tenant, Group       string // the group: the rule's `by` values joined
	Conds               uint64 // bit i: condition (sequence: step) i held
	// Event is the event (not copied: the caller's batch must outlive the
	// input; encode it with Trimmed).
	Event *event.Event
}

// Trimmed is the input's event as it travels: only what the detect role
// uses — the fields the rule reads (group, term, distinct, sequence
// bindings, summary), what a finding and its evidence carry, and long
// texts cut to what evidence shows unless the rule reads them. Every other
// field is zeroed: an input is decoded once per rule it feeds, so its size
// is most of the repartition's cost.
func (in *Input) Trimmed(pack *Pack) event.Event {
	ev := *in.Event
	var r *Rule
	if pack != nil {
		r = pack.Rule(in.RuleID)
	}
	if r == nil {
		ev.AttrKeys, ev.AttrValues = nil, nil
		return ev
	}
	v := reflect.ValueOf(&ev).Elem()
	for _, i := range r.inputTrim().zero {
		v.Field(i).SetZero()
	}
	for _, i := range r.inputTrim().cut {
		if f := v.Field(i); f.Len() > maxInputText {
			f.SetString(f.String()[:maxInputText])
		}
	}
	return ev
}

// inputKeeps are the fields every input keeps: the finding's and its
// evidence's (Engine.finding, evidenceOf) and the engine's own.
var inputKeeps = []string{"event_id", "tenant", "kind", "ts", "method", "call_id", "agent_id", "user_id",
	"session_key", "server_name", "tool_name", "arguments", "outcome"}

// trim is a rule's plan for Trimmed: the Event fields (indices) to zero and
// the long texts to cut.
type trim struct{ zero, cut []int }

func (r *Rule) inputTrim() *trim {
	r.trimOnce.Do(func() {
		reads := r.readsFields()
		rt := reflect.TypeOf(event.Event{})
		t := &trim{}
		for i := 0; i < rt.NumField(); i++ {
			name := rt.Field(i).Tag.Get("ch")
			read := slices.Contains(reads, name)
			switch {
			case name == "arguments" && !read:
				t.cut = append(t.cut, i)
			case read || slices.Contains(inputKeeps, name):
			default:
				t.zero = append(t.zero, i)
			}
		}
		r.trim = t
	})
	return r.trim
}

// Key is the record key: tenant/rule/group, the incident key of its
// findings (the detect and findings topics are partitioned by it).
func (in *Input) Key() []byte { return GroupKey(in.Tenant, in.RuleID, in.Group) }

// GroupKey is tenant/rule/group.
func GroupKey(tenant, rule, group string) []byte {
	b := make([]byte, 0, len(tenant)+len(rule)+len(group)+2)
	b = append(b, tenant...)
	b = append(b, '/')
	b = append(b, rule...)
	b = append(b, '/')
	return append(b, group...)
}

// maxInputText caps the arguments an input carries unless its rule reads
// them: evidence shows 512 bytes and a mark that there was more
// (evidenceOf), which one byte more keeps.
const maxInputText = 513

// addInput records ev as an input of rs when a condition of the rule held.
func (e *Engine) addInput(rs *ruleState, ev *event.Event, m *matcher) {
	var bits uint64
	for i := range rs.rule.conds {
		if m.cond(i) {
			bits |= 1 << uint(i)
		}
	}
	if bits == 0 {
		return
	}
	// The group as bytes (the state key, built once per event for the
	// rules with the same `by`): a string only for an input forwarded.
	kb, _ := e.stateKeyBytes(rs, ev)
	group := kb[len(ev.Tenant)+1:]
	if rs.rule.Kind == KindNewTerm && !e.mustForwardTerm(rs, ev, group) {
		return
	}
	if rs.rule.Kind == KindThreshold && rs.rule.Distinct != "" && !e.mustForwardDistinct(rs, ev, group) {
		return
	}
	e.inputs = append(e.inputs, Input{RuleID: rs.rule.ID, RuleVersion: rs.rule.Version, Tenant: ev.Tenant, Group: string(group), Conds: bits, Event: ev})
}

// termRefresh is how long the ingest role leaves a new_term (group, term)
// it has forwarded unrepeated. The detect role's state for a known term only
// moves its last-seen time forward, which matters once it is `history`
// (days) old, so skipping repeats for an hour changes no finding; a term it
// has not forwarded, or an hour later, is forwarded. An event earlier than
// the term's last forward (another agent's, fetched late) can only move
// the group's first-seen time back, so it is forwarded only when it is
// earlier than every event of the group this engine forwarded (the detect
// role's first-seen is at most that). This keeps the busiest inputs
// (every event names a server) off the topic.
const termRefresh = time.Hour

// mustForwardTerm reports whether a new_term input must go to the detect
// role, and remembers it when it must.
func (e *Engine) mustForwardTerm(rs *ruleState, ev *event.Event, group []byte) bool {
	if rs.rule.terms != nil {
		return true // its extra terms (terms.go) may be new when the fields' term is not
	}
	tb, ok := e.termBytes(rs.rule, ev)
	if !ok {
		return false // an empty field: newTerm ignores the event
	}
	if e.fwd == nil {
		e.fwd = newLRU[time.Time](4*e.opts.MaxKeysPerRule, nil)
		e.fwdFirst = newLRU[time.Time](4*e.opts.MaxKeysPerRule, nil)
	}
	k := make([]byte, 0, len(rs.rule.ID)+len(ev.Tenant)+len(group)+len(tb)+3)
	k = append(append(append(append(append(append(append(k, rs.rule.ID...), 0), ev.Tenant...), 0), group...), 0), tb...)
	h := keyHash(k)
	gk := k[:len(k)-len(tb)] // rule, tenant, group
	gh := keyHash(gk)
	first, firstOK := e.fwdFirst.getH(gh, gk)
	last, ok := e.fwd.getH(h, k)
	switch {
	case ok && !ev.Time.Before(last) && ev.Time.Sub(last) < termRefresh:
		return false // a repeat within the hour
	case ok && ev.Time.Before(last) && firstOK && !ev.Time.Before(first):
		return false // earlier, but not before the group's first forward
	}
	if !ok || ev.Time.After(last) {
		e.fwd.putH(h, string(k), ev.Time)
	}
	if !firstOK || ev.Time.Before(first) {
		e.fwdFirst.putH(gh, string(gk), ev.Time)
	}
	return true
}

// readsFields are the event fields the rule's state and summary read
// (computed once per rule).
func (r *Rule) readsFields() []string {
	r.readsOnce.Do(func() { r.reads = r.computeReads() })
	return r.reads
}

func (r *Rule) computeReads() []string {
	out := append(append([]string(nil), r.By...), r.Fields...)
	if r.Distinct != "" {
		out = append(out, r.Distinct)
	}
	for _, s := range r.Steps {
		out = append(append(out, s.Same...), s.Differ...)
	}
	for _, p := range r.summary {
		if p.field != "" {
			out = append(out, p.field)
		}
	}
	if r.Diff != "" {
		out = append(out, defReads...)
	}
	return out
}

// SetRepartition switches Options.Repartition (the analyzer turns it on
// for the ingest role's engine when the detect role runs).
func (e *Engine) SetRepartition(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opts.Repartition = on
}

// DetectSplit is Detect for the ingest role (Options.Repartition): it
// returns the findings of the rules applied here and the inputs of the
// remote rules, in event order.
func (e *Engine) DetectSplit(ctx context.Context, events []event.Event) ([]event.Finding, []Input, error) {
	e.mu.Lock()
	e.inputs = e.inputs[:0]
	e.mu.Unlock()
	fs, err := e.Detect(ctx, events)
	e.mu.Lock()
	defer e.mu.Unlock()
	ins := e.inputs
	// Handed over (the caller's batch keeps them); the next batch likely
	// has about as many.
	e.inputs = make([]Input, 0, cap(ins))
	return fs, ins, err
}

// dirtyGroup is a group the detect role changed: its changelog record is
// written with the batch's findings.
type dirtyGroup struct {
	rs       *ruleState
	tenant   string
	group    string
	stateKey string
}

// Apply is the detect role's half: it applies inputs (in order) to the
// state of their rules and returns the findings. Inputs of rules the pack
// no longer has are skipped; a rule whose version changed applies the
// inputs of the older version (the conditions were evaluated by it).
// Replayed inputs are recognised by event id and change nothing.
func (e *Engine) Apply(ins []Input) []event.Finding {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.groups == nil {
		e.groups = map[string]dirtyGroup{}
	}
	var out []event.Finding
	var res [64]int8
	for i := range ins {
		in := &ins[i]
		rs := e.byID[in.RuleID]
		if rs == nil || rs.rule.Kind == KindMatch {
			continue
		}
		n := len(rs.rule.conds)
		for c := 0; c < n; c++ {
			res[c] = -1
			if in.Conds&(1<<uint(c)) != 0 {
				res[c] = 1
			}
		}
		m := matcher{res: res[:n], base: 0}
		e.gen++
		ev := in.Event
		f := e.applyState(rs, ev, &m)
		kb, _ := e.stateKeyBytes(rs, ev)
		e.groups[string(in.Key())] = dirtyGroup{rs: rs, tenant: in.Tenant, group: in.Group, stateKey: string(kb)}
		e.stats.Events++
		if f != nil {
			rs.finds.Inc()
			e.stats.Findings++
			out = append(out, *f)
		}
	}
	e.dirty = e.dirty[:0] // the detect role's new_term state is its changelog
	return out
}

// splitStateKey turns a state key (tenant NUL group) into tenant and group.
func splitStateKey(k string) (tenant, group string) {
	tenant, group, _ = strings.Cut(k, "\x00")
	return tenant, group
}
