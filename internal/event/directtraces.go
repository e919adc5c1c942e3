package event

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TracesFromProto maps an OTLP ExportTraceServiceRequest, as protobuf
// bytes, directly onto events, without building pdata (no per-attribute
// objects; every string is a slice of one copy of the input).
//
// It is the only mapping of traces (FromTraces maps pdata's protobuf
// encoding with it) and reads every request pdata writes. It returns
// ok=false, having mapped nothing, for malformed protobuf and for the
// encodings pdata reads but never writes (a KeyValue with two keys or
// values, an AnyValue with two values, which pdata merges); the caller
// then decodes with pdata (which also reports malformed input) and calls
// FromTraces, which maps pdata's re-encoding. spans is the request's span
// count. testdata/golden pins the result; FuzzDirectTraces checks that it
// accepts nothing pdata rejects, reads pdata's encoding of anything pdata
// reads, and maps a body as it maps pdata's re-encoding of it.
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
		res := m.resource(p.kvs[r.attrs.lo:r.attrs.hi])
		for si := r.spans.lo; si < r.spans.hi; si++ {
			m.span(p, &res, &p.spans[si])
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
			if num == 1 && !p.resource(v) {
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
		if num == 2 || num == 1000 {
			v, np, _ := rdLen(b, pos)
			pos = np
			// 1000, the deprecated instrumentation_library_spans: pdata
			// decodes it (it must be valid) but maps only scope_spans.
			nspans, nkvs, nevs := len(p.spans), len(p.kvs), len(p.evs)
			if !p.scopeSpans(v) {
				return false
			}
			if num == 1000 {
				p.spans, p.kvs, p.evs = p.spans[:nspans], p.kvs[:nkvs], p.evs[:nevs]
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

// keyValue appends one KeyValue. A repeated key or value field (which
// pdata merges) is not handled.
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
		case 3: // key_strindex (profiles): read, not used, as in pdata
			if wt != wireVarint {
				return false
			}
			if _, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	p.kvs = append(p.kvs, kv)
	return true
}

// anyValue reads an AnyValue (1 string, 2 bool, 3 int, 4 double, 7 bytes,
// 5 array and 6 kvlist kept as their encoding, 8 string_value_strindex
// which pdata's Value reads as empty); two value fields are not handled.
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
			if wt != wireVarint {
				return false
			}
			if _, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
			*out = rawVal{typ: pcommon.ValueTypeEmpty}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	return true
}

// validArray and validKVList check nested values as pdata decodes them:
// ArrayValue{1: AnyValue}, KeyValueList{1: KeyValue}.
func validArray(b []byte, depth int) bool  { return validRepeated(b, depth, validAny) }
func validKVList(b []byte, depth int) bool { return validRepeated(b, depth, validKV) }

func validRepeated(b []byte, depth int, elem func([]byte, int) bool) bool {
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

// strings reads an array of strings, or a space/comma-separated string.
func (v *rawVal) strings() []string {
	if v.typ != pcommon.ValueTypeSlice {
		return splitScopes(v.short())
	}
	sl := v.pv().Slice()
	out := make([]string, 0, sl.Len())
	for i := 0; i < sl.Len() && i < MaxExtraAttrs; i++ {
		out = append(out, truncateUTF8(valueString(sl.At(i)), MaxExtraValueLen))
	}
	return out
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
