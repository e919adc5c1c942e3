package event

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TracesFromProto maps an OTLP ExportTraceServiceRequest, as protobuf
// bytes, directly onto events, without building pdata: FromTraces of the
// decoded request, at a fraction of the cost (no per-attribute objects;
// every string is a slice of one copy of the input).
//
// It returns ok=false, having mapped nothing, for any input it does not
// handle exactly as pdata would: malformed protobuf, array or map
// attribute values, groups, the deprecated instrumentation_library_spans
// field. The caller then decodes with pdata (which also reports malformed
// input) and calls FromTraces. spans is the request's span count.
//
// The mapping below mirrors mapper.span, mapper.resource, classify and
// exceptionType of mapping.go line by line on the raw representation; keep
// them in step (TestDirectTracesMatchPdata and FuzzDirectTraces compare the
// two paths on every capture and on fuzzed input).
func TracesFromProto(body []byte, o MapOptions) (b Batch, spans int, ok bool) {
	// One copy of the input; every string is a slice of it (the caller's
	// buffer is reused after the request).
	return TracesFromProtoString(string(body), o)
}

// TracesFromProtoString is TracesFromProto for a body the caller already
// holds as a string (no further copy: the events' strings slice it).
func TracesFromProtoString(body string, o MapOptions) (b Batch, spans int, ok bool) {
	p := rawPool.Get().(*rawTraces)
	defer p.release()
	if !p.parse(body) {
		return Batch{}, 0, false
	}
	m := newMapper(o)
	m.b.Events = getEvents(len(p.spans))
	for ri := range p.res {
		r := &p.res[ri]
		res := m.rawResource(p.kvs[r.attrs.lo:r.attrs.hi])
		for si := r.spans.lo; si < r.spans.hi; si++ {
			m.rawSpan(p, &res, &p.spans[si])
		}
	}
	m.propagate()
	return m.b, len(p.spans), true
}

// eventsPool holds event slices handed back by Batch.Release.
var eventsPool sync.Pool // *[]Event

func getEvents(n int) []Event {
	if v, ok := eventsPool.Get().(*[]Event); ok && cap(*v) >= n {
		return (*v)[:0]
	}
	return make([]Event, 0, n)
}

// Release hands the batch's event slice back for reuse by a later
// TracesFromProto (cleared, so it pins no strings). Call it only when
// nothing refers to the events any more; b is empty afterwards.
func (b *Batch) Release() {
	evs := b.Events
	b.Events = nil
	if c := cap(evs); c == 0 || c > 1<<13 {
		return
	}
	evs = evs[:cap(evs)]
	clear(evs)
	eventsPool.Put(&evs)
}

// span32 is a range of indexes into one of rawTraces' slices.
type span32 struct{ lo, hi int32 }

// rawVal is a scalar OTLP AnyValue.
type rawVal struct {
	typ pcommon.ValueType
	s   string // string and bytes values
	n   uint64 // int (two's complement), double (bits), bool (0/1)
}

type rawKV struct {
	key string
	v   rawVal
}

type rawSpanRec struct {
	scope            string
	tid              [16]byte
	sid, psid        [8]byte
	name             string
	kind             int32
	start, end       uint64
	statusCode       int32
	statusMsg        string
	attrs, events    span32 // into kvs, evs
	hasTID, hasParnt bool
}

type rawEvent struct {
	name  string
	attrs span32
}

type rawRes struct {
	attrs span32 // into kvs
	spans span32 // into spans
}

// rawTraces is the parsed request; pooled, so a request of 500 spans
// allocates only its one string copy.
type rawTraces struct {
	full  []byte
	str   string
	res   []rawRes
	spans []rawSpanRec
	kvs   []rawKV
	evs   []rawEvent
}

var rawPool = sync.Pool{New: func() any { return new(rawTraces) }}

func (p *rawTraces) release() {
	if cap(p.kvs) > 1<<16 || cap(p.spans) > 1<<14 { // do not pin huge buffers
		*p = rawTraces{}
	}
	// The stale entries' strings all point into the last body: clearing
	// them (with GC write barriers) costs more than keeping one small body
	// alive until the next request overwrites them.
	if len(p.str) > 1<<20 {
		clear(p.kvs)
		clear(p.spans)
		clear(p.evs)
	}
	p.full, p.str = nil, ""
	p.res, p.spans, p.kvs, p.evs = p.res[:0], p.spans[:0], p.kvs[:0], p.evs[:0]
	rawPool.Put(p)
}

