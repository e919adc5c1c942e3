package detect

import (
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Native pre-evaluation of conditions.
//
// Most rule conditions are conjunctions and disjunctions of cheap tests on
// event fields (equality, list membership, contains, regexp on a field) and
// security functions applied to a field. Interpreting them with CEL costs
// about a microsecond per condition even when the first conjunct is false,
// and the same function runs on the same field for several rules. A
// condition is therefore also translated, as far as possible, into a Go
// tree evaluated with three-valued logic (true, false, unknown):
// sub-expressions it does not support (double(), "k" in event.args,
// comprehensions over other ranges than those of rangeNode, ...) are
// unknown. When the tree decides the condition (a false conjunct, a true
// disjunct, or everything supported) that is the result — the supported
// tests cannot fail, so CEL would give the same answer (its && and ||
// absorb errors and unknowns the same way). Otherwise CEL evaluates the
// condition as before. Security functions on a plain event field are
// computed at most once per event (evalCtx.memo) and their results kept
// across events by content (content.go).

type tri int8

const (
	triUnknown tri = 0
	triTrue    tri = 1
	triFalse   tri = -1
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// nbool is a boolean node; total means it never returns unknown.
type nbool struct {
	eval  func(ec *evalCtx) tri
	cost  int
	total bool
}

// nstr is a string node; field ≥ 0 when it is a plain event field (memo key).
type nstr struct {
	get   func(ec *evalCtx) string
	cost  int
	field int
	// app appends the value to dst (set for concatenations, to avoid
	// allocating); nil = use get.
	app func(ec *evalCtx, dst []byte) []byte
	// lit is the value of a string literal (isLit); fd is the field of a
	// plain string field read by offset (nil otherwise): leaves of the
	// common shapes (field == "x", field in set, field.contains("x"))
	// then run as one closure.
	lit   string
	isLit bool
	fd    *fieldDef
	// fields are the plain string fields the value may be, unchanged
	// (same memory): a field itself, either branch of a ternary, the
	// target of a replace().
	fields []*fieldDef
}

func (n *nstr) appendTo(ec *evalCtx, dst []byte) []byte {
	if n.app != nil {
		return n.app(ec, dst)
	}
	return append(dst, n.get(ec)...)
}

// nint is an integer node.
type nint struct {
	get func(ec *evalCtx) int64
}

var unknownNode = &nbool{eval: func(*evalCtx) tri { return triUnknown }, cost: 1 << 20}

// buildNative translates a condition; nil when nothing of it can be decided natively.
func buildNative(e ast.Expr, lists map[string][]string) *nbool {
	return buildNativeSkip(e, lists, 0)
}

// buildNativeSkip is buildNative for the events known to satisfy the
// top-level conjunct with expression id skip (an event of the condition's
// index bucket satisfies its index conjunct, index.go): that conjunct is
// left out (true).
func buildNativeSkip(e ast.Expr, lists map[string][]string, skip int64) *nbool {
	b := &nativeBuilder{lists: lists, skip: skip}
	var n *nbool
	if skip != 0 && e.ID() == skip {
		n = trueNode
	} else {
		n = b.boolNode(e)
	}
	if n == unknownNode {
		return nil
	}
	return n
}

var trueNode = &nbool{eval: func(*evalCtx) tri { return triTrue }, cost: 0, total: true}

type nativeBuilder struct {
	lists map[string][]string
	vars  []string // loop variables of the comprehensions being built, outermost first
	skip  int64    // id of a top-level conjunct known to be true (0: none)
	depth int      // nesting of && from the top (skip applies at the top level only)
}

// maxLoopDepth bounds the nesting of comprehensions decided natively.
const maxLoopDepth = 4

// loopNode decides `R.exists(x, p)` and `R.all(x, p)` (the macros'
// comprehension shape) by evaluating p natively on each element of R, for
// ranges with string elements (rangeNode): exists is true if p is true for
// one element, false if false for all; unknown otherwise (also when the
// range cannot be computed natively for this event). Nested loops see the
// outer variables (ec.iters by depth).
func (b *nativeBuilder) loopNode(c ast.ComprehensionExpr, init bool) *nbool {
	if c.HasIterVar2() || len(b.vars) >= maxLoopDepth {
		return nil
	}
	step := c.LoopStep()
	if step.Kind() != ast.CallKind || len(step.AsCall().Args()) != 2 {
		return nil
	}
	op := step.AsCall().FunctionName()
	acc := step.AsCall().Args()[0]
	if acc.Kind() != ast.IdentKind || acc.AsIdent() != c.AccuVar() || !(op == "_||_" && !init || op == "_&&_" && init) {
		return nil
	}
	depth := len(b.vars)
	rng, rcost := b.rangeNode(c.IterRange(), depth)
	if rng == nil {
		return nil
	}
	b.vars = append(b.vars, c.IterVar())
	p := b.boolNode(step.AsCall().Args()[1])
	b.vars = b.vars[:depth]
	if p == unknownNode {
		return nil
	}
	stop := triTrue // exists stops on a true predicate, all on a false one
	if init {
		stop = triFalse
	}
	return &nbool{eval: func(ec *evalCtx) tri {
		items, ok := rng(ec)
		if !ok {
			return triUnknown
		}
		u := false
		for _, s := range items {
			ec.iters[depth] = s
			switch p.eval(ec) {
			case stop:
				return stop
			case triUnknown:
				u = true
			}
		}
		if u {
			return triUnknown
		}
		return -stop
	}, cost: rcost + 20*p.cost}
}

// rangeNode returns the elements of a comprehension range with string
// elements, as CEL would see them (order aside: the loops decided
// natively do not depend on it), or ok=false when this event's range is
// not decidable natively; nil when the range expression is not supported.
// Supported: leafStrings(event.args), leafStrings(event.args[x]) and
// event.args (its keys, when it is an object) with x a loop variable,
// urls(s), injectionMarkers(s), named lists and list literals.
func (b *nativeBuilder) rangeNode(e ast.Expr, depth int) (func(ec *evalCtx) ([]string, bool), int) {
	if vals, ok := b.strList(e); ok {
		return func(*evalCtx) ([]string, bool) { return vals, true }, 1 + len(vals)
	}
	if isEventArgs(e) { // the keys of event.args
		return func(ec *evalCtx) ([]string, bool) {
			m, ok := ec.argsVal().Value().(map[string]any)
			if !ok {
				return nil, false
			}
			buf := ec.loopBuf[depth][:0]
			for k := range m {
				buf = append(buf, k)
			}
			ec.loopBuf[depth] = buf
			return buf, true
		}, 60
	}
	if e.Kind() != ast.CallKind || e.AsCall().IsMemberFunction() || len(e.AsCall().Args()) != 1 {
		return nil, 0
	}
	arg := e.AsCall().Args()[0]
	switch e.AsCall().FunctionName() {
	case "leafStrings":
		if isEventArgs(arg) {
			return func(ec *evalCtx) ([]string, bool) { return ec.argLeaves(), true }, 50
		}
		// leafStrings(event.args[x]), x a loop variable.
		if arg.Kind() != ast.CallKind || arg.AsCall().FunctionName() != "_[_]" || len(arg.AsCall().Args()) != 2 || !isEventArgs(arg.AsCall().Args()[0]) {
			return nil, 0
		}
		k := b.strNode(arg.AsCall().Args()[1])
		if k == nil {
			return nil, 0
		}
		return func(ec *evalCtx) ([]string, bool) {
			m, ok := ec.argsVal().Value().(map[string]any)
			if !ok {
				return nil, false
			}
			v, ok := m[k.get(ec)]
			if !ok {
				return nil, false // CEL: no such key (an error)
			}
			ec.loopBuf[depth] = leafStringsOf(v, ec.loopBuf[depth][:0])
			return ec.loopBuf[depth], true
		}, 60
	case "urls":
		a := b.strNode(arg)
		if a == nil {
			return nil, 0
		}
		return func(ec *evalCtx) ([]string, bool) {
			s := a.get(ec)
			if !strings.Contains(s, "://") && !strings.Contains(s, `:\/\/`) {
				return nil, true // no URL (the common case: no regexp)
			}
			if a.fd != nil { // a field: its URLs are kept with its content entry
				if e := ec.entryFor(a.fd.idx, s); e != nil {
					if !e.urlsOK {
						e.urls, e.urlsOK = secfn.URLs(s), true
					}
					return e.urls, true
				}
			}
			return secfn.URLs(s), true
		}, a.cost + 5
	case "injectionMarkers":
		a := b.strNode(arg)
		if a == nil {
			return nil, 0
		}
		return func(ec *evalCtx) ([]string, bool) {
			s := a.get(ec)
			if a.fd != nil { // a field: its markers are kept with its content entry
				if e := ec.entryFor(a.fd.idx, s); e != nil {
					if !e.markersOK {
						e.markers, e.markersOK = secfn.InjectionMarkers(s), true
					}
					return e.markers, true
				}
			}
			return secfn.InjectionMarkers(s), true
		}, 20 * a.cost
	}
	return nil, 0
}

// isEventArgs reports whether e is `event.args`.
func isEventArgs(e ast.Expr) bool {
	if e.Kind() != ast.SelectKind {
		return false
	}
	sel := e.AsSelect()
	return !sel.IsTestOnly() && sel.Operand().Kind() == ast.IdentKind && sel.Operand().AsIdent() == "event" && sel.FieldName() == "args"
}

func (b *nativeBuilder) boolNode(e ast.Expr) *nbool {
	switch e.Kind() {
	case ast.LiteralKind:
		if v, ok := e.AsLiteral().(types.Bool); ok {
			r := triOf(bool(v))
			return &nbool{eval: func(*evalCtx) tri { return r }, cost: 0, total: true}
		}
		return unknownNode
	case ast.ComprehensionKind:
		return b.compNode(e.AsComprehension())
	case ast.CallKind:
	default:
		return unknownNode
	}
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); fn {
	case "_&&_", "_||_":
		var kids []*nbool
		b.flatten(e, fn, &kids)
		if len(kids) == 0 { // only the skipped conjunct
			return trueNode
		}
		return logic(kids, fn == "_&&_")
	case "!_":
		if len(args) != 1 {
			return unknownNode
		}
		k := b.boolNode(args[0])
		if k == unknownNode {
			return unknownNode
		}
		return &nbool{eval: func(ec *evalCtx) tri { return -k.eval(ec) }, cost: k.cost, total: k.total}
	case "_==_", "_!=_":
		if len(args) != 2 {
			return unknownNode
		}
		neg := fn == "_!=_"
		if l, r := b.strNode(args[0]), b.strNode(args[1]); l != nil && r != nil {
			if l.isLit {
				l, r = r, l
			}
			if l.fd != nil && r.isLit { // field == "literal"
				off, lit := l.fd.off, r.lit
				return &nbool{eval: func(ec *evalCtx) tri { return triOf((fieldAt(ec.ev, off) == lit) != neg) }, cost: l.cost, total: true}
			}
			return &nbool{eval: func(ec *evalCtx) tri { return triOf((l.get(ec) == r.get(ec)) != neg) }, cost: l.cost + r.cost, total: true}
		}
		if l, r := b.intNode(args[0]), b.intNode(args[1]); l != nil && r != nil {
			return &nbool{eval: func(ec *evalCtx) tri { return triOf((l.get(ec) == r.get(ec)) != neg) }, cost: 1, total: true}
		}
		return unknownNode
	case "_<_", "_<=_", "_>_", "_>=_":
		if len(args) != 2 {
			return unknownNode
		}
		l, r := b.intNode(args[0]), b.intNode(args[1])
		if l == nil || r == nil {
			return unknownNode
		}
		var cmp func(a, b int64) bool
		switch fn {
		case "_<_":
			cmp = func(a, b int64) bool { return a < b }
		case "_<=_":
			cmp = func(a, b int64) bool { return a <= b }
		case "_>_":
			cmp = func(a, b int64) bool { return a > b }
		default:
			cmp = func(a, b int64) bool { return a >= b }
		}
		return &nbool{eval: func(ec *evalCtx) tri { return triOf(cmp(l.get(ec), r.get(ec))) }, cost: 1, total: true}
	case "@in":
		if len(args) != 2 {
			return unknownNode
		}
		l := b.strNode(args[0])
		set, ok := b.strSet(args[1])
		if l == nil || !ok {
			return unknownNode
		}
		if l.app != nil { // concatenation: build it in a scratch buffer
			return &nbool{eval: func(ec *evalCtx) tri {
				buf := l.app(ec, ec.takeScratch())
				_, in := set[string(buf)]
				ec.scratch = buf
				return triOf(in)
			}, cost: l.cost + 2, total: true}
		}
		if l.fd != nil {
			off := l.fd.off
			return &nbool{eval: func(ec *evalCtx) tri { _, in := set[fieldAt(ec.ev, off)]; return triOf(in) }, cost: l.cost + 2, total: true}
		}
		return &nbool{eval: func(ec *evalCtx) tri { _, in := set[l.get(ec)]; return triOf(in) }, cost: l.cost + 2, total: true}
	case "contains", "startsWith", "endsWith":
		if !call.IsMemberFunction() || len(args) != 1 {
			return unknownNode
		}
		t, a := b.strNode(call.Target()), b.strNode(args[0])
		if t == nil || a == nil {
			return unknownNode
		}
		var f func(s, sub string) bool
		switch fn {
		case "contains":
			f = strings.Contains
		case "startsWith":
			f = strings.HasPrefix
		default:
			f = strings.HasSuffix
		}
		if t.fd != nil && a.isLit {
			off, lit := t.fd.off, a.lit
			switch fn {
			case "contains":
				if bit, field := containsBit(lit), t.fd.idx; bit >= 0 {
					// Kept with the field's content entry: the same
					// literals are looked for in the same texts again.
					return &nbool{eval: func(ec *evalCtx) tri {
						return triOf(ec.contains(field, bit, fieldAt(ec.ev, off), lit))
					}, cost: t.cost + 3, total: true}
				}
				return &nbool{eval: func(ec *evalCtx) tri { return triOf(strings.Contains(fieldAt(ec.ev, off), lit)) }, cost: t.cost + 3, total: true}
			case "startsWith":
				return &nbool{eval: func(ec *evalCtx) tri { return triOf(strings.HasPrefix(fieldAt(ec.ev, off), lit)) }, cost: t.cost + 3, total: true}
			}
		}
		return &nbool{eval: func(ec *evalCtx) tri { return triOf(f(t.get(ec), a.get(ec))) }, cost: t.cost + a.cost + 3, total: true}
	case "matches":
		if !call.IsMemberFunction() || len(args) != 1 {
			return unknownNode
		}
		t := b.strNode(call.Target())
		pat, ok := stringLit(args[0])
		if t == nil || !ok {
			return unknownNode
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return unknownNode
		}
		// A pattern every match of which holds a non-ASCII character (a
		// script's range, as the look-alike rules look for) cannot match
		// ASCII text: that is checked first, at a fraction of the cost.
		nonASCII := needsNonASCII(pat)
		// Short inputs (tool names, methods) repeat across events: their
		// results are cached per condition.
		var mu sync.Mutex
		cache := map[string]bool{}
		if t.app != nil {
			// A concatenation: matched in a scratch buffer, not allocated.
			return &nbool{eval: func(ec *evalCtx) tri {
				buf := t.app(ec, ec.takeScratch())
				defer func() { ec.scratch = buf }()
				if nonASCII && isASCII(buf) {
					return triFalse
				}
				if len(buf) > 128 {
					return triOf(re.Match(buf))
				}
				mu.Lock()
				m, ok := cache[string(buf)]
				mu.Unlock()
				if !ok {
					m = re.Match(buf)
					mu.Lock()
					if len(cache) >= 4096 {
						clear(cache)
					}
					cache[string(buf)] = m
					mu.Unlock()
				}
				return triOf(m)
			}, cost: 20*t.cost + 20, total: true}
		}
		return &nbool{eval: func(ec *evalCtx) tri {
			s := t.get(ec)
			if nonASCII && isASCII(s) {
				return triFalse
			}
			if len(s) > 128 {
				return triOf(re.MatchString(s))
			}
			mu.Lock()
			m, ok := cache[s]
			mu.Unlock()
			if !ok {
				m = re.MatchString(s)
				mu.Lock()
				if len(cache) >= 4096 {
					clear(cache)
				}
				cache[strings.Clone(s)] = m
				mu.Unlock()
			}
			return triOf(m)
		}, cost: 20*t.cost + 20, total: true}
	}
	// Boolean security functions.
	if call.IsMemberFunction() || len(args) != 1 {
		return unknownNode
	}
	fi := funcIndex(call.FunctionName())
	if fi < 0 || stringFuncs[fi].result != types.BoolType {
		return unknownNode
	}
	a := b.strNode(args[0])
	if a == nil {
		return unknownNode
	}
	f := memoFns[fi]
	cost := 10 + int(float64(10*a.cost)*stringFuncs[fi].factor)
	if a.field >= 0 {
		slot, field := fi*len(eventFields)+a.field, a.field
		return &nbool{eval: func(ec *evalCtx) tri {
			if r := ec.memo[slot]; r != 0 {
				return r
			}
			r := triOf(ec.fieldFunc(fi, field, a.get(ec)))
			ec.setMemo(slot, r)
			return r
		}, cost: cost, total: true}
	}
	if len(a.fields) > 0 {
		// A derived string (ternary, replace) that is usually one of the
		// event's fields unchanged: then it shares that field's memo.
		fields := a.fields
		return &nbool{eval: func(ec *evalCtx) tri {
			s := a.get(ec)
			for _, fd := range fields {
				if sameString(s, fd.str(ec.ev)) {
					slot := fi*len(eventFields) + fd.idx
					if r := ec.memo[slot]; r != 0 {
						return r
					}
					r := triOf(ec.fieldFunc(fi, fd.idx, s))
					ec.setMemo(slot, r)
					return r
				}
			}
			return triOf(f(s) == types.True)
		}, cost: cost, total: true}
	}
	return &nbool{eval: func(ec *evalCtx) tri { return triOf(f(a.get(ec)) == types.True) }, cost: cost, total: true}
}

func (b *nativeBuilder) flatten(e ast.Expr, op string, out *[]*nbool) {
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == op {
		for _, a := range e.AsCall().Args() {
			b.flatten(a, op, out)
		}
		return
	}
	if b.skip != 0 && e.ID() == b.skip && op == "_&&_" && b.depth == 0 {
		return // known true: the event is in the conjunct's index bucket
	}
	b.depth++
	*out = append(*out, b.boolNode(e))
	b.depth--
}

// logic combines children of && (and=true) or ||, cheapest first.
func logic(kids []*nbool, and bool) *nbool {
	known := kids[:0:0]
	unk := false
	for _, k := range kids {
		if k == unknownNode {
			unk = true
			continue
		}
		known = append(known, k)
	}
	if len(known) == 0 {
		return unknownNode
	}
	sort.SliceStable(known, func(i, j int) bool { return known[i].cost < known[j].cost })
	total, cost := !unk, 0
	for _, k := range known {
		total = total && k.total
		cost += k.cost
	}
	stop := triFalse // && stops on false, || on true
	if !and {
		stop = triTrue
	}
	// The common shapes without the loop: one or two known children.
	switch {
	case len(known) == 1 && !unk:
		return known[0]
	case len(known) == 2:
		a, b := known[0].eval, known[1].eval
		return &nbool{eval: func(ec *evalCtx) tri {
			ra := a(ec)
			if ra == stop {
				return stop
			}
			rb := b(ec)
			if rb == stop {
				return stop
			}
			if unk || ra == triUnknown || rb == triUnknown {
				return triUnknown
			}
			return -stop
		}, cost: cost, total: total}
	}
	return &nbool{eval: func(ec *evalCtx) tri {
		u := unk
		for _, k := range known {
			switch k.eval(ec) {
			case stop:
				return stop
			case triUnknown:
				u = true
			}
		}
		if u {
			return triUnknown
		}
		return -stop
	}, cost: cost, total: total}
}

// compNode decides the exists/all comprehensions loopNode supports.
func (b *nativeBuilder) compNode(c ast.ComprehensionExpr) *nbool {
	init := c.AccuInit()
	if init.Kind() != ast.LiteralKind || c.Result().Kind() != ast.IdentKind || c.Result().AsIdent() != c.AccuVar() {
		return unknownNode
	}
	v, ok := init.AsLiteral().(types.Bool)
	if !ok {
		return unknownNode
	}
	if n := b.loopNode(c, bool(v)); n != nil {
		return n
	}
	return unknownNode
}

func (b *nativeBuilder) strSet(e ast.Expr) (map[string]struct{}, bool) {
	vals, ok := b.strList(e)
	if !ok {
		return nil, false
	}
	set := make(map[string]struct{}, len(vals))
	for _, v := range vals {
		set[v] = struct{}{}
	}
	return set, true
}

// strList returns the values of a named list or a list literal of strings.
func (b *nativeBuilder) strList(e ast.Expr) ([]string, bool) {
	var vals []string
	switch e.Kind() {
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind || sel.Operand().AsIdent() != "lists" {
			return nil, false
		}
		l, ok := b.lists[sel.FieldName()]
		if !ok {
			return nil, false
		}
		vals = l
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			s, ok := stringLit(el)
			if !ok {
				return nil, false
			}
			vals = append(vals, s)
		}
	default:
		return nil, false
	}
	return vals, true
}

