package detect

import (
	"hash/maphash"
	"strings"
	"sync"
	"unsafe"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
)

// Results of the boolean security functions by input content, shared by
// every rule and kept across events (tool definitions and many tool calls
// repeat). The native pre-evaluation resolves a field's entry once per
// event — one hash and one comparison of its text — and then every
// function on that field of that event is a bit test: the entry holds one
// known/result bit pair per function. Each evaluator (worker) has its own
// cache, so there is no locking.
//
// Tool definitions (description, input schema) have a cache of their own:
// a server's few definitions come back in every tools/list answer of every
// session, while arguments and results are mostly one-off texts. In one
// table, the stream of one-off texts evicted the definitions (the corpus
// benchmark's cost per event moved by a tenth with the hash seed, i.e.
// with which definitions happened to share a set with busy texts).
const (
	contentEntries = 2048 // per worker, a power of two
	defEntries     = 1024 // per worker, for tool definitions; a power of two
)

type contentEntry struct {
	h     uint64
	s     string // a private copy: event strings may alias large decode buffers
	known uint32 // bit i: stringFuncs[i] computed for s
	val   uint32 // bit i: its result
	// Derived values, computed on first use, read-only afterwards.
	args      ref.Val  // s decoded as event.args
	leaves    []string // leafStrings of args
	leavesOK  bool
	urls      []string // secfn.URLs(s)
	urlsOK    bool
	markers   []string // secfn.InjectionMarkers(s)
	markersOK bool
	prep      string // secfn.PathPrep(s)
	prepOK    bool
	// bit i: strings.Contains(s, containsLits[i]) known / true (containsNode).
	litKnown, litVal uint64
}

// The cache is two-way set-associative: a text may be in either entry of
// its set, and a new text replaces the one of the two used less recently.
// A text that comes back often (a tool's description, in every tools/list
// answer) then survives a stream of one-off texts (arguments, results)
// that map to the same set, where a direct-mapped table lost it to each.
type contentCache struct {
	seed maphash.Seed
	tab  []contentEntry // set i: tab[2i], tab[2i+1]
	mru  []uint8        // per set: the entry used last (0 or 1)
}

// newContentCache makes a cache of entries entries (a power of two, ≥ 2).
func newContentCache(entries int) *contentCache {
	return &contentCache{seed: maphash.MakeSeed(), tab: make([]contentEntry, entries), mru: make([]uint8, entries/2)}
}

// entry returns the entry for s; a text not in the cache replaces the
// less recently used entry of its set.
func (c *contentCache) entry(s string) *contentEntry {
	h := maphash.String(c.seed, s)
	set := h & uint64(len(c.mru)-1)
	pair := c.tab[2*set : 2*set+2 : 2*set+2]
	for i := range pair {
		if e := &pair[i]; e.h == h && e.s == s {
			c.mru[set] = uint8(i)
			return e
		}
	}
	i := 1 - c.mru[set]
	c.mru[set] = i
	e := &pair[i]
	*e = contentEntry{h: h, s: strings.Clone(s)}
	return e
}

// containsLits numbers the literals of field.contains("lit") conditions
// (native.go), so that a content entry keeps their results as bits: the
// same literals are looked for in the same arguments by several rules and
// events. Shared by all packs; literals beyond the 64th are not cached.
var containsLits = struct {
	sync.Mutex
	idx map[string]int
}{idx: map[string]int{}}

// containsBit returns lit's bit in contentEntry.litKnown/litVal, or -1.
func containsBit(lit string) int {
	containsLits.Lock()
	defer containsLits.Unlock()
	if i, ok := containsLits.idx[lit]; ok {
		return i
	}
	if len(containsLits.idx) >= 64 {
		return -1
	}
	i := len(containsLits.idx)
	containsLits.idx[lit] = i
	return i
}

// contains is strings.Contains(s, lit), s the value of event field field,
// through s's content entry when it has one (bit = containsBit(lit)).
func (ec *evalCtx) contains(field, bit int, s, lit string) bool {
	e := ec.entryFor(field, s)
	if e == nil {
		return strings.Contains(s, lit)
	}
	m := uint64(1) << bit
	if e.litKnown&m == 0 {
		e.litKnown |= m
		if strings.Contains(s, lit) {
			e.litVal |= m
		}
	}
	return e.litVal&m != 0
}

func init() {
	if len(stringFuncs) > 32 {
		panic("detect: contentEntry has 32 function bits")
	}
}

// fieldFunc is boolean security function fi applied to s, the value of
// event field field (s may be a different string with the same content
// only when the caller checked that). Results are memoised per event in
// ec.memo by the caller; this adds the cross-event content cache for
// inputs of memoMinBytes..memoMaxBytes (resolving the field's entry costs
// one hash and one comparison of the text, less than any function).
func (ec *evalCtx) fieldFunc(fi, field int, s string) bool {
	fn := stringFuncs[fi].fn
	e := ec.entryFor(field, s)
	if e == nil {
		return fn(s) == types.True
	}
	bit := uint32(1) << fi
	if e.known&bit != 0 {
		return e.val&bit != 0
	}
	var r bool
	if prepared := onPrep[fi]; prepared != nil {
		if !e.prepOK {
			e.prep, e.prepOK = secfn.PathPrep(s), true
		}
		r = prepared(e.prep)
	} else {
		r = fn(s) == types.True
	}
	e.known |= bit
	if r {
		e.val |= bit
	}
	return r
}

// entryFor returns the content cache entry of s, the value of event field
// field, resolving it at most once per event and field; nil when s is not
// cached (no cache, shorter than memoMinBytes or longer than memoMaxBytes).
func (ec *evalCtx) entryFor(field int, s string) *contentEntry {
	if ec.cc == nil || len(s) < memoMinBytes || len(s) > memoMaxBytes {
		return nil
	}
	e := ec.ent[field]
	if e == nil || unsafe.StringData(e.s) != unsafe.StringData(ec.entS[field]) {
		// Not resolved for this event, or the slot was since taken by
		// another field's text.
		c := ec.cc
		if ec.ccDef != nil && (field == toolDescriptionIdx || field == toolInputSchemaIdx) {
			c = ec.ccDef
		}
		e = c.entry(s)
		if ec.ent[field] == nil {
			ec.entSet = append(ec.entSet, int32(field))
		}
		ec.ent[field], ec.entS[field] = e, e.s
	}
	return e
}

// sameString reports whether a and b are the same string value in memory
// (same bytes at the same address), e.g. a ternary or a replace() that
// returned its input unchanged.
func sameString(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b))
}

// The fields whose texts go to evalCtx.ccDef (set in init: eventFields'
// closures refer to entryFor).
var toolDescriptionIdx, toolInputSchemaIdx int

func init() {
	toolDescriptionIdx, toolInputSchemaIdx = eventFields["tool_description"].idx, eventFields["tool_input_schema"].idx
}
