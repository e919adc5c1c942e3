package detect

import (
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// indexFields are the event fields a condition can be indexed by, most
// selective first.
var indexFields = []string{"tool_name", "method", "kind", "source", "observer"}

// indexKey is the equality constraint a condition requires: event.<field>
// must be one of values. A zero key means catch-all.
type indexKey struct {
	field  string
	values []string
	// expr is the id of the conjunct the key comes from: an event of the
	// key's bucket satisfies it (compiled.natIx leaves it out).
	expr int64
}

// indexOf derives the constraint from the top-level conjunction of a
// condition: a conjunct `event.f == "v"` ("v" == event.f) or
// `event.f in ["a", "b"]`, for f in indexFields. Anything else is catch-all.
func indexOf(c *compiled) indexKey {
	type conj struct {
		vals []string
		expr int64
	}
	found := map[string]conj{}
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		switch call.FunctionName() {
		case "_&&_":
			for _, a := range call.Args() {
				walk(a)
			}
		case "_==_":
			args := call.Args()
			if len(args) != 2 {
				return
			}
			for _, pair := range [][2]ast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
				if f, ok := eventSelect(pair[0]); ok {
					if s, ok := stringLit(pair[1]); ok {
						found[f] = conj{[]string{s}, e.ID()}
						return
					}
				}
			}
		case "_||_":
			// event.f == "a" || event.f == "b" || event.f in [...]: a value set for f.
			f, vals, ok := orValues(e)
			if ok {
				found[f] = conj{vals, e.ID()}
			}
		case "@in":
			args := call.Args()
			if len(args) != 2 || args[1].Kind() != ast.ListKind {
				return
			}
			f, ok := eventSelect(args[0])
			if !ok {
				return
			}
			var vals []string
			for _, el := range args[1].AsList().Elements() {
				s, ok := stringLit(el)
				if !ok {
					return
				}
				vals = append(vals, s)
			}
			if len(vals) > 0 {
				found[f] = conj{vals, e.ID()}
			}
		}
	}
	walk(c.ast.NativeRep().Expr())
	for _, f := range indexFields {
		if v, ok := found[f]; ok {
			return indexKey{field: f, values: v.vals, expr: v.expr}
		}
	}
	return indexKey{}
}

// orValues flattens a disjunction of equalities/in-lists on one index field.
func orValues(e ast.Expr) (string, []string, bool) {
	if e.Kind() != ast.CallKind {
		return "", nil, false
	}
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case "_||_":
		field := ""
		var vals []string
		for _, a := range args {
			f, v, ok := orValues(a)
			if !ok || (field != "" && f != field) {
				return "", nil, false
			}
			field = f
			vals = append(vals, v...)
		}
		return field, vals, field != ""
	case "_==_":
		if len(args) != 2 {
			return "", nil, false
		}
		for _, pair := range [][2]ast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if f, ok := eventSelect(pair[0]); ok {
				if s, ok := stringLit(pair[1]); ok {
					return f, []string{s}, true
				}
			}
		}
	case "@in":
		if len(args) != 2 || args[1].Kind() != ast.ListKind {
			return "", nil, false
		}
		f, ok := eventSelect(args[0])
		if !ok {
			return "", nil, false
		}
		var vals []string
		for _, el := range args[1].AsList().Elements() {
			s, ok := stringLit(el)
			if !ok {
				return "", nil, false
			}
			vals = append(vals, s)
		}
		return f, vals, len(vals) > 0
	}
	return "", nil, false
}

func eventSelect(e ast.Expr) (string, bool) {
	if e.Kind() != ast.SelectKind {
		return "", false
	}
	s := e.AsSelect()
	if s.IsTestOnly() || s.Operand().Kind() != ast.IdentKind || s.Operand().AsIdent() != "event" {
		return "", false
	}
	for _, f := range indexFields {
		if f == s.FieldName() {
			return f, true
		}
	}
	return "", false
}

func stringLit(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// indexValue returns the event's value for an index field.
func indexValue(e *event.Event, field string) string {
	switch field {
	case "tool_name":
		return e.ToolName
	case "method":
		return e.Method
	case "kind":
		return string(e.Kind)
	case "source":
		return string(e.Source)
	case "observer":
		return string(e.Observer)
	}
	return ""
}

// condIndex maps events to the conditions that can match them. It is
// read-only after construction; each evaluator has its own marks.
type condIndex struct {
	byField  map[string]map[string][]int // field → value → condition numbers
	fields   []indexedField              // byField as a slice (iterated per event)
	catchAll []int
	n        int
	disabled bool
}

func newCondIndex(keys []indexKey, disabled bool) *condIndex {
	ix := &condIndex{byField: map[string]map[string][]int{}, n: len(keys), disabled: disabled}
	for c, k := range keys {
		if k.field == "" || disabled {
			ix.catchAll = append(ix.catchAll, c)
			continue
		}
		m := ix.byField[k.field]
		if m == nil {
			m = map[string][]int{}
			ix.byField[k.field] = m
		}
		for _, v := range k.values {
			m[v] = append(m[v], c)
		}
	}
	for _, f := range indexFields {
		if m, ok := ix.byField[f]; ok {
			ix.fields = append(ix.fields, indexedField{f, m})
		}
	}
	return ix
}

type indexedField struct {
	field string
	conds map[string][]int
}

// marks records the candidate conditions of the current event.
type marks struct {
	list []int // candidate condition numbers (not sorted)
}

// prepare lists the candidate conditions for e. A condition has one index
// key (one field, or none: catch-all), and e one value per field, so the
// lists joined have no duplicates.
func (mk *marks) prepare(ix *condIndex, e *event.Event) {
	mk.list = append(mk.list[:0], ix.catchAll...)
	for _, f := range ix.fields {
		mk.list = append(mk.list, f.conds[indexValue(e, f.field)]...)
	}
}
