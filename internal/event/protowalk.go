package event

import (
	"encoding/binary"
	"reflect"
	"slices"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Reading OTLP protobuf without pdata: the wire format, and the messages
// traces and logs share (the request, ResourceSpans/ResourceLogs and
// ScopeSpans/ScopeLogs down to their records, Resource,
// InstrumentationScope, KeyValue, AnyValue), accepting and rejecting
// exactly what pdata's generated decoders accept and reject (field numbers
// are int32(tag>>3), varints of up to 10 bytes, a known field with another
// wire type is an error, unknown fields are skipped, groups are errors).
// directtraces.go and directlogs.go read the records.

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

// wireReader reads the fields of one message: next reads the next field's
// number, wire type and value (v for a length-delimited field, n for a
// varint or fixed64). At the end, or on malformed input (bad), it reports
// false.
type wireReader struct {
	b   []byte
	pos int
	num int32
	wt  int8
	v   []byte
	n   uint64
	bad bool
}

func fields(b []byte) wireReader { return wireReader{b: b} }

func (f *wireReader) next() bool {
	b, pos := f.b, f.pos
	if pos >= len(b) {
		return false
	}
	// Inline: a one-byte tag with a length of up to two bytes, a one-byte
	// varint or a fixed64 (nearly every field of a request).
	t := b[pos]
	if t >= 0x80 || t>>3 == 0 || pos+1 >= len(b) {
		return f.nextSlow()
	}
	p := pos + 1
	switch t & 7 {
	case wireLen:
		l := int(b[p])
		p++
		if l >= 0x80 {
			if p >= len(b) || b[p] >= 0x80 {
				return f.nextSlow()
			}
			l, p = l&0x7f|int(b[p])<<7, p+1
		}
		end := p + l
		if end > len(b) {
			return f.nextSlow()
		}
		f.v, p = b[p:end], end
	case wireVarint:
		if b[p] >= 0x80 {
			return f.nextSlow()
		}
		f.n, p = uint64(b[p]), p+1
	case wireI64:
		if p+8 > len(b) {
			return f.nextSlow()
		}
		f.n, p = binary.LittleEndian.Uint64(b[p:]), p+8
	default:
		return f.nextSlow()
	}
	f.num, f.wt, f.pos = int32(t>>3), int8(t&7), p
	return true
}

func (f *wireReader) nextSlow() bool {
	num, wt, pos, ok := rdTag(f.b, f.pos)
	if ok {
		switch wt {
		case wireVarint:
			f.n, pos, ok = rdVarint(f.b, pos)
		case wireI64:
			f.n, pos, ok = rdFixed64(f.b, pos)
		case wireLen:
			f.v, pos, ok = rdLen(f.b, pos)
		case wireI32:
			pos += 4
			ok = pos <= len(f.b)
		default: // groups and invalid wire types
			ok = false
		}
	}
	if !ok {
		f.bad = true
		return false
	}
	f.num, f.wt, f.pos = num, wt, pos
	return true
}

// rdID reads a trace or span id as pdata does: empty (all zero) or exactly
// len(id) bytes.
func rdID(id, v []byte) bool {
	switch len(v) {
	case 0:
		clear(id)
	case len(id):
		copy(id, v)
	default:
		return false
	}
	return true
}

// span32 is a range of indexes into one of a request's slices.
type span32 struct{ lo, hi int32 }

// rawVal is an OTLP AnyValue; an array or map is kept as its encoding.
type rawVal struct {
	typ pcommon.ValueType
	s   string // string and bytes values; an array's or map's AnyValue encoding
	n   uint64 // int (two's complement), double (bits), bool (0/1)
}

type rawKV struct {
	key string
	v   rawVal
}

// rawRes is one ResourceSpans or ResourceLogs.
type rawRes struct {
	attrs span32 // the resource's attributes, in kvs
	items span32 // its spans or log records
}

// recordReader reads the records (spans or log records) of a request.
type recordReader interface {
	record(b []byte, scope string) bool // reads one; scope is its scope's name
	count() int                         // how many were read
}

// walker holds one parsed request's body, resources and KeyValues; the
// traces and logs readers embed it. Every string read is a slice of str
// (the body, read in place through full).
type walker struct {
	full []byte
	str  string
	res  []rawRes
	kvs  []rawKV
	n    int        // records in res: those to map
	post []postItem // the mapper's, kept for the next request

	lim    DecodeLimits
	depth  int // AnyValues around the one being read
	values int // array and map elements read
}

func (w *walker) reset() {
	w.full, w.str = nil, ""
	w.res, w.kvs, w.n = w.res[:0], w.kvs[:0], 0
	w.lim, w.depth, w.values = DecodeLimits{}, 0, 0
}

// grow makes room in s for one more element: a full slice doubles, as
// append does, once the limits allowed the new array (false: refused).
func grow[T any](w *walker, s []T) ([]T, bool) {
	if len(s) < cap(s) { // inlined: nearly every call
		return s, true
	}
	return regrow(w, s)
}

func regrow[T any](w *walker, s []T) ([]T, bool) {
	n := 2*cap(s) + 8
	if w.lim.Grow != nil && !w.lim.Grow(int64(n)*int64(reflect.TypeFor[T]().Size())) {
		return s, false
	}
	return slices.Grow(s, n-len(s)), true
}

// admit parses a request (s, its records read by rr) within lim and asks
// lim.Admit to map it.
func (w *walker) admit(s string, rr recordReader, lim DecodeLimits) bool {
	w.lim = lim
	return w.parse(s, rr) && (lim.Admit == nil || lim.Admit(w.n, w.values))
}

// sub returns the string for b, a subslice of w.full.
func (w *walker) sub(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := cap(w.full) - cap(b)
	return w.str[start : start+len(b)]
}

// parse reads an Export(Trace|Logs)ServiceRequest held in s, its records
// with rr.
func (w *walker) parse(s string, rr recordReader) bool {
	w.str, w.full = s, unsafe.Slice(unsafe.StringData(s), len(s))
	f := fields(w.full)
	for f.next() {
		if f.num == 1 && (f.wt != wireLen || !w.resourceOf(f.v, rr)) {
			return false
		}
	}
	return !f.bad
}

// resourceOf reads a ResourceSpans or ResourceLogs: the resource first
// (its attributes lead the kvs of its records), then each scope_spans or
// scope_logs. The deprecated instrumentation_library_spans/logs (1000)
// replace them when there are none, else pdata decodes (so they must be
// valid) and drops them (otlp.MigrateTraces/MigrateLogs): their records are
// then read after the resource's items and belong to no resource.
func (w *walker) resourceOf(b []byte, rr recordReader) bool {
	r := rawRes{attrs: span32{int32(len(w.kvs)), 0}}
	scopes := int32(1000) // the field mapped: 1000 unless there is a 2
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1, 2, 3, 1000:
			if f.wt != wireLen || f.num == 1 && !w.resource(f.v) {
				return false
			}
			if f.num == 2 {
				scopes = 2
			}
		}
	}
	if f.bad {
		return false
	}
	r.attrs.hi = int32(len(w.kvs))
	r.items.lo = int32(rr.count())
	for f = fields(b); f.next(); {
		if f.num == scopes && !w.scopeOf(f.v, rr) {
			return false
		}
	}
	r.items.hi = int32(rr.count())
	for f = fields(b); scopes == 2 && f.next(); {
		if f.num == 1000 && !w.scopeOf(f.v, rr) {
			return false
		}
	}
	var ok bool
	if w.res, ok = grow(w, w.res); !ok {
		return false
	}
	w.res = append(w.res, r)
	w.n += int(r.items.hi - r.items.lo)
	return true
}