// sub returns the string for b, a subslice of p.full.
func (p *rawTraces) sub(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := cap(p.full) - cap(b)
	return p.str[start : start+len(b)]
}

// Wire reading, byte for byte as pdata's internal/proto does (field
// numbers are int32(tag>>3), varints of up to 10 bytes).

const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

func rdVarint(b []byte, pos int) (uint64, int, bool) {
	var num uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 || pos >= len(b) {
			return 0, 0, false
		}
		c := b[pos]
		pos++
		num |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return num, pos, true
		}
	}
}

func rdTag(b []byte, pos int) (int32, int8, int, bool) {
	if pos < len(b) && b[pos] < 0x80 { // one-byte tag
		t := b[pos]
		if t>>3 == 0 {
			return 0, 0, 0, false
		}
		return int32(t >> 3), int8(t & 7), pos + 1, true
	}
	tag, pos, ok := rdVarint(b, pos)
	if !ok || int32(tag>>3) <= 0 {
		return 0, 0, 0, false
	}
	return int32(tag >> 3), int8(tag & 7), pos, true
}

func rdLen(b []byte, pos int) ([]byte, int, bool) {
	n, pos, ok := rdVarint(b, pos)
	if !ok {
		return nil, 0, false
	}
	l := int(n)
	end := pos + l
	if l < 0 || end < 0 || end > len(b) {
		return nil, 0, false
	}
	return b[pos:end], end, true
}

func rdFixed64(b []byte, pos int) (uint64, int, bool) {
	if pos+8 < 0 || pos+8 > len(b) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[pos:]), pos + 8, true
}

// skip skips an unknown field; groups and invalid wire types are not handled.
func skip(b []byte, pos int, wt int8) (int, bool) {
	switch wt {
	case wireVarint:
		_, pos, ok := rdVarint(b, pos)
		return pos, ok
	case wireI64:
		if pos+8 > len(b) {
			return 0, false
		}
		return pos + 8, true
	case wireLen:
		_, pos, ok := rdLen(b, pos)
		return pos, ok
	case wireI32:
		if pos+4 > len(b) {
			return 0, false
		}
		return pos + 4, true
	}
	return 0, false
}

func (p *rawTraces) parse(s string) bool {
	// The parser reads the string's bytes in place (read-only).
	body := unsafe.Slice(unsafe.StringData(s), len(s))
	p.str, p.full = s, body
	for pos := 0; pos < len(body); {
		num, wt, np, ok := rdTag(body, pos)
		if !ok {
			return false
		}
		pos = np
		if num == 1 {
			var rs []byte
			if wt != wireLen {
				return false
			}
			if rs, pos, ok = rdLen(body, pos); !ok || !p.resourceSpans(rs) {
				return false
			}
			continue
		}
		if pos, ok = skip(body, pos, wt); !ok {
			return false
		}
	}
	return true
}

// strOf is the string of b, a subslice of the input.
func (p *rawTraces) strOf(b []byte) string { return p.sub(b) }

func (p *rawTraces) resourceSpans(b []byte) bool {
	r := rawRes{attrs: span32{int32(len(p.kvs)), 0}, spans: span32{int32(len(p.spans)), 0}}
	// Resource attributes come first in p.kvs for this resource, then
	// the spans' attributes: collect the resource's own in a first pass.
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 2, 3, 1000:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			if num == 1 && !p.resource(v) || num == 1000 {
				return false
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	r.attrs.hi = int32(len(p.kvs))
	for pos := 0; pos < len(b); {
		num, wt, np, _ := rdTag(b, pos)
		pos = np
		if num == 2 {
			v, np, _ := rdLen(b, pos)
			pos = np
			if !p.scopeSpans(v) {
				return false
			}
			continue
		}
		pos, _ = skip(b, pos, wt)
	}
	r.spans.hi = int32(len(p.spans))
	p.res = append(p.res, r)
	return true
}

// resource appends the resource's attributes (a repeated Resource field
// merges, as in pdata).
func (p *rawTraces) resource(b []byte) bool {
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1: // attributes
			var v []byte
			if wt != wireLen {
				return false
			}
			if v, pos, ok = rdLen(b, pos); !ok || !p.keyValue(v) {
				return false
			}
		case 2: // dropped_attributes_count
			if wt != wireVarint {
				return false
			}
			if _, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
		case 3: // entity_refs
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok || !validEntityRef(v) {
				return false
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	return true
}

// validEntityRef checks an EntityRef (1 schema_url, 2 type, 3 id_keys,
// 4 description_keys: all strings) the way pdata would decode it.
func validEntityRef(b []byte) bool {
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		if num >= 1 && num <= 4 && wt != wireLen {
			return false
		}
		if pos, ok = skip(b, pos, wt); !ok {
			return false
		}
	}
	return true
}

func (p *rawTraces) scopeSpans(b []byte) bool {
	var scope string
	// The scope may follow the spans on the wire: read it first.
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 2, 3:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			if num == 1 {
				if scope, ok = p.scope(v, scope); !ok {
					return false
				}
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	for pos := 0; pos < len(b); {
		num, wt, np, _ := rdTag(b, pos)
		pos = np
		if num == 2 {
			v, np, _ := rdLen(b, pos)
			pos = np
			if !p.span(v, scope) {
				return false
			}
			continue
		}
		pos, _ = skip(b, pos, wt)
	}
	return true
}

// scope reads an InstrumentationScope's name (repeated scopes merge: the
// last name present wins) and validates the rest.
func (p *rawTraces) scope(b []byte, name string) (string, bool) {
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return "", false
		}
		pos = np
		switch num {
		case 1, 2, 3:
			if wt != wireLen {
				return "", false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return "", false
			}
			switch num {
			case 1:
				name = p.strOf(v)
			case 3:
				n := len(p.kvs)
				ok = p.keyValue(v)
				p.kvs = p.kvs[:n] // validated, not kept
				if !ok {
					return "", false
				}
			}
		case 4:
			if wt != wireVarint {
				return "", false
			}
			if _, pos, ok = rdVarint(b, pos); !ok {
				return "", false
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return "", false
			}
		}
	}
	return name, true
}

