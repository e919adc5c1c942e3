package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Cost limits for one condition (CEL cost units, roughly one per
// operation, 0.1 per string byte traversed).
const (
	// StaticCostLimit rejects a condition at load when its worst-case
	// estimated cost exceeds it.
	StaticCostLimit = 10_000_000
	// RuntimeCostLimit aborts one evaluation (counted as an evaluation error, no match).
	RuntimeCostLimit = 10_000_000
	// maxFieldBytes is the size assumed for string fields in the static estimate
	// (the collector caps arguments and results at this size).
	maxFieldBytes = 64 << 10
	// maxListItems is the size assumed for named lists in the static estimate.
	maxListItems = 10_000
	// maxArgsDepth bounds the nesting of event.args; deeper JSON yields an empty map.
	maxArgsDepth = 32
)

const eventTypeName = "mcpwatch.Event"

// fieldDef is one field of the CEL event type.
type fieldDef struct {
	idx    int // slot in evalCtx.vals
	name   string
	off    uintptr // offset in event.Event of a string field (strOff)
	strOff bool
	typ    *types.Type
	get    func(ec *evalCtx) ref.Val
	str    func(e *event.Event) string // string form for by/fields/templates
}

var eventFields = buildEventFields()

func buildEventFields() map[string]*fieldDef {
	out := map[string]*fieldDef{}
	rt := reflect.TypeOf(event.Event{})
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name := f.Tag.Get("ch")
		if name == "" {
			continue
		}
		idx := i
		fd := &fieldDef{name: name}
		switch {
		case f.Type == reflect.TypeOf(time.Time{}):
			fd.typ = types.TimestampType
			fd.get = func(ec *evalCtx) ref.Val {
				return types.Timestamp{Time: reflect.ValueOf(ec.ev).Elem().Field(idx).Interface().(time.Time)}
			}
			fd.str = func(e *event.Event) string {
				t := reflect.ValueOf(e).Elem().Field(idx).Interface().(time.Time)
				if t.IsZero() {
					return ""
				}
				return t.UTC().Format(time.RFC3339Nano)
			}
		case f.Type.Kind() == reflect.String:
			// Direct access by offset (string and named string types share
			// the layout): these run several times per rule and event.
			off := f.Offset
			str := func(e *event.Event) string { return *(*string)(unsafe.Add(unsafe.Pointer(e), off)) }
			fd.typ = types.StringType
			fd.get = func(ec *evalCtx) ref.Val { return types.String(str(ec.ev)) }
			fd.str = str
			fd.off, fd.strOff = off, true
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			fd.typ = types.NewListType(types.StringType)
			fd.get = func(ec *evalCtx) ref.Val {
				v := reflect.ValueOf(ec.ev).Elem().Field(idx).Interface().([]string)
				return types.NewStringList(types.DefaultTypeAdapter, v)
			}
			fd.str = func(e *event.Event) string {
				return strings.Join(reflect.ValueOf(e).Elem().Field(idx).Interface().([]string), ",")
			}
		case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64:
			fd.typ = types.IntType
			fd.get = func(ec *evalCtx) ref.Val { return types.Int(reflect.ValueOf(ec.ev).Elem().Field(idx).Int()) }
			fd.str = func(e *event.Event) string { return fmt.Sprint(reflect.ValueOf(e).Elem().Field(idx).Int()) }
		case f.Type.Kind() >= reflect.Uint && f.Type.Kind() <= reflect.Uint64:
			fd.typ = types.IntType
			fd.get = func(ec *evalCtx) ref.Val { return types.Int(reflect.ValueOf(ec.ev).Elem().Field(idx).Uint()) }
			fd.str = func(e *event.Event) string { return fmt.Sprint(reflect.ValueOf(e).Elem().Field(idx).Uint()) }
		default:
			continue
		}
		out[name] = fd
	}
	// Derived fields.
	defer func() {
		names := make([]string, 0, len(out))
		for n := range out {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			out[n].idx = i
		}
	}()
	out["args"] = &fieldDef{name: "args", typ: types.DynType, get: func(ec *evalCtx) ref.Val { return ec.argsVal() },
		str: func(e *event.Event) string { return e.Arguments }}
	out["attrs"] = &fieldDef{name: "attrs", typ: types.NewMapType(types.StringType, types.StringType),
		get: func(ec *evalCtx) ref.Val {
			m := make(map[string]string, len(ec.ev.AttrKeys))
			for i, k := range ec.ev.AttrKeys {
				if i < len(ec.ev.AttrValues) {
					m[k] = ec.ev.AttrValues[i]
				}
			}
			return types.NewStringStringMap(types.DefaultTypeAdapter, m)
		},
		str: func(e *event.Event) string { return strings.Join(e.AttrKeys, ",") }}
	return out
}

