// Package detect is mcpwatch's detection engine: it loads the rule pack
// (docs/rules.md), compiles every CEL condition once, and turns canonical events
// into findings with four rule kinds (match, threshold, new_term, sequence).
// State is keyed by the rules' `by` fields, bounded, event-time based and
// kept across hot reloads for unchanged rules.
package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Options configure an Engine.
type Options struct {
	// MaxKeysPerRule bounds the groups a stateful rule keeps (LRU eviction,
	// counted). Default 50000.
	MaxKeysPerRule int
	// MaxTermsPerGroup bounds the terms a new_term group keeps. Default 10000.
	MaxTermsPerGroup int
	// Baselines persists new_term baselines; nil keeps them in memory only.
	Baselines BaselineStore
	// Registerer receives the engine metrics; nil = not registered.
	Registerer prometheus.Registerer
	// Logger; nil = slog.Default().
	Logger *slog.Logger
	// DisableIndex evaluates every rule on every event (for tests and comparison).
	DisableIndex bool
	// Repartition (the analyzer's ingest role) leaves the state of rules
	// whose group is wider than one agent (Rule.Remote) to the detect role:
	// DetectSplit returns their detection inputs instead of applying them.
	// Default false: every rule is applied here (one engine, tests, eval).
	Repartition bool
	// Workers evaluate the conditions of a batch in parallel (state is then
	// updated in event order by one goroutine, so results do not depend on
	// it). Default GOMAXPROCS; 1 = no extra goroutines.
	Workers int
}

func (o *Options) defaults() {
	if o.MaxKeysPerRule <= 0 {
		o.MaxKeysPerRule = 50000
	}
	if o.MaxTermsPerGroup <= 0 {
		o.MaxTermsPerGroup = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Stats are engine counters (also exported as metrics).
type Stats struct {
	Events, Evaluations, EvalErrors, Findings, Evictions, ReloadOK, ReloadFailed, BaselineErrors uint64
}

type metrics struct {
	evalErrors *prometheus.CounterVec
	findings   *prometheus.CounterVec
	evictions  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	rules      prometheus.Gauge
	baseline   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		evalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_detect_eval_errors_total", Help: "CEL evaluation errors (counted as no match), by rule."}, []string{"rule_id"}),
		findings:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_detect_findings_total", Help: "Findings produced, by rule."}, []string{"rule_id"}),
		evictions:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_detect_state_evictions_total", Help: "State groups evicted because a rule reached its key limit."}, []string{"rule_id"}),
		reloads:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_detect_reloads_total", Help: "Rule pack reloads by result (ok, failed)."}, []string{"result"}),
		rules:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "mcpwatch_detect_rules", Help: "Rules loaded."}),
		baseline:   prometheus.NewCounter(prometheus.CounterOpts{Name: "mcpwatch_detect_baseline_errors_total", Help: "Failed new_term baseline loads or saves."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.evalErrors, m.findings, m.evictions, m.reloads, m.rules, m.baseline} {
			_ = reg.Register(c)
		}
	}
	return m
}

// Engine evaluates a rule pack over events. Detect is safe for concurrent
// use (calls are serialised: state is shared).
type Engine struct {
	mu    sync.Mutex
	opts  Options
	env   *cel.Env
	m     *metrics
	stats Stats

	pack     *Pack
	rules    []*ruleState
	ix       *condIndex
	nc       int         // conditions in the index
	condRule []int32     // condition number → its rule in rules
	conds    []condEntry // condition number → what evaluating it needs

	workers []*evaluator
	res     []int8   // per event × condition: 1 match, -1 no match, 0 not a candidate
	cand    []uint64 // per event × cw words: bit r set when a condition of rule r is true
	cw      int      // words of cand per event
	assign  []int32  // per event: the worker evaluating it

	byID   map[string]*ruleState // rules by id (detect role: inputs name their rule)
	inputs []Input               // detection inputs of the current DetectSplit
	groups map[string]dirtyGroup // detect role: groups changed since the last Changelog
	fwd    *lru[time.Time]       // ingest role: new_term (group, term) last forwarded
	// ingest role: new_term group's earliest forwarded event time
	fwdFirst *lru[time.Time]
	// ingest role: distinct threshold (group, value, window) first forwarded
	fwdDistinct *lru[occ]

	dirty  []Baseline // new_term baselines not yet saved
	keys   []stateKeyMemo
	occ    occMemo
	gen    uint64       // event generation for keys
	tb     []byte       // scratch for new_term terms
	facts  *lru[string] // tool definition hash → defdiff facts (diff rules)
	shapes *shapeCache  // argShape terms by arguments (new_term rules with terms)
}

// stateKeyMemo is one event's state key for one `by` list: the rules that
// group by the same fields share it (built and hashed once per event).
type stateKeyMemo struct {
	gen uint64
	b   []byte
	h   uint64
}