// scopeOf reads a ScopeSpans or ScopeLogs: the scope first (it may follow
// the records on the wire), then each record with rr.
func (w *walker) scopeOf(b []byte, rr recordReader) bool {
	var scope string
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1, 2, 3:
			if f.wt != wireLen {
				return false
			}
			if f.num == 1 {
				var ok bool
				if scope, ok = w.scope(f.v, scope); !ok {
					return false
				}
			}
		}
	}
	if f.bad {
		return false
	}
	for f = fields(b); f.next(); {
		if f.num == 2 && !rr.record(f.v, scope) {
			return false
		}
	}
	return true
}

// resource appends the resource's attributes (a repeated Resource field
// merges, as in pdata).
func (w *walker) resource(b []byte) bool {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1: // attributes
			if f.wt != wireLen || !w.keyValue(f.v) {
				return false
			}
		case 2: // dropped_attributes_count
			if f.wt != wireVarint {
				return false
			}
		case 3: // entity_refs
			if f.wt != wireLen || !validEntityRef(f.v) {
				return false
			}
		}
	}
	return !f.bad
}

// validEntityRef checks an EntityRef (1 schema_url, 2 type, 3 id_keys,
// 4 description_keys: all strings).
func validEntityRef(b []byte) bool {
	f := fields(b)
	for f.next() {
		if f.num >= 1 && f.num <= 4 && f.wt != wireLen {
			return false
		}
	}
	return !f.bad
}