// EventFieldNames lists the fields rules may use on `event` (ClickHouse column names plus args and attrs).
func EventFieldNames() []string {
	out := make([]string, 0, len(eventFields))
	for k := range eventFields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// evalCtx wraps one event for CEL evaluation; derived values are computed once.
type evalCtx struct {
	ev       *event.Event
	args     ref.Val
	argsDone bool
	vals     []ref.Val              // field values converted for CEL, per event (nil = not yet)
	valsUsed bool                   // vals holds values of the current event
	memo     []tri                  // security function results per (function, field), per event
	memoSet  []int32                // the slots of memo set for this event (cleared by reset)
	scratch  []byte                 // native evaluation buffer
	iters    [maxLoopDepth]string   // native comprehension variables by depth
	loopBuf  [maxLoopDepth][]string // native comprehension ranges by depth
	leaves   []string               // leafStrings(event.args), native
	leavesOK bool
	leafBuf  []string // leaves when not cached

	cc     *contentCache   // cross-event results by content; nil = none
	ccDef  *contentCache   // the same for tool definitions (content.go); nil = cc
	ent    []*contentEntry // per field: its entry in cc for this event
	entS   []string        // per field: ent's text when resolved (detects a replaced slot)
	entSet []int32         // the fields of ent set for this event (cleared by reset)
}

// setMemo records security function result r in memo slot slot for this event.
func (ec *evalCtx) setMemo(slot int, r tri) {
	ec.memo[slot] = r
	ec.memoSet = append(ec.memoSet, int32(slot))
}

// takeScratch hands out the native evaluation buffer, empty; the caller
// puts it back (ec.scratch = buf) when done. A nested use in between gets
// a new buffer instead of overwriting the caller's.
func (ec *evalCtx) takeScratch() []byte {
	b := ec.scratch[:0]
	ec.scratch = nil
	return b
}

// argLeaves is leafStrings(event.args) for the native evaluation, once per event.
// With a content cache the leaves are kept with the arguments' entry
// (read-only from then on).
func (ec *evalCtx) argLeaves() []string {
	if ec.leavesOK {
		return ec.leaves
	}
	ec.leavesOK = true
	if e := ec.argsEntry(); e != nil {
		if !e.leavesOK {
			e.leaves, e.leavesOK = leafStringsOf(ec.argsVal().Value(), nil), true
		}
		ec.leaves = e.leaves
		return ec.leaves
	}
	ec.leafBuf = leafStringsOf(ec.argsVal().Value(), ec.leafBuf[:0])
	ec.leaves = ec.leafBuf
	return ec.leaves
}

// maxCachedArgsBytes bounds the arguments whose decoded form (and leaves)
// the content cache keeps: decoded JSON is several times its text.
const maxCachedArgsBytes = 1 << 10

// argsEntry is the content entry of event.arguments when its decoded form
// may be cached, else nil.
func (ec *evalCtx) argsEntry() *contentEntry {
	if len(ec.ev.Arguments) > maxCachedArgsBytes {
		return nil
	}
	return ec.entryFor(argumentsIdx, ec.ev.Arguments)
}

// argumentsIdx is the field index of event.arguments (set in init:
// eventFields' closures refer to argsVal).
var argumentsIdx int

func init() { argumentsIdx = eventFields["arguments"].idx }

func (ec *evalCtx) reset(e *event.Event) {
	ec.ev, ec.args, ec.argsDone = e, nil, false
	ec.leavesOK = false
	if ec.vals == nil {
		ec.vals = make([]ref.Val, len(eventFields))
	} else if ec.valsUsed { // only CEL fills it: most events need no clearing
		clear(ec.vals)
	}
	ec.valsUsed = false
	if ec.memo == nil {
		ec.memo = make([]tri, len(stringFuncs)*len(eventFields))
		ec.ent = make([]*contentEntry, len(eventFields))
		ec.entS = make([]string, len(eventFields))
	} else {
		// Only what the previous event set: a few of the many slots.
		for _, i := range ec.memoSet {
			ec.memo[i] = 0
		}
		ec.memoSet = ec.memoSet[:0]
		for _, i := range ec.entSet {
			ec.ent[i], ec.entS[i] = nil, ""
		}
		ec.entSet = ec.entSet[:0]
	}
}

// field returns the CEL value of a field, converting it once per event.
func (ec *evalCtx) field(fd *fieldDef) ref.Val {
	if ec.vals == nil {
		return fd.get(ec)
	}
	v := ec.vals[fd.idx]
	if v == nil {
		v = fd.get(ec)
		ec.vals[fd.idx] = v
		ec.valsUsed = true
	}
	return v
}

// argsVal parses event.arguments as JSON once; invalid or too deep JSON gives an empty map.
func (ec *evalCtx) argsVal() ref.Val {
	if ec.argsDone {
		return ec.args
	}
	ec.argsDone = true
	e := ec.argsEntry()
	if e != nil && e.args != nil {
		ec.args = e.args // decoded values are never modified
		return ec.args
	}
	var v any
	s := ec.ev.Arguments
	if s == "" || jsonDepth(s) > maxArgsDepth || json.Unmarshal([]byte(s), &v) != nil {
		v = map[string]any{}
	}
	ec.args = types.DefaultTypeAdapter.NativeToValue(v)
	if e != nil {
		e.args = ec.args
	}
	return ec.args
}

// jsonDepth returns the maximum bracket nesting of a JSON text (ignoring strings).
func jsonDepth(s string) int {
	depth, maxD, inStr := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > maxD {
				maxD = depth
			}
		case '}', ']':
			depth--
		}
	}
	return maxD
}