func (p *rawTraces) span(b []byte, scope string) bool {
	// Filled in place: copying the record in would cost write barriers.
	p.spans = append(p.spans, rawSpanRec{})
	sp := &p.spans[len(p.spans)-1]
	sp.scope = scope
	sp.attrs.lo = int32(len(p.kvs))
	var evBufs [8][]byte
	evs := evBufs[:0]
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 2, 3, 4, 5, 9, 11, 13, 15: // length-delimited
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			switch num {
			case 1:
				switch len(v) {
				case 0:
					sp.tid, sp.hasTID = [16]byte{}, false
				case 16:
					copy(sp.tid[:], v)
					sp.hasTID = true
				default:
					return false
				}
			case 2:
				switch len(v) {
				case 0:
					sp.sid = [8]byte{}
				case 8:
					copy(sp.sid[:], v)
				default:
					return false
				}
			case 4:
				switch len(v) {
				case 0:
					sp.psid = [8]byte{}
				case 8:
					copy(sp.psid[:], v)
				default:
					return false
				}
			case 5:
				sp.name = p.strOf(v)
			case 9:
				if !p.keyValue(v) {
					return false
				}
			case 11:
				evs = append(evs, v) // read after the span's attributes
			case 13:
				if !p.validLink(v) {
					return false
				}
			case 15:
				if !p.status(v, sp) {
					return false
				}
			}
		case 6, 10, 12, 14: // varints
			if wt != wireVarint {
				return false
			}
			var n uint64
			if n, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
			if num == 6 {
				sp.kind = int32(n)
			}
		case 7, 8: // fixed64
			if wt != wireI64 {
				return false
			}
			var n uint64
			if n, pos, ok = rdFixed64(b, pos); !ok {
				return false
			}
			if num == 7 {
				sp.start = n
			} else {
				sp.end = n
			}
		case 16: // flags, fixed32
			if wt != wireI32 {
				return false
			}
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	sp.attrs.hi = int32(len(p.kvs))
	sp.events.lo = int32(len(p.evs))
	for _, v := range evs {
		if !p.event(v) {
			return false
		}
	}
	sp.events.hi = int32(len(p.evs))
	return true
}

// status merges a Status (2 message, 3 code) into sp.
func (p *rawTraces) status(b []byte, sp *rawSpanRec) bool {
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 2:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			sp.statusMsg = p.strOf(v)
		case 3:
			if wt != wireVarint {
				return false
			}
			var n uint64
			if n, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
			sp.statusCode = int32(n)
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	return true
}

// event appends a span event (1 time, 2 name, 3 attributes, 4 dropped).
func (p *rawTraces) event(b []byte) bool {
	ev := rawEvent{}
	lo := int32(len(p.kvs))
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1:
			if wt != wireI64 {
				return false
			}
		case 2, 3:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			if num == 2 {
				ev.name = p.strOf(v)
			} else if !p.keyValue(v) {
				return false
			}
			continue
		case 4:
			if wt != wireVarint {
				return false
			}
		}
		if pos, ok = skip(b, pos, wt); !ok {
			return false
		}
	}
	ev.attrs = span32{lo, int32(len(p.kvs))}
	p.evs = append(p.evs, ev)
	return true
}