// occMemo is one event's occurrenceKey and its hash (keyHashS): the
// threshold and sequence rules that take the event share it (a tool
// definition's key is built, i.e. allocated, once instead of per rule).
type occMemo struct {
	gen uint64
	key string
	h   uint64
}

// occurrence returns occurrenceKey(ev) and its hash, once per event.
func (e *Engine) occurrence(ev *event.Event) (string, uint64) {
	if e.occ.gen != e.gen || e.gen == 0 {
		k := occurrenceKey(ev)
		e.occ = occMemo{gen: e.gen, key: k, h: keyHashS(k)}
	}
	return e.occ.key, e.occ.h
}

// ruleState is a rule plus its kind state.
type ruleState struct {
	rule     *Rule
	lists    ref.Val // rule.listsVal as CEL's `lists`
	base     int     // index of conds[0] in the engine's condition index
	sig      int     // index of the rule's `by` list in Engine.keys
	remote   bool    // stateful, grouped wider than one agent
	thr      *lru[*thrGroup]
	nt       *lru[*ntGroup]
	seq      *lru[*seqGroup]
	evalErrs prometheus.Counter
	finds    prometheus.Counter
	evicts   prometheus.Counter
}

// New creates an engine with pack (which may be nil: no rules).
func New(pack *Pack, opts Options) (*Engine, error) {
	opts.defaults()
	env, err := sharedEnv()
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, env: env, m: newMetrics(opts.Registerer)}
	n := opts.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	for i := 0; i < n; i++ {
		w := &evaluator{}
		w.ec.cc = newContentCache(contentEntries)
		w.ec.ccDef = newContentCache(defEntries)
		w.act.ec = &w.ec
		e.workers = append(e.workers, w)
	}
	if pack == nil {
		pack = &Pack{}
	}
	e.install(pack)
	return e, nil
}

// Pack returns the rule pack in use.
func (e *Engine) Pack() *Pack {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pack
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Replace installs a new pack. State of rules with the same id and version
// is kept; other state is dropped.
func (e *Engine) Replace(p *Pack) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.install(p)
}

func (e *Engine) install(p *Pack) {
	old := map[string]*ruleState{}
	for _, rs := range e.rules {
		old[rs.rule.ID+"@"+rs.rule.Version] = rs
	}
	var keys []indexKey
	rules := make([]*ruleState, 0, len(p.Rules))
	sigs := map[string]int{}
	for _, r := range p.Rules {
		rs := old[r.ID+"@"+r.Version]
		if rs != nil {
			rs.rule = r
		} else {
			rs = e.newRuleState(r)
		}
		rs.lists, _ = r.listsVal.(ref.Val)
		rs.base = len(keys)
		keys = append(keys, r.index...)
		sig := strings.Join(r.By, "\x00")
		if _, ok := sigs[sig]; !ok {
			sigs[sig] = len(sigs)
		}
		rs.sig = sigs[sig]
		rules = append(rules, rs)
	}
	e.pack, e.rules = p, rules
	e.byID = make(map[string]*ruleState, len(rules))
	for _, rs := range rules {
		rs.remote = rs.rule.Remote()
		e.byID[rs.rule.ID] = rs
	}
	e.keys = make([]stateKeyMemo, len(sigs))
	e.gen = 0
	e.ix = newCondIndex(keys, e.opts.DisableIndex)
	e.nc = len(keys)
	e.cw = (len(rules) + 63) / 64
	e.condRule = make([]int32, 0, len(keys))
	e.conds = make([]condEntry, 0, len(keys))
	same := map[string]int32{} // condition meaning → its first condition
	for r, rs := range rules {
		for i := range rs.rule.index { // one key per condition
			c := rs.rule.conds[i]
			ce := condEntry{c: c, nat: c.nat, rs: rs, r: int32(r), canon: -1}
			if !e.opts.DisableIndex && rs.rule.index[i].field != "" && c.natIx != nil {
				ce.nat = c.natIx
			}
			k := condMeaning(c, rs.rule.lists)
			if first, ok := same[k]; ok {
				ce.canon = first
				e.conds[first].canon = first
			} else {
				same[k] = int32(len(e.conds))
			}
			e.condRule = append(e.condRule, int32(r))
			e.conds = append(e.conds, ce)
		}
	}
	e.m.rules.Set(float64(len(rules)))
}

func (e *Engine) newRuleState(r *Rule) *ruleState {
	rs := &ruleState{
		rule:     r,
		evalErrs: e.m.evalErrors.WithLabelValues(r.ID),
		finds:    e.m.findings.WithLabelValues(r.ID),
		evicts:   e.m.evictions.WithLabelValues(r.ID),
	}
	onEvict := func() { rs.evicts.Inc(); e.stats.Evictions++ }
	switch r.Kind {
	case KindThreshold:
		rs.thr = newLRU[*thrGroup](e.opts.MaxKeysPerRule, onEvict)
	case KindNewTerm:
		rs.nt = newLRU[*ntGroup](e.opts.MaxKeysPerRule, onEvict)
	case KindSequence:
		rs.seq = newLRU[*seqGroup](e.opts.MaxKeysPerRule, onEvict)
	}
	return rs
}