// scope reads an InstrumentationScope's name (repeated scopes merge: the
// last name present wins) and validates the rest.
func (w *walker) scope(b []byte, name string) (string, bool) {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1, 2, 3: // name, version, attributes
			if f.wt != wireLen || f.num == 3 && !w.validKV(f.v) {
				return "", false
			}
			if f.num == 1 {
				name = w.sub(f.v)
			}
		case 4: // dropped_attributes_count
			if f.wt != wireVarint {
				return "", false
			}
		}
	}
	return name, !f.bad
}

// keyValue appends one KeyValue. A repeated key or value field (which
// pdata merges, and never writes) is not handled.
func (w *walker) keyValue(b []byte) bool {
	if key, str, ok := strKeyValue(b); ok {
		return !w.tooDeep() && w.addStrKV(key, str)
	}
	kv := rawKV{v: rawVal{typ: pcommon.ValueTypeEmpty}}
	seenKey, seenVal := false, false
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if f.wt != wireLen || seenKey {
				return false
			}
			kv.key, seenKey = w.sub(f.v), true
		case 2:
			if f.wt != wireLen || seenVal || !w.anyValue(f.v, &kv.v) {
				return false
			}
			seenVal = true
		case 3: // key_strindex (profiles): read, not used, as in pdata
			if f.wt != wireVarint {
				return false
			}
		}
	}
	if f.bad {
		return false
	}
	var ok bool
	if w.kvs, ok = grow(w, w.kvs); !ok {
		return false
	}
	w.kvs = append(w.kvs, kv)
	return true
}

// addStrKV appends the string attribute strKeyValue read (false: the
// limits refused the memory).
func (w *walker) addStrKV(key, str []byte) bool {
	var ok bool
	if w.kvs, ok = grow(w, w.kvs); !ok {
		return false
	}
	w.kvs = append(w.kvs, rawKV{key: w.sub(key), v: rawVal{typ: pcommon.ValueTypeStr, s: w.sub(str)}})
	return true
}

// strKeyValue reads, without the field loop, the KeyValue nearly every
// attribute is: a key (1) and a value (2) holding only a string_value (1),
// in either order (pdata writes the value first, protobuf-go the key),
// every length a varint of one or two bytes, nothing else. Anything else
// reports false and is read by keyValue's loop, which maps these bytes
// alike.
func strKeyValue(b []byte) (key, str []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	const keyTag, valTag = 1<<3 | wireLen, 2<<3 | wireLen
	t1 := b[0]
	if t1 != keyTag && t1 != valTag {
		return nil, nil, false
	}
	l1, p := len2(b, 1)
	if l1 < 0 || p+l1+2 > len(b) || b[p+l1] != keyTag^valTag^t1 { // the other field
		return nil, nil, false
	}
	f1 := b[p : p+l1]
	l2, q := len2(b, p+l1+1)
	if l2 < 0 || q+l2 != len(b) {
		return nil, nil, false
	}
	key, val := f1, b[q:]
	if t1 == valTag {
		key, val = val, f1
	}
	// val must be exactly one string_value field.
	if len(val) < 2 || val[0] != 1<<3|wireLen {
		return nil, nil, false
	}
	sl, r := len2(val, 1)
	if sl < 0 || r+sl != len(val) {
		return nil, nil, false
	}
	return key, val[r:], true
}