// validLink validates a Link (1 trace_id, 2 span_id, 3 trace_state,
// 4 attributes, 5 dropped, 6 flags) without keeping it.
func (p *rawTraces) validLink(b []byte) bool {
	n := len(p.kvs)
	defer func() { p.kvs = p.kvs[:n] }()
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 2, 3, 4:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			switch {
			case num == 1 && len(v) != 0 && len(v) != 16, num == 2 && len(v) != 0 && len(v) != 8:
				return false
			case num == 4 && !p.keyValue(v):
				return false
			}
			continue
		case 5:
			if wt != wireVarint {
				return false
			}
		case 6:
			if wt != wireI32 {
				return false
			}
		}
		if pos, ok = skip(b, pos, wt); !ok {
			return false
		}
	}
	return true
}

// keyValue appends one KeyValue with a scalar value. A repeated key or
// value field (which pdata merges), arrays and maps are not handled.
func (p *rawTraces) keyValue(b []byte) bool {
	kv := rawKV{v: rawVal{typ: pcommon.ValueTypeEmpty}}
	seenKey, seenVal := false, false
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 2:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			if num == 1 {
				if seenKey {
					return false
				}
				seenKey = true
				kv.key = p.strOf(v)
			} else {
				if seenVal || !p.anyValue(v, &kv.v) {
					return false
				}
				seenVal = true
			}
		case 3: // key_strindex (profiles): not handled
			return false
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	p.kvs = append(p.kvs, kv)
	return true
}

// anyValue reads a scalar AnyValue (1 string, 2 bool, 3 int, 4 double,
// 7 bytes); 5 array and 6 kvlist, or two value fields, are not handled.
func (p *rawTraces) anyValue(b []byte, out *rawVal) bool {
	seen := false
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		if num >= 1 && num <= 8 {
			if seen {
				return false
			}
			seen = true
		}
		switch num {
		case 1, 7:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			out.s = p.strOf(v)
			out.typ = pcommon.ValueTypeStr
			if num == 7 {
				out.typ = pcommon.ValueTypeBytes
			}
		case 2, 3:
			if wt != wireVarint {
				return false
			}
			var n uint64
			if n, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
			out.n, out.typ = n, pcommon.ValueTypeInt
			if num == 2 {
				out.typ = pcommon.ValueTypeBool
				out.n = 0
				if n != 0 {
					out.n = 1
				}
			}
		case 4:
			if wt != wireI64 {
				return false
			}
			var n uint64
			if n, pos, ok = rdFixed64(b, pos); !ok {
				return false
			}
			out.n, out.typ = n, pcommon.ValueTypeDouble
		case 5, 6: // array, kvlist: validated, kept raw, built with pdata if used
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			if num == 5 && !validArray(v, 0) || num == 6 && !validKVList(v, 0) {
				return false
			}
			out.s = p.strOf(b)
			out.typ = pcommon.ValueTypeSlice
			if num == 6 {
				out.typ = pcommon.ValueTypeMap
			}
		case 8: // string_value_strindex (profiles)
			return false
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	return true
}

// maxRawDepth bounds the validation of nested arrays and maps; deeper
// values take the pdata path.
const maxRawDepth = 64

// validArray and validKVList check nested values as pdata decodes them:
// ArrayValue{1: AnyValue}, KeyValueList{1: KeyValue}.
func validArray(b []byte, depth int) bool  { return validRepeated(b, depth, validAny) }
func validKVList(b []byte, depth int) bool { return validRepeated(b, depth, validKV) }

func validRepeated(b []byte, depth int, elem func([]byte, int) bool) bool {
	if depth > maxRawDepth {
		return false
	}
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		if num == 1 {
			var v []byte
			if wt != wireLen {
				return false
			}
			if v, pos, ok = rdLen(b, pos); !ok || !elem(v, depth+1) {
				return false
			}
			continue
		}
		if pos, ok = skip(b, pos, wt); !ok {
			return false
		}
	}
	return true
}

func validKV(b []byte, depth int) bool {
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 2:
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok || num == 2 && !validAny(v, depth) {
				return false
			}
			continue
		case 3:
			if wt != wireVarint {
				return false
			}
		}
		if pos, ok = skip(b, pos, wt); !ok {
			return false
		}
	}
	return true
}