// provider exposes the event type to the CEL checker and interpreter.
type provider struct {
	*types.Registry
	objType *types.Type
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if name == eventTypeName {
		return types.NewTypeTypeWithParam(p.objType), true
	}
	return p.Registry.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if name == eventTypeName {
		return EventFieldNames(), true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	if structType != eventTypeName {
		return p.Registry.FindStructFieldType(structType, fieldName)
	}
	fd, ok := eventFields[fieldName]
	if !ok {
		return nil, false
	}
	return &types.FieldType{
		Type:  fd.typ,
		IsSet: func(target any) bool { _, ok := target.(*evalCtx); return ok },
		GetFrom: func(target any) (any, error) {
			ec, ok := target.(*evalCtx)
			if !ok {
				return nil, fmt.Errorf("cannot select %s: not an event", fieldName)
			}
			return ec.field(fd), nil
		},
	}, true
}

// activation binds `event` and `lists` for one evaluation.
type activation struct {
	ec    *evalCtx
	lists ref.Val
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.ec, true
	case "lists":
		return a.lists, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// function costs per byte of string input (CEL convention: 0.1 per byte traversed).
var stringFuncs = []struct {
	name   string
	result *types.Type
	doc    string
	fn     func(string) ref.Val
	factor float64 // cost per input byte
}{
	{"isInternalAddress", types.BoolType, "host, IP (any notation) or URL is loopback/private/link-local/ULA/metadata", func(s string) ref.Val { return types.Bool(secfn.IsInternalAddress(s)) }, 0.1},
	{"urlHost", types.StringType, "lower-case host of a URL", func(s string) ref.Val { return types.String(secfn.URLHost(s)) }, 0.1},
	{"urls", types.NewListType(types.StringType), "all URLs in a text or JSON", func(s string) ref.Val {
		return types.NewStringList(types.DefaultTypeAdapter, secfn.URLs(s))
	}, 0.2},
	{"normalizePath", types.StringType, "decoded, slash-normalised, collapsed path", func(s string) ref.Val { return types.String(secfn.NormalizePath(s)) }, 0.5},
	{"hasTraversal", types.BoolType, "contains a .. segment after decoding", func(s string) ref.Val { return types.Bool(secfn.HasTraversal(s)) }, 0.5},
	{"escapesRoot", types.BoolType, "a path (or a path in the text) leaves its root after decoding and normalisation (POSIX, Windows, UNC, URL)", func(s string) ref.Val { return types.Bool(secfn.EscapesRoot(s)) }, 0.5},
	{"isSensitivePath", types.BoolType, "names credentials/secrets", func(s string) ref.Val { return types.Bool(secfn.IsSensitivePath(s)) }, 1},
	{"sensitivePath", types.BoolType, "alias of isSensitivePath", func(s string) ref.Val { return types.Bool(secfn.IsSensitivePath(s)) }, 1},
	{"isPersistencePath", types.BoolType, "names an auto-run/persistence location", func(s string) ref.Val { return types.Bool(secfn.IsPersistencePath(s)) }, 1},
	{"hasShellMeta", types.BoolType, "contains shell metacharacters", func(s string) ref.Val { return types.Bool(secfn.HasShellMeta(s)) }, 0.1},
	{"shannonEntropy", types.DoubleType, "bits per byte", func(s string) ref.Val { return types.Double(secfn.ShannonEntropy(s)) }, 0.1},
	{"looksBase64", types.BoolType, "has a base64 token decoding to text", func(s string) ref.Val { return types.Bool(secfn.LooksBase64(s)) }, 0.5},
	{"decodeBase64", types.StringType, "decoded text of base64 tokens", func(s string) ref.Val { return types.String(secfn.DecodeBase64(s)) }, 0.5},
	{"hasSecret", types.BoolType, "contains a secret or a redaction marker", func(s string) ref.Val { return types.Bool(HasSecret(s)) }, 1},
	{"hasHiddenUnicode", types.BoolType, "zero-width, bidi, tag or abused variation selectors", func(s string) ref.Val { return types.Bool(secfn.HasHiddenUnicode(s)) }, 0.1},
	{"hasANSIEscape", types.BoolType, "ANSI escape sequences", func(s string) ref.Val { return types.Bool(secfn.HasANSIEscape(s)) }, 0.1},
	{"injectionMarkers", types.NewListType(types.StringType), "ids of prompt-injection markers", func(s string) ref.Val {
		return types.NewStringList(types.DefaultTypeAdapter, secfn.InjectionMarkers(s))
	}, 1},
	{"hasInjectionMarkers", types.BoolType, "any prompt-injection marker", func(s string) ref.Val { return types.Bool(secfn.HasInjectionMarkers(s)) }, 1},
	{"isEgressTool", types.BoolType, "tool name suggests sending data out", func(s string) ref.Val { return types.Bool(secfn.IsEgressTool(s)) }, 0.1},
	{"isDestructiveCommand", types.BoolType, "destructive shell/SQL/cloud command", func(s string) ref.Val { return types.Bool(secfn.IsDestructiveCommand(s)) }, 1},
}

// onPrep[i], when set, is stringFuncs[i] on secfn.PathPrep(s): the content
// cache prepares a text once for all such functions.
var onPrep = func() []func(string) bool {
	out := make([]func(string) bool, len(stringFuncs))
	for i, f := range stringFuncs {
		switch f.name {
		case "isSensitivePath", "sensitivePath":
			out[i] = secfn.SensitivePrepared
		case "isPersistencePath":
			out[i] = secfn.PersistencePrepared
		}
	}
	return out
}()

// Memoization of the expensive functions as CEL calls them (the native
// pre-evaluation uses the per-worker content cache of content.go instead;
// CEL runs only for the few conditions it leaves undecided). Results are
// cached by input content (inputs of memoMinBytes to memoMaxBytes, the
// bounds content.go uses too), at most memoEntries per function; the cache
// is dropped when full.
const (
	memoMinBytes = 16
	memoMaxBytes = 4 << 10
	memoEntries  = 2048
)

func memoize(fn func(string) ref.Val) func(string) ref.Val {
	var mu sync.Mutex
	cache := make(map[string]ref.Val, memoEntries)
	return func(s string) ref.Val {
		if len(s) < memoMinBytes || len(s) > memoMaxBytes {
			return fn(s)
		}
		mu.Lock()
		v, ok := cache[s]
		mu.Unlock()
		if ok {
			return v
		}
		v = fn(s)
		mu.Lock()
		if len(cache) >= memoEntries {
			clear(cache)
		}
		cache[strings.Clone(s)] = v
		mu.Unlock()
		return v
	}
}

// memoFns are the functions of stringFuncs as called (the expensive ones
// memoized), shared by CEL and the native pre-evaluation.
var memoFns = func() []func(string) ref.Val {
	out := make([]func(string) ref.Val, len(stringFuncs))
	for i, f := range stringFuncs {
		out[i] = f.fn
		if f.factor >= 0.5 {
			out[i] = memoize(f.fn)
		}
	}
	return out
}()

// FunctionDocs returns name → description of the security functions.
func FunctionDocs() map[string]string {
	m := map[string]string{"leafStrings": "all string leaves of a JSON value (e.g. event.args), bounded"}
	for _, f := range stringFuncs {
		m[f.name] = f.doc
	}
	return m
}

// maxLeafStrings bounds leafStrings.
const maxLeafStrings = 256

func leafStrings(v ref.Val) ref.Val {
	return types.NewStringList(types.DefaultTypeAdapter, leafStringsOf(v.Value(), nil))
}

// leafStringsOf appends the string leaves of a decoded JSON value to out, sorted.
func leafStringsOf(root any, out []string) []string {
	var walk func(x any, d int)
	walk = func(x any, d int) {
		if len(out) >= maxLeafStrings || d > maxArgsDepth {
			return
		}
		switch t := x.(type) {
		case string:
			out = append(out, t)
		case map[string]any:
			for _, y := range t {
				walk(y, d+1)
			}
		case []any:
			for _, y := range t {
				walk(y, d+1)
			}
		}
	}
	walk(root, 0)
	sort.Strings(out) // map order must not change results
	return out
}

// newEnv builds the CEL environment once per engine.
func newEnv() (*cel.Env, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("cannot create CEL registry: %w", err)
	}
	p := &provider{Registry: reg, objType: types.NewObjectType(eventTypeName)}
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(p),
		cel.CustomTypeAdapter(reg),
		cel.Variable("event", types.NewObjectType(eventTypeName)),
		cel.Variable("lists", types.NewMapType(types.StringType, types.NewListType(types.StringType))),
		ext.Strings(),
		cel.Function("leafStrings", cel.Overload("leafStrings_dyn", []*types.Type{types.DynType}, types.NewListType(types.StringType),
			cel.UnaryBinding(leafStrings))),
	}
	for i, f := range stringFuncs {
		fn := memoFns[i]
		opts = append(opts, cel.Function(f.name, cel.Overload(f.name+"_string", []*types.Type{types.StringType}, f.result,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.NoSuchOverloadErr()
				}
				return fn(string(s))
			}))))
	}
	opts = append(opts, profileEnvOptions()...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create CEL environment: %w", err)
	}
	return env, nil
}