func (b *nativeBuilder) strNode(e ast.Expr) *nstr {
	switch e.Kind() {
	case ast.LiteralKind:
		s, ok := e.AsLiteral().(types.String)
		if !ok {
			return nil
		}
		v := string(s)
		return &nstr{get: func(*evalCtx) string { return v }, field: -1, lit: v, isLit: true}
	case ast.IdentKind:
		for i := len(b.vars) - 1; i >= 0; i-- { // innermost first
			if b.vars[i] == e.AsIdent() {
				return &nstr{get: func(ec *evalCtx) string { return ec.iters[i] }, cost: 1, field: -1}
			}
		}
		return nil
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind || sel.Operand().AsIdent() != "event" {
			return nil
		}
		fd, ok := eventFields[sel.FieldName()]
		if !ok || fd.typ != types.StringType {
			return nil
		}
		get := stringGetter(sel.FieldName())
		if get == nil {
			return nil
		}
		cost := 1
		switch sel.FieldName() {
		case "arguments", "result", "tool_description", "tool_input_schema":
			cost = 50 // often KiBs: scanning them dominates
		}
		n := &nstr{get: func(ec *evalCtx) string { return get(ec.ev) }, cost: cost, field: fd.idx, fields: []*fieldDef{fd}}
		if fd.strOff {
			n.fd = fd
		}
		return n
	case ast.CallKind:
	default:
		return nil
	}
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case "_+_":
		if len(args) != 2 {
			return nil
		}
		l, r := b.strNode(args[0]), b.strNode(args[1])
		if l == nil || r == nil {
			return nil
		}
		return &nstr{get: func(ec *evalCtx) string { return l.get(ec) + r.get(ec) }, cost: l.cost + r.cost + 3, field: -1,
			app: func(ec *evalCtx, dst []byte) []byte { return r.appendTo(ec, l.appendTo(ec, dst)) }}
	case "replace":
		if !call.IsMemberFunction() || len(args) != 2 {
			return nil
		}
		t, o, n := b.strNode(call.Target()), b.strNode(args[0]), b.strNode(args[1])
		if t == nil || o == nil || n == nil {
			return nil
		}
		// strings.ReplaceAll returns its input itself when old does not occur.
		return &nstr{get: func(ec *evalCtx) string { return strings.ReplaceAll(t.get(ec), o.get(ec), n.get(ec)) }, cost: t.cost + 5, field: -1, fields: t.fields}
	case "_?_:_":
		if len(args) != 3 {
			return nil
		}
		c := b.boolNode(args[0])
		x, y := b.strNode(args[1]), b.strNode(args[2])
		if !c.total || x == nil || y == nil {
			return nil
		}
		return &nstr{get: func(ec *evalCtx) string {
			if c.eval(ec) == triTrue {
				return x.get(ec)
			}
			return y.get(ec)
		}, cost: c.cost + x.cost + y.cost, field: -1, fields: unionFields(x.fields, y.fields)}
	}
	return nil
}