func validAny(b []byte, depth int) bool {
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		want := map[int32]int8{1: wireLen, 2: wireVarint, 3: wireVarint, 4: wireI64, 5: wireLen, 6: wireLen, 7: wireLen, 8: wireVarint}
		if w, known := want[num]; known && w != wt {
			return false
		}
		if num == 5 || num == 6 {
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			if num == 5 && !validArray(v, depth+1) || num == 6 && !validKVList(v, depth+1) {
				return false
			}
			continue
		}
		if pos, ok = skip(b, pos, wt); !ok {
			return false
		}
	}
	return true
}

// complexValue builds the pdata value of an AnyValue's protobuf bytes (an
// array or map) by letting pdata decode it as a resource attribute.
func complexValue(anyValue string) pcommon.Value {
	kv := protowireAppendLen(nil, 2, anyValue)
	res := protowireAppendLen(nil, 1, string(kv))
	rs := protowireAppendLen(nil, 1, string(res))
	req := protowireAppendLen(nil, 1, string(rs))
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(req); err != nil || er.Traces().ResourceSpans().Len() != 1 {
		return pcommon.NewValueEmpty() // validated before: not reached
	}
	v, ok := er.Traces().ResourceSpans().At(0).Resource().Attributes().Get("")
	if !ok {
		return pcommon.NewValueEmpty()
	}
	return v
}

func protowireAppendLen(b []byte, num int, v string) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3|wireLen)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// --- values: the helpers of values.go for scalars -------------------------

// pv builds the pdata value (for the rare non-string types, so that their
// rendering is pdata's own).
func (v *rawVal) pv() pcommon.Value {
	switch v.typ {
	case pcommon.ValueTypeStr:
		return pcommon.NewValueStr(v.s)
	case pcommon.ValueTypeInt:
		return pcommon.NewValueInt(int64(v.n))
	case pcommon.ValueTypeDouble:
		return pcommon.NewValueDouble(math.Float64frombits(v.n))
	case pcommon.ValueTypeBool:
		return pcommon.NewValueBool(v.n != 0)
	case pcommon.ValueTypeBytes:
		x := pcommon.NewValueBytes()
		x.Bytes().FromRaw([]byte(v.s))
		return x
	case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
		return complexValue(v.s)
	}
	return pcommon.NewValueEmpty()
}

// Str is pcommon.Value.Str: "" unless a string.
func (v *rawVal) Str() string {
	if v.typ == pcommon.ValueTypeStr {
		return v.s
	}
	return ""
}

// str is valueString.
func (v *rawVal) str() string {
	switch v.typ {
	case pcommon.ValueTypeStr:
		return v.s
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(int64(v.n), 10)
	}
	return valueString(v.pv())
}

// short is short.
func (v *rawVal) short() string { return truncateUTF8(v.str(), MaxFieldLen) }

func (v *rawVal) int() (int64, bool) {
	switch v.typ {
	case pcommon.ValueTypeInt:
		return int64(v.n), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(strings.TrimSpace(v.s), 10, 64)
		return n, err == nil
	}
	return valueInt(v.pv())
}