// Detect evaluates every event (in order) against the pack and returns the
// findings. It implements analyzer.Detector.
func (e *Engine) Detect(ctx context.Context, events []event.Event) ([]event.Finding, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event.Finding
	// Evaluate conditions in chunks (bounded memory), in parallel; then
	// apply the rule kinds' state in event order.
	const chunk = 1024
	for start := 0; start < len(events); start += chunk {
		if ctx.Err() != nil {
			return out, fmt.Errorf("cannot finish detection: %w", ctx.Err())
		}
		evs := events[start:min(start+chunk, len(events))]
		e.evaluate(evs)
		for i := range evs {
			out = e.detectOne(&evs[i], e.res[i*e.nc:(i+1)*e.nc], e.cand[i*e.cw:(i+1)*e.cw], out)
		}
	}
	e.flushBaselines(ctx)
	return out, nil
}

// condEntry is one condition of the engine's index.
type condEntry struct {
	c *compiled
	// nat is the native tree the worker runs: c.natIx when the event
	// comes through the condition's index bucket, else c.nat.
	nat *nbool
	rs  *ruleState
	r   int32 // rs's number in Engine.rules
	// canon is the first condition of the pack with the same meaning
	// (same source, same values of the lists it reads), or -1 when no
	// other condition has it: two rules stating the same condition (a
	// match rule and a sequence's step) evaluate it once per event.
	canon int32
}

// condMeaning identifies what a condition computes: its expression tree
// (cel-go's unparsed source: the layout of the source does not count) and the
// values of the lists it reads (all of the rule's lists when it uses
// `lists` other than as lists.name).
func condMeaning(c *compiled, lists map[string][]string) string {
	var names []string
	idents, selects := 0, 0
	walkExpr(c.ast.NativeRep().Expr(), func(x ast.Expr) bool {
		switch x.Kind() {
		case ast.IdentKind:
			if x.AsIdent() == "lists" {
				idents++
			}
		case ast.SelectKind:
			if op := x.AsSelect().Operand(); op.Kind() == ast.IdentKind && op.AsIdent() == "lists" {
				selects++
				names = append(names, x.AsSelect().FieldName())
			}
		}
		return true
	})
	if idents != selects {
		names = names[:0]
		for n := range lists {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	src, err := cel.AstToString(c.ast)
	if err != nil { // not expected of a checked AST: share nothing
		return fmt.Sprintf("\x02%p", c)
	}
	var b strings.Builder
	b.WriteString(src)
	for _, n := range names {
		vals, ok := lists[n]
		fmt.Fprintf(&b, "\x00%q:%t", n, ok)
		for _, v := range vals {
			fmt.Fprintf(&b, "\x01%q", v)
		}
	}
	return b.String()
}

// evaluator evaluates conditions for events; one per worker goroutine.
type evaluator struct {
	ec          evalCtx
	act         activation
	mk          marks
	exc         []int8 // per rule, this event: its exceptions' verdict
	shared      []int8 // per condition with a canon, this event: its result (0 not yet, 1 true, -1 false, -2 false by an error)
	evals, errs uint64
}

// evaluate fills e.res for evs, using the workers in parallel.
func (e *Engine) evaluate(evs []event.Event) {
	need := len(evs) * e.nc
	if cap(e.res) < need {
		e.res = make([]int8, need)
	}
	e.res = e.res[:need]
	if need := len(evs) * e.cw; cap(e.cand) < need {
		e.cand = make([]uint64, need)
	} else {
		e.cand = e.cand[:need]
	}
	workers := min(len(e.workers), max(1, len(evs)/32))
	if workers <= 1 {
		w := e.workers[0]
		for i := range evs {
			w.evalEvent(e, &evs[i], e.res[i*e.nc:(i+1)*e.nc], e.cand[i*e.cw:(i+1)*e.cw])
		}
	} else {
		// Events go to workers by server and tool, so that the texts that
		// repeat (a tool's definition, its usual arguments and results)
		// meet the same worker's content cache; a worker takes at most
		// its share plus a quarter, the rest overflows to the next one,
		// so the load stays balanced. Results do not depend on it.
		per := (len(evs) + workers - 1) / workers
		limit := per + per/4
		if cap(e.assign) < len(evs) {
			e.assign = make([]int32, len(evs))
		}
		e.assign = e.assign[:len(evs)]
		counts := make([]int, workers)
		for i := range evs {
			k := int(toolHash(&evs[i]) % uint64(workers))
			for counts[k] >= limit {
				k = (k + 1) % workers
			}
			counts[k]++
			e.assign[i] = int32(k)
		}
		var wg sync.WaitGroup
		for k := 0; k < workers; k++ {
			w := e.workers[k]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range evs {
					if e.assign[i] == int32(k) {
						w.evalEvent(e, &evs[i], e.res[i*e.nc:(i+1)*e.nc], e.cand[i*e.cw:(i+1)*e.cw])
					}
				}
			}()
		}
		wg.Wait()
	}
	for _, w := range e.workers {
		e.stats.Evaluations += w.evals
		e.stats.EvalErrors += w.errs
		w.evals, w.errs = 0, 0
	}
}

// toolHash spreads events over workers by server and tool name (FNV-1a).
func toolHash(ev *event.Event) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range [2]string{ev.ServerName, ev.ToolName} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	return h
}