// fieldAt reads the string field at offset off of ev (fieldDef.off).
func fieldAt(ev *event.Event, off uintptr) string {
	return *(*string)(unsafe.Add(unsafe.Pointer(ev), off))
}

func unionFields(a, b []*fieldDef) []*fieldDef {
	out := append([]*fieldDef(nil), a...)
	for _, f := range b {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func (b *nativeBuilder) intNode(e ast.Expr) *nint {
	switch e.Kind() {
	case ast.LiteralKind:
		v, ok := e.AsLiteral().(types.Int)
		if !ok {
			return nil
		}
		return &nint{get: func(*evalCtx) int64 { return int64(v) }}
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind || sel.Operand().AsIdent() != "event" {
			return nil
		}
		get := intGetter(sel.FieldName())
		if get == nil {
			return nil
		}
		return &nint{get: func(ec *evalCtx) int64 { return get(ec.ev) }}
	case ast.CallKind: // size(list) and list.size() of a named list or a literal: a constant
		call := e.AsCall()
		if call.FunctionName() != "size" {
			return nil
		}
		var arg ast.Expr
		switch args := call.Args(); {
		case call.IsMemberFunction() && len(args) == 0:
			arg = call.Target()
		case !call.IsMemberFunction() && len(args) == 1:
			arg = args[0]
		default:
			return nil
		}
		vals, ok := b.strList(arg)
		if !ok {
			return nil
		}
		n := int64(len(vals))
		return &nint{get: func(*evalCtx) int64 { return n }}
	}
	return nil
}

func funcIndex(name string) int {
	for i, f := range stringFuncs {
		if f.name == name {
			return i
		}
	}
	return -1
}

// stringGetter returns a direct accessor for a string (or named string)
// field of event.Event by its ch tag; nil if there is none.
func stringGetter(name string) func(*event.Event) string {
	fd, ok := eventFields[name]
	if !ok || fd.typ != types.StringType {
		return nil
	}
	return fd.str
}

// intGetter returns an accessor for an integer field by its ch tag; nil if none.
func intGetter(name string) func(*event.Event) int64 {
	f, ok := fieldByTag(name)
	if !ok {
		return nil
	}
	off := f.Offset
	p := func(e *event.Event) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(e), off) }
	switch f.Type.Kind() {
	case reflect.Int:
		return func(e *event.Event) int64 { return int64(*(*int)(p(e))) }
	case reflect.Int64:
		return func(e *event.Event) int64 { return *(*int64)(p(e)) }
	case reflect.Int32:
		return func(e *event.Event) int64 { return int64(*(*int32)(p(e))) }
	case reflect.Int16:
		return func(e *event.Event) int64 { return int64(*(*int16)(p(e))) }
	case reflect.Int8:
		return func(e *event.Event) int64 { return int64(*(*int8)(p(e))) }
	case reflect.Uint:
		return func(e *event.Event) int64 { return int64(*(*uint)(p(e))) }
	case reflect.Uint64:
		return func(e *event.Event) int64 { return int64(*(*uint64)(p(e))) }
	case reflect.Uint32:
		return func(e *event.Event) int64 { return int64(*(*uint32)(p(e))) }
	case reflect.Uint16:
		return func(e *event.Event) int64 { return int64(*(*uint16)(p(e))) }
	case reflect.Uint8:
		return func(e *event.Event) int64 { return int64(*(*uint8)(p(e))) }
	}
	return nil
}