// costEstimator sizes event fields and lists and prices the security
// functions. Sizes are realistic upper bounds, not absolute ones (the
// runtime limit catches the rest): string fields 64 KiB, event.args 32
// entries per level, list fields 1024 items, named lists their real size.
type costEstimator struct {
	lists map[string][]string
}

func (c costEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) >= 1 && p[0] == "event" {
		if len(p) >= 2 && p[1] == "args" {
			if len(p) == 2 || p[len(p)-1] == "@keys" || p[len(p)-1] == "@items" || p[len(p)-1] == "@values" || n.Type().Kind() == types.DynKind {
				return &cost.SizeEstimate{Min: 0, Max: argsEntries}
			}
			return &cost.SizeEstimate{Min: 0, Max: maxFieldBytes}
		}
		if len(p) == 2 && (p[1] == "tags" || p[1] == "scopes" || p[1] == "attr_keys" || p[1] == "attr_values" || p[1] == "attrs") {
			return &cost.SizeEstimate{Min: 0, Max: 1024}
		}
		return &cost.SizeEstimate{Min: 0, Max: maxFieldBytes}
	}
	if len(p) >= 1 && p[0] == "lists" {
		if len(p) == 2 {
			l := uint64(len(c.lists[p[1]]))
			return &cost.SizeEstimate{Min: l, Max: l}
		}
		return &cost.SizeEstimate{Min: 0, Max: 256}
	}
	if len(p) == 0 && n.Type() != nil {
		switch n.Type().Kind() {
		case types.StringKind, types.BytesKind:
			return &cost.SizeEstimate{Min: 0, Max: unknownStringBytes}
		case types.ListKind, types.MapKind:
			return &cost.SizeEstimate{Min: 0, Max: argsEntries}
		}
	}
	return nil
}

