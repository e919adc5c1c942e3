package detect

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/profile/shape"
)

// A new_term rule may set `terms`: a CEL expression giving a list of
// strings per event. Each element is a term of its own, next to the term
// of `fields` (prefixed by it: "server|tool|key:path=string"), so one rule
// learns a set per group — a profile — and reports the first event that
// steps outside it, once, naming every new term (docs/profiles.md).
//
// Such a rule must group by agent_id: its state is then owned by the
// ingest partition (docs/architecture.md); profiles wider than an agent
// are learned in batch from ClickHouse (internal/profile), not here.

// termsExpr is a compiled `terms` expression.
type termsExpr struct {
	src string
	prg cel.Program
	// native is set when the expression is argShape(event.<string field>):
	// evaluated in Go without CEL (the per-event CEL evaluation cost more
	// than the rest of the rule).
	native func(*event.Event) string
}

// argShapeMemo is shape.Of memoized by content, as memoize does for the
// security functions (same bounds), so repeated arguments are described once.
var argShapeMemo = func() func(string) []string {
	var mu sync.Mutex
	cache := make(map[string][]string, memoEntries)
	return func(s string) []string {
		if len(s) < memoMinBytes || len(s) > memoMaxBytes {
			return shape.Of(s)
		}
		mu.Lock()
		v, ok := cache[s]
		mu.Unlock()
		if ok {
			return v
		}
		v = shape.Of(s)
		mu.Lock()
		if len(cache) >= memoEntries {
			clear(cache)
		}
		cache[strings.Clone(s)] = v
		mu.Unlock()
		return v
	}
}()

// profileEnvOptions are the CEL functions of learned profiles.
func profileEnvOptions() []cel.EnvOption {
	argShape := func(s string) ref.Val {
		return types.NewStringList(types.DefaultTypeAdapter, argShapeMemo(s))
	}
	return []cel.EnvOption{
		cel.Function("argShape", cel.Overload("argShape_string", []*types.Type{types.StringType}, types.NewListType(types.StringType),
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.NoSuchOverloadErr()
				}
				return argShape(string(s))
			}))),
	}
}