func fieldByTag(name string) (reflect.StructField, bool) {
	rt := reflect.TypeOf(event.Event{})
	for i := 0; i < rt.NumField(); i++ {
		if f := rt.Field(i); f.Tag.Get("ch") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// needsNonASCII reports whether every match of the regular expression pat
// contains a character ≥ U+0080, so that it cannot match a text of ASCII
// bytes only (Go's regexp reads an invalid byte as U+FFFD, never ASCII).
// False when unsure.
func needsNonASCII(pat string) bool {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return false
	}
	return requiresNonASCII(re.Simplify())
}

func requiresNonASCII(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpCharClass: // pairs of ranges, case folding already expanded
		for i := 0; i < len(re.Rune); i += 2 {
			if re.Rune[i] < utf8.RuneSelf {
				return false
			}
		}
		return len(re.Rune) > 0
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if nonASCIIRune(r, re.Flags&syntax.FoldCase != 0) {
				return true
			}
		}
		return false
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if requiresNonASCII(sub) {
				return true
			}
		}
		return false
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !requiresNonASCII(sub) {
				return false
			}
		}
		return len(re.Sub) > 0
	case syntax.OpCapture, syntax.OpPlus:
		return requiresNonASCII(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min >= 1 && requiresNonASCII(re.Sub[0])
	}
	return false
}

// nonASCIIRune reports whether r (and, with fold, every case variant of r)
// is outside ASCII.
func nonASCIIRune(r rune, fold bool) bool {
	if r < utf8.RuneSelf {
		return false
	}
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				return false
			}
		}
	}
	return true
}

// isASCII reports whether s holds only ASCII bytes.
func isASCII[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