// evalEvent evaluates every candidate condition of every rule for ev
// (condition true and no exception true → 1; not a candidate → 0) and
// sets the cand bits of the rules with a true condition.
func (w *evaluator) evalEvent(e *Engine, ev *event.Event, res []int8, cand []uint64) {
	w.ec.reset(ev)
	w.mk.prepare(e.ix, ev)
	clear(res)
	clear(cand)
	if len(w.exc) != len(e.rules) {
		w.exc = make([]int8, len(e.rules))
	} else {
		clear(w.exc)
	}
	if len(w.shared) != len(e.conds) {
		w.shared = make([]int8, len(e.conds))
	} else {
		clear(w.shared)
	}
	for _, k := range w.mk.list {
		ce := &e.conds[k]
		r, rs := ce.r, ce.rs
		w.act.lists = rs.lists
		w.evals++
		var ok bool
		var err error
		if ce.canon < 0 {
			ok, err = w.eval(ce)
		} else if v := w.shared[ce.canon]; v != 0 {
			ok = v > 0
			if v == -2 {
				err = errShared
			}
		} else {
			ok, err = w.eval(ce)
			switch {
			case ok:
				w.shared[ce.canon] = 1
			case err != nil:
				w.shared[ce.canon] = -2
			default:
				w.shared[ce.canon] = -1
			}
		}
		if err != nil {
			w.errs++
			rs.evalErrs.Inc()
		}
		exc := &w.exc[r] // the rule's exceptions: 0 unknown, 1 one is true, -1 none
		if ok && *exc == 0 {
			*exc = -1
			for _, x := range rs.rule.exceptions {
				w.evals++
				hit, err := x.eval(&w.act)
				if err != nil {
					w.errs++
					rs.evalErrs.Inc()
					continue
				}
				if hit {
					*exc = 1
					break
				}
			}
		}
		if ok && *exc < 0 {
			res[k] = 1
			cand[r>>6] |= 1 << (r & 63)
		} else {
			res[k] = -1
		}
	}
}

// eval is ce.c.eval(&w.act): the native tree first, CEL when it cannot decide.
func (w *evaluator) eval(ce *condEntry) (bool, error) {
	if ce.nat != nil {
		switch ce.nat.eval(&w.ec) {
		case triTrue:
			return true, nil
		case triFalse:
			return false, nil
		}
	}
	return ce.c.evalCEL(&w.act)
}

// errShared stands for the error of a condition evaluated for another
// rule with the same meaning (counted again for this rule).
var errShared = errors.New("condition failed (evaluated for another rule)")

// matcher reads a rule's precomputed condition results for one event.
type matcher struct {
	res  []int8 // this event's results, indexed by condition number
	base int    // index of the rule's first condition in res
}

func (m *matcher) cond(i int) bool { return m.res[m.base+i] > 0 }

// detectOne applies the state of the rules with a true condition (cand: a
// bit per rule, in pack order) to ev. A rule whose conditions are all
// false has nothing to do: match, threshold and new_term rules act on
// their condition only, a sequence on the steps that match, and addInput
// (repartition.go) forwards only true conditions.
func (e *Engine) detectOne(ev *event.Event, res []int8, cand []uint64, out []event.Finding) []event.Finding {
	e.stats.Events++
	if ev.HasTag(event.TagDuplicate) {
		// A second observation by the same observer of a call already
		// seen (fastmcp's span around the SDK's): stored, not detected.
		return out
	}
	e.gen++ // invalidates the state keys of the previous event
	for wi, word := range cand {
		for ; word != 0; word &= word - 1 {
			rs := e.rules[wi<<6|bits.TrailingZeros64(word)]
			r := rs.rule
			m := matcher{res: res, base: rs.base}
			if rs.remote && e.opts.Repartition {
				// Its group is wider than the agent: the detect role that owns
				// the group applies the state (repartition.go).
				e.addInput(rs, ev, &m)
				continue
			}
			var f *event.Finding
			switch r.Kind {
			case KindMatch:
				if m.cond(0) {
					group := groupKey(r.By, ev)
					f = e.finding(r, ev, group, []string{ev.EventID}, map[string]any{"event": evidenceOf(ev)}, nil)
					if ev.CallID != "" && ev.CallID != ev.EventID {
						// One call is one call: the client, server and gateway
						// observations of a call give one finding id, which the
						// respond role counts once.
						f.FindingID = findingID(r, ev.Tenant, group, []string{"call:" + ev.CallID})
					}
					if r.suppress != nil {
						f.SuppressKey, f.SuppressWindow = r.suppressKey(ev), r.suppress.Window
					}
				}
			default:
				f = e.applyState(rs, ev, &m)
			}
			if f != nil {
				rs.finds.Inc()
				e.stats.Findings++
				out = append(out, *f)
			}
		}
	}
	return out
}

