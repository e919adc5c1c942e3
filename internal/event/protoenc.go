package event

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"unsafe"
)

// A direct protobuf encoder for ExportLogsServiceRequest
// (opentelemetry/proto/collector/logs/v1). Every message length is known
// before it is written: pbWriter runs encodeRecord once counting bytes and
// once writing them, and attribute sizes have closed forms (a KeyValue holds
// a key and an AnyValue with a string, an int or an array of strings).
//
// Field numbers used:
//   ExportLogsServiceRequest: 1 resource_logs
//   ResourceLogs: 1 resource, 2 scope_logs
//   Resource: 1 attributes          InstrumentationScope: 1 name
//   ScopeLogs: 1 scope, 2 log_records
//   LogRecord: 1 time_unix_nano (fixed64), 6 attributes, 9 trace_id,
//              10 span_id, 11 observed_time_unix_nano (fixed64), 12 event_name
//   KeyValue: 1 key, 2 value
//   AnyValue: 1 string_value, 3 int_value, 5 array_value
//   ArrayValue: 1 values

const (
	wtVarint  = 0
	wtFixed64 = 1
	wtBytes   = 2
)

// pbWriter counts bytes (counting) or writes them into b at off. b is
// allocated to the exact size first, so writing never grows it and never
// stores a pointer (no GC write barriers on the hot path).
type pbWriter struct {
	b        []byte
	off      int
	n        int
	counting bool
	// grow: b is a scratch buffer of unknown final size; every write makes
	// room first (ValueEncoder's single pass).
	grow bool
}

// room makes room for n more bytes at off (grow mode only).
func (w *pbWriter) room(n int) {
	if !w.grow || w.off+n <= len(w.b) {
		return
	}
	nb := make([]byte, max(2*len(w.b), w.off+n+1024))
	copy(nb, w.b[:w.off])
	w.b = nb
}

func (w *pbWriter) varint(x uint64) {
	w.room(10)
	for x >= 0x80 {
		w.b[w.off] = byte(x) | 0x80
		w.off++
		x >>= 7
	}
	w.b[w.off] = byte(x)
	w.off++
}

// tag writes a field's tag: one byte, as every field number written here
// is below 16 (the tests compare the output with pdata's).
func (w *pbWriter) tag(num, wt int) {
	w.room(1)
	w.b[w.off] = byte(num<<3 | wt)
	w.off++
}

func (w *pbWriter) raw(s string) {
	w.room(len(s))
	w.off += copy(w.b[w.off:], s)
}