// compileTerms validates and compiles r.Terms (parseRule).
func compileTerms(env *cel.Env, r *Rule, add func(string, ...any)) {
	if strings.TrimSpace(r.Terms) == "" {
		return
	}
	if r.Kind != KindNewTerm {
		add("terms is only for kind new_term")
		return
	}
	if !slices.Contains(r.By, "agent_id") {
		add("terms needs by to include agent_id (profiles wider than an agent are learned from ClickHouse: docs/profiles.md)")
	}
	a, iss := env.Compile(r.Terms)
	if iss != nil && iss.Err() != nil {
		add("terms: cannot compile %q: %w", oneLine(r.Terms), iss.Err())
		return
	}
	if !a.OutputType().IsExactType(types.NewListType(types.StringType)) {
		add("terms %q must be list(string), is %s", oneLine(r.Terms), a.OutputType())
		return
	}
	if err := checkListRefs(a, r.lists); err != nil {
		add("terms: %w", err)
		return
	}
	est, err := env.EstimateCost(a, costEstimator{lists: r.lists})
	if err != nil || est.Max > StaticCostLimit {
		add("terms %q: cost above the limit %d or not estimable", oneLine(r.Terms), StaticCostLimit)
		return
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if needsRuntimeLimit(a) {
		opts = append(opts, cel.CostLimit(RuntimeCostLimit))
	}
	prg, err := env.Program(a, opts...)
	if err != nil {
		add("terms: cannot plan %q: %w", oneLine(r.Terms), err)
		return
	}
	r.terms = &termsExpr{src: r.Terms, prg: prg, native: nativeArgShape(a.NativeRep().Expr())}
}

// nativeArgShape returns the field accessor when e is argShape(event.<string field>).
func nativeArgShape(e ast.Expr) func(*event.Event) string {
	if e.Kind() != ast.CallKind || e.AsCall().FunctionName() != "argShape" || len(e.AsCall().Args()) != 1 {
		return nil
	}
	arg := e.AsCall().Args()[0]
	if arg.Kind() != ast.SelectKind || arg.AsSelect().IsTestOnly() {
		return nil
	}
	op := arg.AsSelect().Operand()
	if op.Kind() != ast.IdentKind || op.AsIdent() != "event" {
		return nil
	}
	fd, ok := eventFields[arg.AsSelect().FieldName()]
	if !ok || !fd.strOff {
		return nil
	}
	return fd.str
}

// termsCtx recycles evaluation contexts for terms (evaluated serially in
// Detect, outside the condition workers).
var termsCtx = sync.Pool{New: func() any { return new(evalCtx) }}

var stringsType = reflect.TypeOf([]string{})

// termsPool recycles the term buffers of newTermSet.
var termsPool = sync.Pool{New: func() any { return new(shape.Terms) }}

// shapeCache keeps the shape terms (shape.Scan) of recent arguments texts
// by content: an agent's calls repeat their arguments, and scanning
// (validating the JSON, then walking it) was most of the profile rule's
// cost. Direct-mapped like the content cache (content.go), same bounds;
// used by the Engine under its lock (no locking of its own).
type shapeCache struct {
	tab []shapeEntry // set i: tab[2i], tab[2i+1] (two-way, as the content cache)
	mru []uint8      // per set: the entry used last
}

type shapeEntry struct {
	h  uint64
	s  []byte // a private copy of the arguments (its buffer reused by the slot)
	ok bool
	t  shape.Terms
}

func newShapeCache(entries int) *shapeCache {
	sets := max(1, entries/2)
	return &shapeCache{tab: make([]shapeEntry, 2*sets), mru: make([]uint8, sets)}
}

// terms returns the shape terms of arguments, from the cache or scanned
// into it; texts outside memoMinBytes..memoMaxBytes are scanned into
// scratch. The result is valid until the next call.
func (c *shapeCache) terms(arguments string, scratch *shape.Terms) *shape.Terms {
	if len(arguments) < memoMinBytes || len(arguments) > memoMaxBytes {
		shape.Scan(scratch, arguments)
		return scratch
	}
	h := keyHashS(arguments)
	set := h % uint64(len(c.mru))
	pair := c.tab[2*set : 2*set+2 : 2*set+2]
	for i := range pair {
		if e := &pair[i]; e.ok && e.h == h && string(e.s) == arguments {
			c.mru[set] = uint8(i)
			return &e.t
		}
	}
	i := 1 - c.mru[set]
	c.mru[set] = i
	e := &pair[i]
	e.h, e.s, e.ok = h, append(e.s[:0], arguments...), true
	shape.Scan(&e.t, arguments) // reuses the slot's buffers
	return &e.t
}

// eval returns the terms of ev (read-only: they may be shared).
func (x *termsExpr) eval(ev *event.Event, lists any) ([]string, error) {
	if x.native != nil {
		return argShapeMemo(x.native(ev)), nil
	}
	ec := termsCtx.Get().(*evalCtx)
	defer termsCtx.Put(ec)
	ec.reset(ev)
	act := &activation{ec: ec}
	if l, ok := lists.(ref.Val); ok {
		act.lists = l
	}
	out, _, err := x.prg.Eval(act)
	ec.ev = nil
	if err != nil {
		return nil, err
	}
	v, err := out.ConvertToNative(stringsType)
	if err != nil {
		return nil, fmt.Errorf("terms returned %s, not list(string)", out.Type())
	}
	return v.([]string), nil
}

// newTermSet is newTerm for a rule with terms: every term of the event is
// learned; after the learning period one finding names the new ones.
func (e *Engine) newTermSet(rs *ruleState, ev *event.Event) *event.Finding {
	r := rs.rule
	base, ok := e.termBytes(r, ev)
	if !ok {
		return nil
	}
	ts := termsPool.Get().(*shape.Terms)
	defer termsPool.Put(ts)
	if r.terms.native != nil {
		if e.shapes == nil {
			e.shapes = newShapeCache(contentEntries)
		}
		ts = e.shapes.terms(r.terms.native(ev), ts)
	} else {
		ts.Reset()
		extra, err := r.terms.eval(ev, r.listsVal)
		if err != nil {
			rs.evalErrs.Inc()
			e.stats.EvalErrors++
			extra = nil // the fields term alone still counts
		}
		for _, x := range extra {
			ts.Append(x)
		}
	}
	t := ev.Time
	hist := time.Duration(r.History)
	// Fast path without allocations: every term known and refreshed today.
	kb, kh := e.stateKeyBytes(rs, ev)
	if g, ok := rs.nt.getH(kh, kb); ok {
		known := true
		since := freshSince(t, hist)
		tb := base
		for i := -1; i < ts.Len(); i++ {
			if i >= 0 {
				tb = append(append(append(tb[:0], base...), '|'), ts.At(i)...)
			}
			n := g.terms.lookupH(keyHash(tb), tb)
			if n == nil || n.val.Before(since) {
				known = false
				break
			}
			if t.After(n.val) {
				n.val = t
			}
		}
		e.tb = tb // keep the grown scratch buffer
		if known {
			if t.Before(g.first) {
				g.first = t
			}
			return nil
		}
	}
	baseS := string(base)
	extra := make([]string, ts.Len())
	for i := range extra {
		extra[i] = string(ts.At(i))
	}
	sort.Strings(extra)
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
	learned := t.Sub(g.first) >= time.Duration(r.Learning)
	var fresh []string
	see := func(term, label string) {
		last, seen := g.terms.get(term)
		isNew := !seen || t.Sub(last) > hist
		if !seen || t.After(last) {
			if !seen || t.Sub(last) > 24*time.Hour || isNew {
				e.dirty = append(e.dirty, Baseline{RuleID: r.ID, Tenant: ev.Tenant, GroupKey: group, Term: term, FirstSeen: t, LastSeen: t})
			}
			g.terms.put(term, t)
		}
		if isNew && learned {
			fresh = append(fresh, label)
		}
	}
	see(baseS, "new "+strings.Join(r.Fields, "/"))
	toolNew := len(fresh) > 0
	for _, x := range extra {
		see(baseS+"|"+x, x)
	}
	if len(fresh) == 0 {
		return nil
	}
	if toolNew && len(fresh) > 1 {
		// A new tool brings its whole argument shape: name the tool only.
		fresh = fresh[:1]
	}
	evidence := map[string]any{"fields": r.Fields, "term": baseS, "outside": fresh,
		"group_first_seen": g.first.UTC().Format(time.RFC3339), "event": evidenceOf(ev)}
	return e.finding(r, ev, group, []string{ev.EventID}, evidence, map[string]string{"term": strings.Join(fresh, ", ")})
}