func (v *rawVal) time() time.Time {
	if v.typ == pcommon.ValueTypeStr || v.typ == pcommon.ValueTypeInt {
		if n, ok := v.int(); ok {
			if n <= 0 || n > 1<<40 {
				return time.Time{}
			}
			return time.Unix(n, 0).UTC()
		}
		if v.typ == pcommon.ValueTypeStr {
			if t, err := time.Parse(time.RFC3339Nano, v.s); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	return valueTime(v.pv())
}

func getRaw(kvs []rawKV, key string) (*rawVal, bool) {
	for i := range kvs {
		if kvs[i].key == key {
			return &kvs[i].v, true
		}
	}
	return nil, false
}

// --- mapping: mapping.go on the raw representation -----------------------

func (m *mapper) rawResource(attrs []rawKV) resInfo {
	var r resInfo
	if v, ok := getRaw(attrs, "service.name"); ok {
		r.serviceName = v.short()
	}
	if v, ok := getRaw(attrs, "service.instance.id"); ok {
		r.serviceInstance = v.short()
	}
	if v, ok := getRaw(attrs, "host.name"); ok {
		r.hostName = v.short()
	}
	if v, ok := getRaw(attrs, "mcpwatch.observer"); ok {
		r.observer = parseObserver(v.short())
	}
	r.tenant = m.o.Tenant
	if r.tenant == "" {
		if v, ok := getRaw(attrs, "mcpwatch.tenant"); ok {
			r.tenant = v.short()
		}
	}
	if r.tenant == "" {
		r.tenant = DefaultTenant
	}
	return r
}

// rawApplyAttrs is applyAttrs.
func (m *mapper) rawApplyAttrs(e *Event, s *scratch, attrs []rawKV) {
	s.attrCount = len(attrs)
	for i := range attrs {
		k, v := attrs[i].key, &attrs[i].v
		a, ok := attrIndex[k]
		if !ok {
			switch k {
			case "traceloop.entity.input":
				s.tlInput, s.hasTraceloop = v.str(), true
				continue
			case "traceloop.entity.output":
				s.tlOutput, s.hasTraceloop = v.str(), true
				continue
			case "traceloop.span.kind":
				s.tlSpanKind, s.hasTraceloop = v.short(), true
				continue
			case "traceloop.entity.name":
				s.tlName, s.hasTraceloop = v.short(), true
				continue
			case "traceloop.workflow.name":
				s.tlWorkflow = v.short()
				continue
			}
			rawAddExtra(e, s, k, v)
			continue
		}
		if !s.take(a) {
			continue
		}
		rawSetField(e, s, a.Field, v)
	}
	if s.extrasDropped > 0 {
		e.AttrKeys = append(e.AttrKeys, "mcpwatch.attrs_dropped")
		e.AttrValues = append(e.AttrValues, strconv.Itoa(s.extrasDropped))
	}
}

func rawAddExtra(e *Event, s *scratch, k string, v *rawVal) {
	if len(e.AttrKeys) >= MaxExtraAttrs {
		s.extrasDropped++
		return
	}
	if e.AttrKeys == nil {
		n := min(s.attrCount, MaxExtraAttrs) + 1
		e.AttrKeys, e.AttrValues = make([]string, 0, n), make([]string, 0, n)
	}
	e.AttrKeys = append(e.AttrKeys, truncateUTF8(k, MaxExtraKeyLen))
	e.AttrValues = append(e.AttrValues, truncateUTF8(v.str(), MaxExtraValueLen))
}

// rawSetField is setField: string and int values natively, other scalars
// through their pdata value.
func rawSetField(e *Event, s *scratch, f field, v *rawVal) {
	if v.typ != pcommon.ValueTypeStr && v.typ != pcommon.ValueTypeInt {
		setField(e, s, f, v.pv())
		return
	}
	switch f {
	case fMethod:
		e.Method = v.short()
	case fProtocolVersion:
		e.ProtocolVersion = v.short()
	case fTransport:
		e.Transport = v.short()
	case fSessionID:
		e.SessionID = v.short()
	case fRequestID:
		e.RequestID = v.short()
	case fConversationID:
		e.ConversationID = v.short()
	case fAgentID:
		e.AgentID = v.short()
	case fAgentName:
		e.AgentName = v.short()
	case fUserID:
		e.UserID = v.short()
	case fClientName:
		e.ClientName = v.short()
	case fClientVersion:
		e.ClientVersion = v.short()
	case fClientAddress:
		e.ClientAddress = v.short()
	case fUserAgent:
		e.UserAgent = v.short()
	case fServerName:
		e.ServerName = v.short()
	case fServerVersion:
		e.ServerVersion = v.short()
	case fServerAddress:
		e.ServerAddress = v.short()
	case fServerPort:
		if n, ok := v.int(); ok && n >= 0 && n <= 65535 {
			e.ServerPort = uint16(n)
		}
	case fToolName:
		e.ToolName = v.short()
	case fToolCallID:
		e.ToolCallID = v.short()
	case fPromptName:
		e.PromptName = v.short()
	case fResourceURI:
		e.ResourceURI = v.short()
	case fArguments:
		e.Arguments = v.str()
		e.ArgumentsSize = clampU32(len(e.Arguments))
	case fResult:
		e.Result = v.str()
		e.ResultSize = clampU32(len(e.Result))
	case fErrorType:
		e.ErrorType = v.short()
	case fStatusCode:
		if n, ok := v.int(); ok && n >= -1<<31 && n < 1<<31 {
			e.StatusCode = int32(n)
		}
	case fOrigin:
		e.Origin = v.short()
	case fTokenSubject:
		e.TokenSubject = v.short()
	case fTokenAudience:
		e.TokenAudience = v.str()
	case fTokenExpires:
		e.TokenExpires = v.time()
	case fScopes:
		f := strings.FieldsFunc(v.short(), func(r rune) bool { return r == ' ' || r == ',' })
		if len(f) == 0 {
			f = nil
		}
		if len(f) > MaxExtraAttrs {
			f = f[:MaxExtraAttrs]
		}
		e.Scopes = f
	case fToolDescription:
		e.ToolDescription = v.str()
	case fToolInputSchema:
		e.ToolInputSchema = canonicalOrRaw(v.str())
	case fToolAnnotations:
		e.ToolAnnotations = canonicalOrRaw(v.str())
	case fObserver:
		s.observer = parseObserver(v.short())
	case fDecision:
		s.decision = v.short()
	case fIsError:
		s.isError, _ = strconv.ParseBool(v.short())
	case fOperation:
		s.operation = v.short()
	case fToolDefinitions:
		s.toolDefs = v.str()
	case fEventName:
		s.eventName = v.short()
	case fTenant:
		// Only the resource attribute (or the sender) sets the tenant.
	}
}

// rawClassify is classify.
func rawClassify(scope string, sp *rawSpanRec, attrs []rawKV) spanShape {
	if v, ok := getRaw(attrs, "mcp.method.name"); ok && v.Str() != "" {
		return shapeSemconv
	}
	if v, ok := getRaw(attrs, "mcp.method"); ok && v.Str() != "" {
		return shapeSemconv
	}
	if v, ok := getRaw(attrs, "gen_ai.operation.name"); ok && v.Str() == "execute_tool" {
		return shapeExecTool
	}
	name := sp.name
	if strings.HasSuffix(name, ".mcp") && len(name) > 4 && rawIsTraceloop(scope, attrs) {
		if name == "mcp.client.session" || name == "mcp.server.session" {
			return shapeNone
		}
		return shapeTLMethod
	}
	if strings.HasSuffix(name, ".tool") && len(name) > 5 && rawIsTraceloop(scope, attrs) {
		return shapeTLTool
	}
	if _, ok := getRaw(attrs, "mcp.tool.name"); ok {
		return shapeToolAlias
	}
	if _, ok := gatewaySpanMethods[name]; ok {
		return shapeGatewayName
	}
	return shapeNone
}

func rawIsTraceloop(scope string, attrs []rawKV) bool {
	if strings.Contains(scope, "traceloop") || strings.Contains(scope, "instrumentation.mcp") ||
		strings.Contains(scope, "instrumentation-mcp") {
		return true
	}
	if _, ok := getRaw(attrs, "traceloop.span.kind"); ok {
		return true
	}
	if _, ok := getRaw(attrs, "traceloop.entity.input"); ok {
		return true
	}
	_, ok := getRaw(attrs, "traceloop.entity.output")
	return ok
}

// rawExceptionType is exceptionType.
func (p *rawTraces) exceptionType(sp *rawSpanRec) string {
	for _, ev := range p.evs[sp.events.lo:sp.events.hi] {
		if ev.name != "exception" {
			continue
		}
		if v, ok := getRaw(p.kvs[ev.attrs.lo:ev.attrs.hi], "exception.type"); ok {
			return v.short()
		}
	}
	return ""
}

func isZero8(b *[8]byte) bool { return *b == [8]byte{} }

// rawSpan is mapper.span.
func (m *mapper) rawSpan(p *rawTraces, res *resInfo, sp *rawSpanRec) {
	attrs := p.kvs[sp.attrs.lo:sp.attrs.hi]
	shape := rawClassify(sp.scope, sp, attrs)
	if shape == shapeNone {
		m.drop(DropNotMCP)
		if v, ok := getRaw(attrs, "mcp.request.id"); ok {
			if !isZero8(&sp.psid) {
				if m.childRequestIDs == nil {
					m.childRequestIDs = make(map[pcommon.SpanID]string)
				}
				m.childRequestIDs[pcommon.SpanID(sp.psid)] = v.short()
			}
		}
		return
	}
	if sp.tid == [16]byte{} {
		m.drop(DropInvalidTraceID)
		return
	}
	// The slice beyond its length is zero (fresh, or cleared by
	// Batch.Release; nothing cuts it back), so the event needs no zeroing.
	if n := len(m.b.Events); n < cap(m.b.Events) {
		m.b.Events = m.b.Events[:n+1]
	} else {
		m.b.Events = append(m.b.Events, Event{})
	}
	e := &m.b.Events[len(m.b.Events)-1]
	e.Tenant = res.tenant
	e.Kind = KindMessage
	e.Source = SourceSpan
	e.ServiceName = res.serviceName
	e.ServiceInstance = res.serviceInstance
	e.HostName = res.hostName
	e.IngestedAt = m.o.ReceivedAt
	e.Outcome = OutcomeOK
	var ids [64]byte
	hex.Encode(ids[:32], sp.tid[:])
	n := 32
	if !isZero8(&sp.sid) {
		hex.Encode(ids[32:48], sp.sid[:])
		n = 48
	}
	e.EventID = string(ids[:n])
	e.TraceID = e.EventID[:32]
	e.SpanID = e.EventID[32:n]
	if !isZero8(&sp.psid) {
		e.ParentSpanID = hex.EncodeToString(sp.psid[:])
	}
	start, end := pcommon.Timestamp(sp.start), pcommon.Timestamp(sp.end)
	if start != 0 {
		e.Time = start.AsTime().UTC()
	} else {
		e.Time = m.o.ReceivedAt
	}
	if end > start && start != 0 {
		e.DurationNs = uint64(end - start)
	}

	var s scratch
	m.rawApplyAttrs(e, &s, attrs)

	e.Observer = s.observer
	if e.Observer == "" {
		e.Observer = res.observer
	}
	if e.Observer == "" {
		switch ptrace.SpanKind(sp.kind) {
		case ptrace.SpanKindServer:
			e.Observer = ObserverServer
		case ptrace.SpanKindClient:
			e.Observer = ObserverClient
		case ptrace.SpanKindInternal, ptrace.SpanKindUnspecified:
			switch {
			case shape == shapeTLTool && strings.HasSuffix(s.tlWorkflow, ".mcp"):
				e.Observer = ObserverServer
			case shape == shapeTLMethod || shape == shapeTLTool:
				e.Observer = ObserverClient
			default:
				e.Observer = ObserverUnknown
			}
		default:
			e.Observer = ObserverUnknown
		}
	}

	name := sp.name
	switch shape {
	case shapeExecTool, shapeToolAlias:
		if e.Method == "" {
			e.Method = "tools/call"
		}
	case shapeGatewayName:
		if e.Method == "" {
			e.Method = gatewaySpanMethods[name]
		}
	case shapeTLMethod:
		if e.Method == "" {
			e.Method = name[:len(name)-len(".mcp")]
		}
	case shapeTLTool:
		if e.Method == "" {
			e.Method = "tools/call"
		}
		if e.ToolName == "" {
			if s.tlName != "" {
				e.ToolName = s.tlName
			} else {
				e.ToolName = name[:len(name)-len(".tool")]
			}
		}
	}
	if shape == shapeSemconv || shape == shapeExecTool {
		if i := strings.Index(name, e.Method+" "); e.Method != "" && i >= 0 {
			target := name[i+len(e.Method)+1:]
			switch e.Method {
			case "tools/call":
				if e.ToolName == "" {
					e.ToolName = target
				}
			case "prompts/get":
				if e.PromptName == "" {
					e.PromptName = target
				}
			}
		}
	}

	if e.ServerName == "" && len(s.tlWorkflow) > len(".mcp") && strings.HasSuffix(s.tlWorkflow, ".mcp") {
		e.ServerName = strings.TrimSuffix(s.tlWorkflow, ".mcp")
	}
	var defs []toolDef
	if s.hasTraceloop {
		defs = m.traceloop(e, &s)
	}

	if ptrace.StatusCode(sp.statusCode) == ptrace.StatusCodeError {
		e.Outcome = OutcomeError
		if e.ErrorType == "" || e.StatusCode == 0 {
			excType := p.exceptionType(sp)
			if e.ErrorType == "" {
				e.ErrorType = excType
			}
			if e.StatusCode == 0 {
				if n, err := strconv.ParseInt(excType, 10, 32); err == nil {
					e.StatusCode = int32(n)
				}
			}
		}
		if e.ErrorType == "" && e.StatusCode == 0 {
			if n, ok := mcpErrorCode(sp.statusMsg); ok {
				e.StatusCode = n
				e.ErrorType = strconv.Itoa(int(n))
			}
		}
		if e.ErrorType == "" {
			e.ErrorType = "_OTHER"
		}
	}
	if e.StatusCode == 0 && e.ErrorType != "" {
		if n, err := strconv.ParseInt(e.ErrorType, 10, 32); err == nil {
			e.StatusCode = int32(n)
		}
	}
	m.finishOutcome(e, &s)
	m.finishSession(e)

	if s.toolDefs != "" {
		parsed, ok := parseToolDefinitions(s.toolDefs)
		if !ok {
			m.drop(DropInvalidToolDefs)
		}
		defs = append(defs, parsed...)
	}
	if len(defs) > 0 {
		msg := *e
		m.emitToolDefs(&msg, defs)
	}
}