// argsEntries is the assumed number of entries per level of event.args.
const argsEntries = 32

// unknownStringBytes is the size assumed for strings of unknown origin
// (comprehension elements, function results without an estimate).
const unknownStringBytes = 1024

func (c costEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	argSize := uint64(unknownStringBytes)
	if len(args) == 1 {
		if sz := args[0].ComputedSize(); sz != nil {
			argSize = sz.Max
		} else if sz := c.EstimateSize(args[0]); sz != nil {
			argSize = sz.Max
		}
	}
	for _, f := range stringFuncs {
		if f.name == function {
			res := &cost.SizeEstimate{Min: 0, Max: argSize}
			switch function {
			case "urls":
				res.Max = 64
			case "injectionMarkers":
				res.Max = 16
			case "urlHost":
				res.Max = 256
			}
			return &cost.CallEstimate{
				CostEstimate: cost.CostEstimate{Min: 1, Max: 1 + uint64(f.factor*float64(argSize))},
				ResultSize:   res,
			}
		}
	}
	if function == "leafStrings" {
		return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: maxLeafStrings},
			ResultSize: &cost.SizeEstimate{Min: 0, Max: argsEntries}}
	}
	return nil
}

// compiled is one compiled CEL condition.
type compiled struct {
	src  string
	prg  cel.Program
	ast  *cel.Ast
	cost uint64 // static worst case
	nat  *nbool // native pre-evaluation (native.go); nil = CEL only
	// natIx is nat for the events of the condition's index bucket: without
	// the conjunct the index key comes from (index.go), which they satisfy.
	// nil when the condition has no index key (then nat serves) or nothing
	// is left to decide natively.
	natIx *nbool
}