func sov(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// tagLen is a tag's size: one byte, as for tag.
func tagLen(int) int { return 1 }

// lenField is the size of a length-delimited field with an n-byte payload.
func lenField(num, n int) int { return tagLen(num) + sov(uint64(n)) + n }

func (w *pbWriter) fixed64(num int, v uint64) {
	if v == 0 {
		return
	}
	if w.counting {
		w.n += tagLen(num) + 8
		return
	}
	w.room(9)
	w.b[w.off] = byte(num<<3 | wtFixed64)
	binary.LittleEndian.PutUint64(w.b[w.off+1:], v)
	w.off += 9
}

// bytes is str for a byte slice (only read: no copy needed to view it as
// a string).
func (w *pbWriter) bytes(num int, v []byte) { w.str(num, unsafe.String(unsafe.SliceData(v), len(v))) }

// str writes a string field: room once, then unchecked writes.
func (w *pbWriter) str(num int, v string) {
	n := lenField(num, len(v))
	if w.counting {
		w.n += n
		return
	}
	w.room(n)
	b := w.b
	b[w.off] = byte(num<<3 | wtBytes)
	off := putUvarint(b, w.off+1, uint64(len(v)))
	w.off = off + copy(b[off:], v)
}

// attrField is the attributes field number of both Resource and LogRecord.
const attrField = 6

func anyStrSize(v string) int { return lenField(1, len(v)) }

func kvSize(key string, anySize int) int { return lenField(1, len(key)) + lenField(2, anySize) }

func (w *pbWriter) kvHeader(num int, key string, anySize int) {
	kv := kvSize(key, anySize)
	w.tag(num, wtBytes)
	w.varint(uint64(kv))
	w.tag(1, wtBytes)
	w.varint(uint64(len(key)))
	w.raw(key)
	w.tag(2, wtBytes)
	w.varint(uint64(anySize))
}

// strAttrN writes a string attribute as field num (6 for log records,
// 1 for resources); empty values are omitted.
func (w *pbWriter) strAttrN(num int, key, v string) {
	if v != "" {
		w.attr(num, key, 1<<3|wtBytes, uint64(len(v)), v)
	}
}

// attr writes attribute field num whose AnyValue is the one-byte tag t,
// the varint x, then v: a string (t string_value, x its length) or an int
// (t int_value, x the int, v empty). Both share this code without a branch.
func (w *pbWriter) attr(num int, key string, t byte, x uint64, v string) {
	as := 1 + sov(x) + len(v)
	kv := kvSize(key, as)
	if w.counting {
		w.n += lenField(num, kv)
		return
	}
	// Room for the whole attribute at once, then unchecked writes (all
	// the tags here are one byte: field numbers < 16).
	w.room(lenField(num, kv))
	b, off := w.b, w.off
	b[off] = byte(num<<3 | wtBytes)
	off = putUvarint(b, off+1, uint64(kv))
	b[off] = 1<<3 | wtBytes
	off = putUvarint(b, off+1, uint64(len(key)))
	off += copy(b[off:], key)
	b[off] = 2<<3 | wtBytes
	off = putUvarint(b, off+1, uint64(as))
	b[off] = t
	off = putUvarint(b, off+1, x)
	w.off = off + copy(b[off:], v)
}

// putUvarint writes x at b[off:] (which has room) and returns the new offset.
func putUvarint(b []byte, off int, x uint64) int {
	for x >= 0x80 {
		b[off] = byte(x) | 0x80
		off++
		x >>= 7
	}
	b[off] = byte(x)
	return off + 1
}

// strAttr and intAttr test for the zero value inline: most of an event's
// fields are empty, and a call per field costs more than the test.
func (w *pbWriter) strAttr(key, v string) {
	if v != "" {
		w.strAttrN(attrField, key, v)
	}
}

func (w *pbWriter) intAttr(key string, v int64) {
	if v != 0 {
		w.attr(attrField, key, 3<<3|wtVarint, uint64(v), "")
	}
}

func (w *pbWriter) strsAttr(key string, vs []string) {
	if len(vs) == 0 {
		return
	}
	arr := 0
	for _, v := range vs {
		arr += lenField(1, anyStrSize(v))
	}
	as := lenField(5, arr)
	if w.counting {
		w.n += lenField(attrField, kvSize(key, as))
		return
	}
	w.kvHeader(attrField, key, as)
	w.tag(5, wtBytes)
	w.varint(uint64(arr))
	for _, v := range vs {
		w.tag(1, wtBytes)
		w.varint(uint64(anyStrSize(v)))
		w.tag(1, wtBytes)
		w.varint(uint64(len(v)))
		w.raw(v)
	}
}

// constAttrs holds the encodings of a record attribute for the few values
// it nearly always has: writing one of them is a single copy instead of
// sizing and writing four fields.
type constAttrs struct {
	key        string
	vals, encs []string
}

func newConstAttrs(key string, vals ...string) constAttrs {
	c := constAttrs{key: key, vals: vals}
	for _, v := range vals {
		w := pbWriter{grow: true}
		w.strAttr(key, v)
		c.encs = append(c.encs, string(w.b[:w.off]))
	}
	return c
}

var (
	eventNameAttrs = newConstAttrs(attrEventName, AuditEventName)
	kindAttrs      = newConstAttrs(attrKind, string(KindMessage), string(KindToolDefinition))
	sourceAttrs    = newConstAttrs(attrSource, string(SourceSpan), string(SourceLog))
	observerAttrs  = newConstAttrs(attrObserver, string(ObserverServer), string(ObserverClient),
		string(ObserverGateway), string(ObserverUnknown))
	outcomeAttrs = newConstAttrs(attrOutcome, string(OutcomeOK), string(OutcomeError),
		string(OutcomeToolError), string(OutcomeDenied))
)

// constAttr writes c's attribute with value v (omitted if empty, as
// strAttr does).
func (w *pbWriter) constAttr(c *constAttrs, v string) {
	for i, x := range c.vals {
		// Events hold these very constants: equal data pointers settle
		// most comparisons without comparing bytes.
		if len(v) == len(x) && (unsafe.StringData(v) == unsafe.StringData(x) || v == x) {
			if w.counting {
				w.n += len(c.encs[i])
			} else {
				w.raw(c.encs[i])
			}
			return
		}
	}
	w.strAttr(c.key, v)
}

func recordSize(e *Event) int {
	w := pbWriter{counting: true}
	encodeRecord(&w, e)
	return w.n
}

func resourceAttrs(w *pbWriter, e *Event) {
	const resAttrField = 1
	w.strAttrN(resAttrField, attrTenant, e.Tenant)
	w.strAttrN(resAttrField, attrServiceName, e.ServiceName)
	w.strAttrN(resAttrField, attrServiceInstance, e.ServiceInstance)
	w.strAttrN(resAttrField, attrHostName, e.HostName)
}

func sameResource(a, b *Event) bool {
	return a.Tenant == b.Tenant && a.ServiceName == b.ServiceName &&
		a.ServiceInstance == b.ServiceInstance && a.HostName == b.HostName
}

// scopeField is every ScopeLogs' scope field (1): InstrumentationScope{name:
// ScopeName}, encoded once.
var scopeField = func() string {
	w := pbWriter{grow: true}
	w.tag(1, wtBytes)
	w.varint(uint64(lenField(1, len(ScopeName))))
	w.str(1, ScopeName)
	return string(w.b[:w.off])
}()

// appendRequest appends the ExportLogsServiceRequest for events to b.
func appendRequest(b []byte, events []Event) ([]byte, error) {
	var sizesBuf [8]int
	sizes := sizesBuf[:0]
	if len(events) > len(sizesBuf) {
		sizes = make([]int, 0, len(events))
	}
	for i := range events {
		sizes = append(sizes, recordSize(&events[i]))
	}
	// First pass: the total, to allocate once.
	total := 0
	for i := 0; i < len(events); {
		j, recs := i, 0
		for ; j < len(events) && sameResource(&events[i], &events[j]); j++ {
			recs += lenField(2, sizes[j])
		}
		rw := pbWriter{counting: true}
		resourceAttrs(&rw, &events[i])
		sl := len(scopeField) + recs
		rl := lenField(1, rw.n) + lenField(2, sl)
		total += lenField(1, rl)
		i = j
	}
	start := len(b)
	if cap(b)-len(b) < total {
		nb := make([]byte, len(b), len(b)+total)
		copy(nb, b)
		b = nb
	}
	w := pbWriter{b: b[:start+total], off: start}
	for i := 0; i < len(events); {
		j, recs := i, 0
		for ; j < len(events) && sameResource(&events[i], &events[j]); j++ {
			recs += lenField(2, sizes[j])
		}
		rw := pbWriter{counting: true}
		resourceAttrs(&rw, &events[i])
		sl := len(scopeField) + recs
		rl := lenField(1, rw.n) + lenField(2, sl)
		w.tag(1, wtBytes) // resource_logs
		w.varint(uint64(rl))
		w.tag(1, wtBytes) // resource
		w.varint(uint64(rw.n))
		resourceAttrs(&w, &events[i])
		w.tag(2, wtBytes) // scope_logs
		w.varint(uint64(sl))
		w.raw(scopeField)
		for k := i; k < j; k++ {
			w.tag(2, wtBytes) // log_records
			w.varint(uint64(sizes[k]))
			encodeRecord(&w, &events[k])
		}
		i = j
	}
	if w.off != len(w.b) {
		return nil, fmt.Errorf("cannot encode events: size mismatch %d != %d", w.off, len(w.b)) // a bug in the size functions
	}
	return w.b, nil
}

// ValueEncoder writes Kafka values, one event each, in a single pass: the
// record is written once into a reused scratch buffer (its size is known
// only then), and the value (request, resource and scope headers, then the
// record) is copied into an arena of large chunks that are never reused, so
// a request of 500 events costs a few allocations instead of 500 and no
// counting pass. The values stay valid as long as they are referenced.
// A ValueEncoder is not safe for concurrent use.
type ValueEncoder struct {
	scratch []byte
	arena   []byte
	// chunks are the arena chunks in use (chunks[used-1] is arena's);
	// those past used are free for reuse after Reuse.
	chunks [][]byte
	used   int
	// ChunkSize is the arena's allocation unit (default 256 KiB).
	ChunkSize int
	// res is the resource (tenant, service name and instance, host) of
	// the last event, as copies (an event's strings may pin a request
	// body); resEnc its encoded attributes, reused while consecutive events
	// share it, as they mostly do.
	res    [4]string
	resEnc []byte
	resOK  bool
}

// Reset forgets the arena (values already returned stay valid: they are
// never overwritten), e.g. before the encoder is pooled while the values
// may still be referenced.
func (enc *ValueEncoder) Reset() { enc.arena, enc.chunks, enc.used = nil, nil, 0 }

// Reuse makes the arena's chunks available to later Encode calls, which
// overwrite the values returned so far: call it only when none of them is
// referenced any more (e.g. Kafka acknowledged every record).
func (enc *ValueEncoder) Reuse() {
	enc.used, enc.arena = 0, nil
	kept := 0
	for i, c := range enc.chunks {
		if kept += cap(c); kept > maxKeptArena {
			clear(enc.chunks[i:])
			enc.chunks = enc.chunks[:i]
			break
		}
	}
}

// maxKeptArena bounds the arena bytes an encoder keeps for reuse.
const maxKeptArena = 4 << 20

// chunk makes room for n more bytes in the arena.
func (enc *ValueEncoder) chunk(n int) {
	size := enc.ChunkSize
	if size <= 0 {
		size = 256 << 10
	}
	for enc.used < len(enc.chunks) {
		c := enc.chunks[enc.used]
		enc.used++
		if cap(c) >= n {
			enc.arena = c[:0]
			return
		}
	}
	enc.arena = make([]byte, 0, max(size, n))
	if len(enc.chunks) < 64 {
		enc.chunks = append(enc.chunks, enc.arena)
		enc.used = len(enc.chunks)
	}
}

// Encode returns the Kafka value of e: the same bytes as
// Marshal([]Event{*e}).
func (enc *ValueEncoder) Encode(e *Event) []byte { return enc.EncodeAppend(nil, e, 0) }

// EncodeAppend returns prev extended by the value of e when prev is the
// last value this encoder returned (since the last Reset or Reuse) and
// the two fit in maxLen bytes; otherwise (prev nil, maxLen exceeded, or
// prev in an earlier arena chunk) it returns e's value alone, and prev is
// unchanged. An extended value is one ExportLogsServiceRequest holding
// both: the request's only field is its repeated resource_logs, so two
// encoded requests concatenated are the request with the records of both
// (the producer's one Kafka record per agent and request). The caller
// tells which happened by the returned length.
func (enc *ValueEncoder) EncodeAppend(prev []byte, e *Event, maxLen int) []byte {
	if enc.scratch == nil {
		enc.scratch = make([]byte, 4096)
	}
	w := pbWriter{b: enc.scratch, grow: true}
	encodeRecord(&w, e)
	enc.scratch = w.b
	rec := w.b[:w.off]

	res := enc.resource(e)
	sl := len(scopeField) + lenField(2, len(rec))
	rl := lenField(1, len(res)) + lenField(2, sl)
	total := lenField(1, rl)

	extend := len(prev) > 0 && len(prev)+total <= maxLen && enc.endsWith(prev) &&
		cap(enc.arena)-len(enc.arena) >= total
	if !extend && cap(enc.arena)-len(enc.arena) < total {
		enc.chunk(total)
	}
	start := len(enc.arena)
	out := pbWriter{b: enc.arena[:start+total], off: start}
	out.tag(1, wtBytes) // resource_logs
	out.varint(uint64(rl))
	out.tag(1, wtBytes) // resource
	out.varint(uint64(len(res)))
	out.off += copy(out.b[out.off:], res)
	out.tag(2, wtBytes) // scope_logs
	out.varint(uint64(sl))
	out.off += copy(out.b[out.off:], scopeField)
	out.tag(2, wtBytes) // log_records
	out.varint(uint64(len(rec)))
	out.off += copy(out.b[out.off:], rec)
	enc.arena = out.b[:out.off]
	if extend {
		start -= len(prev)
	}
	return out.b[start:out.off:out.off]
}

// resource returns the encoded resource attributes of e.
func (enc *ValueEncoder) resource(e *Event) []byte {
	if r := [4]string{e.Tenant, e.ServiceName, e.ServiceInstance, e.HostName}; !enc.resOK || r != enc.res {
		w := pbWriter{b: enc.resEnc[:cap(enc.resEnc)], grow: true}
		resourceAttrs(&w, e)
		enc.resEnc = w.b[:w.off]
		for i := range r {
			enc.res[i] = strings.Clone(r[i])
		}
		enc.resOK = true
	}
	return enc.resEnc
}

// endsWith reports whether v is the tail of the current arena chunk.
func (enc *ValueEncoder) endsWith(v []byte) bool {
	n := len(enc.arena)
	return n >= len(v) && &enc.arena[n-len(v)] == &v[0]
}