// applyState runs a stateful rule (threshold, new_term, sequence) on an
// event whose conditions m holds: the ingest role for rules grouped by
// agent, the detect role for the inputs it owns.
func (e *Engine) applyState(rs *ruleState, ev *event.Event, m *matcher) *event.Finding {
	switch rs.rule.Kind {
	case KindThreshold:
		if m.cond(0) {
			return e.threshold(rs, ev)
		}
	case KindNewTerm:
		if m.cond(0) {
			return e.newTerm(rs, ev)
		}
	case KindSequence:
		return e.sequence(rs, ev, m)
	}
	return nil
}

// groupKey joins the by-field values with "|".
func groupKey(by []string, ev *event.Event) string {
	if len(by) == 0 {
		return ""
	}
	var b strings.Builder
	for i, f := range by {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(eventFields[f].str(ev))
	}
	return b.String()
}

// stateKey isolates tenants even when a rule's `by` omits tenant.
func stateKey(r *Rule, ev *event.Event) string {
	return ev.Tenant + "\x00" + groupKey(r.By, ev)
}

// stateKeyBytes is stateKey and its hash (keyHash), built once per event
// for all the rules with the same `by` list, in a reused buffer so state
// lookups do not allocate (valid for the current event; do not modify).
func (e *Engine) stateKeyBytes(rs *ruleState, ev *event.Event) ([]byte, uint64) {
	km := &e.keys[rs.sig]
	if km.gen == e.gen && e.gen != 0 {
		return km.b, km.h
	}
	b := append(km.b[:0], ev.Tenant...)
	b = append(b, 0)
	for i, str := range rs.rule.byStr {
		if i > 0 {
			b = append(b, '|')
		}
		b = append(b, str(ev)...)
	}
	km.b, km.h, km.gen = b, keyHash(b), e.gen
	return km.b, km.h
}