// compile compiles, type-checks (bool), cost-checks and plans one condition.
// lists are the list names available to the rule; undefined names are errors.
func compile(env *cel.Env, src string, lists map[string][]string) (*compiled, error) {
	a, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("cannot compile %q: %w", oneLine(src), iss.Err())
	}
	if a.OutputType() != types.BoolType {
		return nil, fmt.Errorf("condition %q must be bool, is %s", oneLine(src), a.OutputType())
	}
	if err := checkListRefs(a, lists); err != nil {
		return nil, err
	}
	est, err := env.EstimateCost(a, costEstimator{lists: lists})
	if err != nil {
		return nil, fmt.Errorf("cannot estimate cost of %q: %w", oneLine(src), err)
	}
	if est.Max > StaticCostLimit {
		return nil, fmt.Errorf("condition %q: estimated cost %d exceeds limit %d", oneLine(src), est.Max, StaticCostLimit)
	}
	// The security functions are linear in their input (≤ 64 KiB), so they
	// keep CEL's default call cost at runtime; tracking their size-based cost
	// doubled evaluation time. CEL's own operations are tracked for the
	// conditions that need it (see needsRuntimeLimit): without
	// comprehensions the cost is bounded by the static estimate (field sizes
	// are hard caps).
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if needsRuntimeLimit(a) {
		opts = append(opts, cel.CostLimit(RuntimeCostLimit))
	}
	prg, err := env.Program(a, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot plan %q: %w", oneLine(src), err)
	}
	c := &compiled{src: src, prg: prg, ast: a, cost: est.Max, nat: buildNative(a.NativeRep().Expr(), lists)}
	if k := indexOf(c); k.field != "" && c.nat != nil {
		c.natIx = buildNativeSkip(a.NativeRep().Expr(), lists, k.expr)
	}
	return c, nil
}

// needsRuntimeLimit reports whether a condition's runtime cost can exceed
// what its static estimate and the hard input caps bound, so that it needs
// CEL's runtime cost tracking (which costs ~25% CPU and a sixth of the
// allocations). A comprehension is exempt when its range is
//   - static: a named list or a list literal (the estimate uses their real
//     size), or
//   - a partition of one input: urls, injectionMarkers, leafStrings, split,
//     event.tags, event.scopes — and then nothing inside the loop reads
//     `event` and nested loops are static,
//
// and every nested comprehension is exempt too. Everything else is tracked.
func needsRuntimeLimit(a *cel.Ast) bool {
	need := false
	walkExpr(a.NativeRep().Expr(), func(e ast.Expr) bool {
		if need {
			return false
		}
		if e.Kind() == ast.ComprehensionKind {
			need = !exemptComp(e.AsComprehension(), false)
			return false
		}
		return true
	})
	return need
}