// len2 reads a length of one or two varint bytes at b[p:]; -1 for
// anything else (longer, or past the end).
func len2(b []byte, p int) (int, int) {
	if p >= len(b) {
		return -1, p
	}
	if c := b[p]; c < 0x80 {
		return int(c), p + 1
	}
	if p+1 >= len(b) || b[p+1] >= 0x80 {
		return -1, p
	}
	return int(b[p]&0x7f) | int(b[p+1])<<7, p + 2
}

// validKV checks a KeyValue without keeping it.
func (w *walker) validKV(b []byte) bool {
	n := len(w.kvs)
	ok := w.keyValue(b)
	w.kvs = w.kvs[:n]
	return ok
}

// anyValue reads an AnyValue (1 string, 2 bool, 3 int, 4 double, 7 bytes,
// 5 array and 6 kvlist kept as their encoding, 8 string_value_strindex
// which pdata's Value reads as empty). Two value fields (which pdata
// merges, and never writes) are not handled.
func (w *walker) anyValue(b []byte, out *rawVal) bool {
	if w.tooDeep() {
		return false
	}
	seen := false
	f := fields(b)
	for f.next() {
		if f.num < 1 || f.num > 8 {
			continue
		}
		if seen {
			return false
		}
		seen = true
		switch f.num {
		case 1, 7: // string, bytes
			if f.wt != wireLen {
				return false
			}
			out.s, out.typ = w.sub(f.v), pcommon.ValueTypeStr
			if f.num == 7 {
				out.typ = pcommon.ValueTypeBytes
			}
		case 2: // bool
			if f.wt != wireVarint {
				return false
			}
			out.n, out.typ = 0, pcommon.ValueTypeBool
			if f.n != 0 {
				out.n = 1
			}
		case 3: // int
			if f.wt != wireVarint {
				return false
			}
			out.n, out.typ = f.n, pcommon.ValueTypeInt
		case 4: // double
			if f.wt != wireI64 {
				return false
			}
			out.n, out.typ = f.n, pcommon.ValueTypeDouble
		case 5, 6: // array, kvlist: validated, kept raw, built with pdata if used
			if f.wt != wireLen {
				return false
			}
			w.depth++
			ok := w.validList(f.v, f.num)
			w.depth--
			if !ok {
				return false
			}
			out.s, out.typ = w.sub(b), pcommon.ValueTypeSlice
			if f.num == 6 {
				out.typ = pcommon.ValueTypeMap
			}
		case 8: // string_value_strindex (profiles)
			if f.wt != wireVarint {
				return false
			}
			*out = rawVal{typ: pcommon.ValueTypeEmpty}
		}
	}
	return !f.bad
}

// tooDeep reports whether an AnyValue read now, at level depth+1, is past
// the limit.
func (w *walker) tooDeep() bool {
	return w.lim.MaxValueDepth > 0 && w.depth >= w.lim.MaxValueDepth
}

// validList checks an ArrayValue (kind 5: field 1 repeats an AnyValue) or
// a KeyValueList (kind 6: field 1 repeats a KeyValue), keeping nothing but
// the count of its elements; the caller bounds the depth (anyValue).
func (w *walker) validList(b []byte, kind int32) bool {
	f := fields(b)
	for f.next() {
		if f.num != 1 {
			continue
		}
		w.values++
		var elem rawVal
		if f.wt != wireLen || kind == 5 && !w.anyValue(f.v, &elem) || kind == 6 && !w.validKV(f.v) {
			return false
		}
	}
	return !f.bad
}

// mapRecords maps the records of every resource, in order, with item.
func (w *walker) mapRecords(o MapOptions, item func(m *mapper, res *resInfo, resAttrs []rawKV, i int32)) Batch {
	m := newMapper(o)
	m.b.Events = getEvents(w.n)
	m.post = w.post[:0]
	for ri := range w.res {
		r := &w.res[ri]
		attrs := w.kvs[r.attrs.lo:r.attrs.hi]
		m.res = append(m.res, m.resource(attrs))
		res := &m.res[len(m.res)-1]
		for i := r.items.lo; i < r.items.hi; i++ {
			item(m, res, attrs, i)
		}
	}
	m.propagate()
	m.finishIdentity()
	for i := range m.b.Events {
		m.b.Events[i].sanitize() // text.go
	}
	w.post = m.post[:0]
	return m.b
}