// eventEvidence is the event part of a finding's evidence. Its fields are
// in the order of their JSON names, so it encodes exactly as a map with
// these keys (encoding/json sorts map keys) without building one: ~20
// fewer allocations per finding.
type eventEvidence struct {
	AgentID    string `json:"agent_id,omitempty"`
	Arguments  string `json:"arguments,omitempty"`
	EventID    string `json:"event_id"`
	Method     string `json:"method,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
	ToolName   string `json:"tool_name,omitempty"`
	TS         string `json:"ts"`
}

func evidenceOf(ev *event.Event) *eventEvidence {
	cut := func(v string) string {
		if len(v) > 512 {
			return v[:512] + "…"
		}
		return v
	}
	return &eventEvidence{
		AgentID:    cut(ev.AgentID),
		Arguments:  cut(ev.Arguments),
		EventID:    ev.EventID,
		Method:     cut(ev.Method),
		Outcome:    cut(string(ev.Outcome)),
		ServerName: cut(ev.ServerName),
		SessionKey: cut(ev.SessionKey),
		ToolName:   cut(ev.ToolName),
		TS:         ev.Time.UTC().Format(time.RFC3339Nano),
	}
}

// finding builds a finding from the last event of a detection.
func (e *Engine) finding(r *Rule, ev *event.Event, group string, ids []string, evidence map[string]any, extra map[string]string) *event.Finding {
	evidence["rule_kind"] = r.Kind
	ev_, _ := json.Marshal(evidence)
	if extra == nil {
		extra = map[string]string{}
	}
	extra["rule_id"], extra["title"] = r.ID, r.Title
	summary := renderSummary(r.summary, ev, extra)
	if summary == "" {
		summary = r.Title
	}
	tags := append([]string(nil), r.Tags...)
	return &event.Finding{
		FindingID:   findingID(r, ev.Tenant, group, ids),
		Tenant:      ev.Tenant,
		Time:        ev.Time,
		RuleID:      r.ID,
		RuleVersion: r.Version,
		RuleTitle:   r.Title,
		RuleKind:    r.Kind,
		Severity:    event.Severity(r.Severity),
		Tags:        tags,
		GroupKey:    group,
		Summary:     summary,
		AgentID:     ev.AgentID,
		UserID:      ev.UserID,
		SessionKey:  ev.SessionKey,
		ServerName:  ev.ServerName,
		ToolName:    ev.ToolName,
		EventIDs:    ids,
		Evidence:    string(ev_),
	}
}

// findingID is deterministic: rule, version, tenant, group and the ids of
// what completed it.
func findingID(r *Rule, tenant, group string, ids []string) string {
	h := sha256.New()
	for _, s := range []string{r.ID, r.Version, tenant, group} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// --- threshold ---

// thrGroup is one group's window: the live events are times[off:] and
// ids[off:]. Dropping the oldest advances off; an append into a full
// slice first moves the live part to the front, so a group that stays
// bounded never allocates again.
type thrGroup struct {
	times []time.Time
	ids   []string // event ids: the finding's evidence
	// keys say which events are one occurrence (occurrenceKey): the
	// observations of one call, or a replayed input, count once.
	keys []string
	// hs[i] is keyHashS(keys[i]): "counted already?" compares hashes
	// first (a call-rate window holds 100 keys of the same length).
	hs     []uint64
	off    int
	spent  []string     // keys of the window that fired last (they do not count again)
	spentH []uint64     // their hashes (hasKey recomputes them when spent was replaced, e.g. by Restore)
	dw     *distinctWin // a distinct threshold's state (distinct.go); the fields above stay empty
	// Initial storage of times, ids and keys: most groups (e.g. one per
	// distinct call for a loop rule) never hold more than a few events.
	tbuf [2]time.Time
	ibuf [2]string
	kbuf [2]string
	hbuf [2]uint64
}

func newThrGroup() *thrGroup {
	g := &thrGroup{}
	g.times, g.ids, g.keys, g.hs = g.tbuf[:0], g.ibuf[:0], g.kbuf[:0], g.hbuf[:0]
	return g
}

// hasKey reports whether key (with hash h = keyHashS(key)) is one of the
// window's keys or of the spent ones.
func (g *thrGroup) hasKey(h uint64, key string) bool {
	for i, x := range g.hs[g.off:] {
		if x == h && g.keys[g.off+i] == key {
			return true
		}
	}
	if len(g.spentH) != len(g.spent) {
		g.spentH = g.spentH[:0]
		for _, k := range g.spent {
			g.spentH = append(g.spentH, keyHashS(k))
		}
	}
	for i, x := range g.spentH {
		if x == h && g.spent[i] == key {
			return true
		}
	}
	return false
}

// occurrenceKey is what thresholds and sequences count once: the call a
// message observes (its client, server and gateway observations share a
// call_id), the tool a tools/list answer of one call defines, else the
// event.
func occurrenceKey(ev *event.Event) string {
	switch {
	case ev.CallID == "":
		return ev.EventID
	case ev.Kind == event.KindMessage:
		return ev.CallID
	case ev.Kind == event.KindToolDefinition:
		return ev.CallID + "\x00" + ev.ToolName
	}
	return ev.EventID
}

// dropOldest forgets the n oldest events of the window.
func (g *thrGroup) dropOldest(n int) {
	clear(g.ids[g.off : g.off+n]) // release the ids' memory
	clear(g.keys[g.off : g.off+n])
	g.off += n
	if g.off == len(g.times) {
		g.times, g.ids, g.keys, g.hs, g.off = g.times[:0], g.ids[:0], g.keys[:0], g.hs[:0], 0
	}
}

func (g *thrGroup) add(t time.Time, id, key string) { g.addH(t, id, key, keyHashS(key)) }

// addH is add with the key's hash (keyHashS) computed by the caller.
func (g *thrGroup) addH(t time.Time, id, key string, h uint64) {
	if g.off > 0 && len(g.times) == cap(g.times) {
		n := copy(g.times, g.times[g.off:])
		copy(g.ids, g.ids[g.off:])
		copy(g.keys, g.keys[g.off:])
		copy(g.hs, g.hs[g.off:])
		clear(g.ids[n:])
		clear(g.keys[n:])
		g.times, g.ids, g.keys, g.hs, g.off = g.times[:n], g.ids[:n], g.keys[:n], g.hs[:n], 0
	}
	g.times = append(g.times, t)
	g.ids = append(g.ids, id)
	g.keys = append(g.keys, key)
	g.hs = append(g.hs, h)
}

const maxEvidenceIDs = 100

func (e *Engine) threshold(rs *ruleState, ev *event.Event) *event.Finding {
	r := rs.rule
	if r.Distinct != "" {
		return e.thresholdDistinct(rs, ev)
	}
	kb, kh := e.stateKeyBytes(rs, ev)
	g, ok := rs.thr.getH(kh, kb)
	if !ok {
		g = newThrGroup()
		rs.thr.putH(kh, string(kb), g)
	}
	key, okh := e.occurrence(ev)
	if ok && g.hasKey(okh, key) {
		// Counted already: another observation of the same call, or a
		// replayed input (detect role after a retry).
		return nil
	}
	t := ev.Time
	cutoff := t.Add(-time.Duration(r.Window))
	// Drop events that left the window.
	n := 0
	for g.off+n < len(g.times) && !g.times[g.off+n].After(cutoff) {
		n++
	}
	if n > 0 {
		g.dropOldest(n)
	}
	g.addH(t, ev.EventID, key, okh)
	// Bound the group: counting needs the last Count events.
	if live := len(g.times) - g.off; live > r.Count {
		g.dropOldest(live - r.Count)
	}
	have := len(g.times) - g.off
	if have < r.Count {
		return nil
	}
	evidence := map[string]any{"count": have, "window": time.Duration(r.Window).String(), "event": evidenceOf(ev)}
	extra := map[string]string{"count": strconv.Itoa(have), "window": time.Duration(r.Window).String()}
	ids := g.ids[g.off:]
	if len(ids) > maxEvidenceIDs {
		ids = ids[len(ids)-maxEvidenceIDs:]
	}
	ids = append([]string(nil), ids...)
	f := e.finding(r, ev, groupKey(r.By, ev), ids, evidence, extra)
	// Start a new window after firing; the fired window's keys stay known,
	// so a replayed input or a late observation of it cannot count again.
	g.spent = append(g.spent[:0], g.keys[g.off:]...)
	g.spentH = append(g.spentH[:0], g.hs[g.off:]...)
	clear(g.ids)
	clear(g.keys)
	g.times, g.ids, g.keys, g.hs, g.off = g.times[:0], g.ids[:0], g.keys[:0], g.hs[:0], 0
	return f
}

// --- new_term ---

type ntGroup struct {
	first time.Time
	terms *lru[time.Time]
}

// termBytes is the new_term term of ev: the rule's fields joined with "|"
// (a diff rule appends the definition's version and facts, defchange.go),
// built in the engine's scratch buffer (valid until the next call); false
// when a field is empty.
func (e *Engine) termBytes(r *Rule, ev *event.Event) ([]byte, bool) {
	b := e.tb[:0]
	for i, str := range r.fieldsStr {
		v := str(ev)
		if v == "" {
			return nil, false
		}
		if i > 0 {
			b = append(b, '|')
		}
		b = append(b, v...)
	}
	if r.Diff != "" {
		b = e.defTermSuffix(b, ev)
	}
	e.tb = b
	return b, true
}

// freshSince is the earliest last-seen time of a term that is known at t
// and needs no baseline refresh: within the rule's history and the last
// day. !v.Before(freshSince(t, hist)) is t.Sub(v) <= hist && t.Sub(v) <=
// 24h (one comparison instead of two subtractions, each of which checks
// for overflow with an Add and an Equal).
func freshSince(t time.Time, hist time.Duration) time.Time {
	return t.Add(-min(hist, 24*time.Hour))
}

func (e *Engine) newTerm(rs *ruleState, ev *event.Event) *event.Finding {
	r := rs.rule
	if r.terms != nil {
		return e.newTermSet(rs, ev)
	}
	// Fast path without allocations: a known term of a known group, seen
	// within the history and the last day (no finding, no baseline write).
	tb, ok := e.termBytes(r, ev)
	if !ok {
		return nil
	}
	t := ev.Time
	kb, kh := e.stateKeyBytes(rs, ev)
	if g, ok := rs.nt.getH(kh, kb); ok {
		if n := g.terms.lookupH(keyHash(tb), tb); n != nil && !n.val.Before(freshSince(t, time.Duration(r.History))) {
			if t.Before(g.first) {
				g.first = t
			}
			if t.After(n.val) {
				n.val = t // already the most recent entry
			}
			return nil
		}
	}
	term := string(tb)
	group := groupKey(r.By, ev)
	key := ev.Tenant + "\x00" + group
	g, ok := rs.nt.get(key)
	if !ok {
		g = &ntGroup{first: t, terms: newLRU[time.Time](e.opts.MaxTermsPerGroup, nil)}
		rs.nt.put(key, g)
		e.dirty = append(e.dirty, Baseline{RuleID: r.ID, Tenant: ev.Tenant, GroupKey: group, Term: "", FirstSeen: t, LastSeen: t})
	}
	if t.Before(g.first) {
		g.first = t
	}
	last, seen := g.terms.get(term)
	isNew := !seen || t.Sub(last) > time.Duration(r.History)
	if !seen || t.After(last) {
		if !seen || t.Sub(last) > 24*time.Hour || isNew {
			e.dirty = append(e.dirty, Baseline{RuleID: r.ID, Tenant: ev.Tenant, GroupKey: group, Term: term, FirstSeen: t, LastSeen: t})
		}
		g.terms.put(term, t)
	}
	if !isNew || t.Sub(g.first) < time.Duration(r.Learning) {
		return nil
	}
	if r.Diff != "" {
		return e.defChange(rs, g, term, ev)
	}
	evidence := map[string]any{"fields": r.Fields, "term": term, "group_first_seen": g.first.UTC().Format(time.RFC3339), "event": evidenceOf(ev)}
	if seen {
		evidence["last_seen"] = last.UTC().Format(time.RFC3339)
	}
	return e.finding(r, ev, group, []string{ev.EventID}, evidence, map[string]string{"term": term})
}

// --- sequence ---

type partial struct {
	start time.Time
	ids   []string
	keys  []string // occurrenceKey of each step's event (ids' parallel)
	steps []map[string]any
	kept  []string // values of Rule.keep[step] from the step's event
}

// bound reports whether ev satisfies step's same/differ against the
// partial of the previous present step (its kept values: Same then Differ).
// Same needs equal values; differ fails only on equal non-empty values.
func bound(step *Step, base *partial, ev *event.Event) bool {
	if len(step.Same)+len(step.Differ) == 0 {
		return true
	}
	for i, f := range step.Same {
		if eventFields[f].str(ev) != base.kept[i] {
			return false
		}
	}
	for i, f := range step.Differ {
		// An empty value is unknown: it cannot show the two are the same.
		if v := eventFields[f].str(ev); v != "" && v == base.kept[len(step.Same)+i] {
			return false
		}
	}
	return true
}

type seqGroup struct {
	prog     []*partial
	absentAt time.Time // last match of a leading absent step
	// The occurrence keys of the last completion and when: the same calls
	// completing again (their other observing side) within the window
	// are not another finding.
	fired   []string
	firedAt time.Time
}

func (e *Engine) sequence(rs *ruleState, ev *event.Event, m *matcher) *event.Finding {
	r := rs.rule
	steps := r.Steps
	within := time.Duration(r.Within)
	t := ev.Time
	var (
		kb      []byte
		kh      uint64
		g       *seqGroup
		have    bool
		fetched bool
	)
	var f *event.Finding
	var key string
	for i := len(steps) - 1; i >= 0; i-- {
		if !m.cond(i) {
			continue
		}
		// Only events that match a step touch the state (and need
		// their occurrence key: a tool definition's is built).
		if !fetched {
			fetched = true
			key, _ = e.occurrence(ev)
			kb, kh = e.stateKeyBytes(rs, ev)
			g, have = rs.seq.getH(kh, kb)
		}
		if g == nil {
			if !steps[i].Absent && i > 0 && !(i == 1 && steps[0].Absent) {
				continue // a later step with nothing in progress
			}
			g = &seqGroup{prog: make([]*partial, len(steps))}
		}
		if steps[i].Absent {
			if i == 0 {
				g.absentAt = t
			} else {
				g.prog[i-1] = nil
			}
			continue
		}
		prev := i - 1
		if prev >= 0 && steps[prev].Absent {
			prev--
		}
		var base *partial
		if prev < 0 {
			if i == 1 && !g.absentAt.IsZero() && !t.Before(g.absentAt) && t.Sub(g.absentAt) <= within {
				continue // the required absence was violated
			}
			base = &partial{start: t}
		} else {
			base = g.prog[prev]
			if base == nil || t.Sub(base.start) > within || t.Before(base.start) || !bound(&steps[i], base, ev) ||
				slices.Contains(base.keys, key) {
				continue
			}
		}
		np := &partial{
			start: base.start,
			ids:   append(append([]string(nil), base.ids...), ev.EventID),
			keys:  append(append([]string(nil), base.keys...), key),
			steps: append(append([]map[string]any(nil), base.steps...), map[string]any{"step": steps[i].Name, "event": evidenceOf(ev)}),
		}
		if keep := r.keep[i]; len(keep) > 0 {
			np.kept = make([]string, len(keep))
			for j, fd := range keep {
				np.kept[j] = fd.str(ev)
			}
		}
		if i == len(steps)-1 {
			if slices.Equal(np.keys, g.fired) && t.Sub(g.firedAt) <= within {
				// The calls that completed it last, seen from another side.
				for j := range g.prog {
					g.prog[j] = nil
				}
				continue
			}
			g.fired, g.firedAt = np.keys, t
			if f == nil {
				ids := np.ids
				evidence := map[string]any{"steps": np.steps, "within": within.String()}
				names := make([]string, 0, len(np.steps))
				for _, s := range np.steps {
					names = append(names, s["step"].(string))
				}
				f = e.finding(r, ev, groupKey(r.By, ev), ids, evidence, map[string]string{"steps": strings.Join(names, " → ")})
			}
			for j := range g.prog {
				g.prog[j] = nil
			}
			continue
		}
		g.prog[i] = np
	}
	if g != nil {
		// Drop expired partials; forget empty groups.
		empty := true
		for j, p := range g.prog {
			if p != nil && t.Sub(p.start) > within {
				g.prog[j] = nil
			}
			if g.prog[j] != nil {
				empty = false
			}
		}
		if !g.absentAt.IsZero() && t.Sub(g.absentAt) <= within {
			empty = false
		}
		if g.fired != nil && t.Sub(g.firedAt) <= within {
			empty = false
		}
		switch {
		case empty && have:
			rs.seq.delH(kh, kb)
		case !empty && !have:
			rs.seq.putH(kh, string(kb), g)
		}
	}
	return f
}

// listsValue converts named lists into the CEL value of `lists`.
func listsValue(l map[string][]string) any {
	if l == nil {
		l = map[string][]string{}
	}
	return types.DefaultTypeAdapter.NativeToValue(l)
}

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// sharedEnv builds the CEL environment once per process.
func sharedEnv() (*cel.Env, error) {
	envOnce.Do(func() { envVal, envErr = newEnv() })
	return envVal, envErr
}