// exemptComp applies needsRuntimeLimit's rules to one comprehension;
// noEvent is set inside a partition loop.
func exemptComp(c ast.ComprehensionExpr, noEvent bool) bool {
	kind := rangeKind(c.IterRange())
	if kind == "" || noEvent && readsEvent(c.IterRange()) {
		return false
	}
	ne := noEvent || kind == "partition"
	ok := true
	for _, part := range []ast.Expr{c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
		walkExpr(part, func(x ast.Expr) bool {
			if !ok {
				return false
			}
			switch {
			case x.Kind() == ast.ComprehensionKind:
				xc := x.AsComprehension()
				if kind == "partition" && rangeKind(xc.IterRange()) != "static" || !exemptComp(xc, ne) {
					ok = false
				}
				return false
			case ne && x.Kind() == ast.IdentKind && x.AsIdent() == "event":
				ok = false
			}
			return ok
		})
	}
	return ok
}

// rangeKind classifies a comprehension range: "static", "partition" or "".
func rangeKind(e ast.Expr) string {
	switch e.Kind() {
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			if el.Kind() != ast.LiteralKind {
				return ""
			}
		}
		return "static"
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.Operand().Kind() != ast.IdentKind {
			return ""
		}
		switch sel.Operand().AsIdent() {
		case "lists":
			return "static"
		case "event":
			if sel.FieldName() == "tags" || sel.FieldName() == "scopes" {
				return "partition"
			}
		}
	case ast.CallKind:
		switch e.AsCall().FunctionName() {
		case "urls", "injectionMarkers", "leafStrings", "split":
			if !containsComprehension(e) {
				return "partition"
			}
		}
	}
	return ""
}

func readsEvent(e ast.Expr) bool {
	found := false
	walkExpr(e, func(x ast.Expr) bool {
		if x.Kind() == ast.IdentKind && x.AsIdent() == "event" {
			found = true
		}
		return !found
	})
	return found
}

func containsComprehension(e ast.Expr) bool {
	found := false
	walkExpr(e, func(x ast.Expr) bool {
		if x.Kind() == ast.ComprehensionKind {
			found = true
		}
		return !found
	})
	return found
}

// walkExpr visits e and its descendants depth-first while f returns true.
func walkExpr(e ast.Expr, f func(ast.Expr) bool) {
	if e == nil || !f(e) {
		return
	}
	switch e.Kind() {
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			walkExpr(c.Target(), f)
		}
		for _, a := range c.Args() {
			walkExpr(a, f)
		}
	case ast.SelectKind:
		walkExpr(e.AsSelect().Operand(), f)
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			walkExpr(el, f)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			walkExpr(me.Key(), f)
			walkExpr(me.Value(), f)
		}
	case ast.StructKind:
		for _, fl := range e.AsStruct().Fields() {
			walkExpr(fl.AsStructField().Value(), f)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		for _, x := range []ast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
			walkExpr(x, f)
		}
	}
}

// checkListRefs rejects lists.<name> references to undefined lists.
func checkListRefs(a *cel.Ast, lists map[string][]string) error {
	var errs []string
	nav := ast.NavigateAST(a.NativeRep())
	for _, e := range ast.MatchDescendants(nav, ast.KindMatcher(ast.SelectKind)) {
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() == ast.IdentKind && op.AsIdent() == "lists" {
			if _, ok := lists[sel.FieldName()]; !ok {
				errs = append(errs, fmt.Sprintf("undefined list %q", sel.FieldName()))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// eval runs a condition; errors (incl. cost limit) are returned, result false.
func (c *compiled) eval(act *activation) (bool, error) {
	if c.nat != nil && act.ec != nil && act.ec.memo != nil {
		switch c.nat.eval(act.ec) {
		case triTrue:
			return true, nil
		case triFalse:
			return false, nil
		}
	}
	return c.evalCEL(act)
}

// evalCEL runs the condition with CEL only.
func (c *compiled) evalCEL(act *activation) (bool, error) {
	out, _, err := c.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition returned %s, not bool", out.Type())
	}
	return bool(b), nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// jsonCompact is used for evidence values.
func jsonCompact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}
