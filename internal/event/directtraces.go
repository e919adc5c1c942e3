package event

import (
	"sync"
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
	if !p.admit(body, p, o.Limits) {
		return Batch{}, 0, false
	}
	b = p.mapRecords(o, func(m *mapper, res *resInfo, _ []rawKV, i int32) { m.span(p, res, &p.spans[i]) })
	return b, p.n, true
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

type rawSpanRec struct {
	scope         string
	tid           [16]byte
	sid, psid     [8]byte
	name          string
	kind          int32
	start, end    uint64
	statusCode    int32
	statusMsg     string
	attrs, events span32 // into kvs, evs
}

type rawEvent struct {
	name  string
	attrs span32
}

// rawTraces is the parsed request; pooled, so a request of 500 spans
// allocates only its one string copy.
type rawTraces struct {
	walker
	spans []rawSpanRec
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
	p.reset()
	p.spans, p.evs = p.spans[:0], p.evs[:0]
	rawPool.Put(p)
}

func (p *rawTraces) count() int { return len(p.spans) }

// record reads a span.
func (p *rawTraces) record(b []byte, scope string) bool {
	// Filled in place: copying the record in would cost write barriers.
	var ok bool
	if p.spans, ok = grow(&p.walker, p.spans); !ok {
		return false
	}
	p.spans = append(p.spans, rawSpanRec{})
	sp := &p.spans[len(p.spans)-1]
	sp.scope = scope
	sp.attrs.lo = int32(len(p.kvs))
	var evBufs [8][]byte
	evs := evBufs[:0]
	f := fields(b)
	for {
		// Attributes are most of a span's fields: read them here without
		// next when the length is one or two bytes.
		if f.pos < len(b) && b[f.pos] == 9<<3|wireLen {
			if l, q := len2(b, f.pos+1); l >= 0 && q+l <= len(b) {
				f.pos = q + l
				if key, str, ok := strKeyValue(b[q:f.pos]); ok {
					if !p.addStrKV(key, str) { // keyValue's fast path, one call less
						return false
					}
				} else if !p.keyValue(b[q:f.pos]) {
					return false
				}
				continue
			}
		}
		if !f.next() {
			break
		}
		switch f.num {
		case 1, 2, 3, 4, 5, 9, 11, 13, 15: // length-delimited
			if f.wt != wireLen {
				return false
			}
			ok := true
			switch f.num {
			case 1:
				ok = rdID(sp.tid[:], f.v)
			case 2:
				ok = rdID(sp.sid[:], f.v)
			case 4:
				ok = rdID(sp.psid[:], f.v)
			case 5:
				sp.name = p.sub(f.v)
			case 9:
				ok = p.keyValue(f.v)
			case 11:
				if evs, ok = grow(&p.walker, evs); !ok {
					return false
				}
				evs = append(evs, f.v) // read after the span's attributes
			case 13:
				ok = p.validLink(f.v)
			case 15:
				ok = p.status(f.v, sp)
			}
			if !ok {
				return false
			}
		case 6, 10, 12, 14: // kind, dropped counts
			if f.wt != wireVarint {
				return false
			}
			if f.num == 6 {
				sp.kind = int32(f.n)
			}
		case 7, 8: // start, end
			if f.wt != wireI64 {
				return false
			}
			if f.num == 7 {
				sp.start = f.n
			} else {
				sp.end = f.n
			}
		case 16: // flags
			if f.wt != wireI32 {
				return false
			}
		}
	}
	if f.bad {
		return false
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
	f := fields(b)
	for f.next() {
		switch f.num {
		case 2:
			if f.wt != wireLen {
				return false
			}
			sp.statusMsg = p.sub(f.v)
		case 3:
			if f.wt != wireVarint {
				return false
			}
			sp.statusCode = int32(f.n)
		}
	}
	return !f.bad
}

// event appends a span event (1 time, 2 name, 3 attributes, 4 dropped).
func (p *rawTraces) event(b []byte) bool {
	ev := rawEvent{}
	lo := int32(len(p.kvs))
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if f.wt != wireI64 {
				return false
			}
		case 2, 3:
			if f.wt != wireLen || f.num == 3 && !p.keyValue(f.v) {
				return false
			}
			if f.num == 2 {
				ev.name = p.sub(f.v)
			}
		case 4:
			if f.wt != wireVarint {
				return false
			}
		}
	}
	if f.bad {
		return false
	}
	ev.attrs = span32{lo, int32(len(p.kvs))}
	var ok bool
	if p.evs, ok = grow(&p.walker, p.evs); !ok {
		return false
	}
	p.evs = append(p.evs, ev)
	return true
}

// validLink validates a Link (1 trace_id, 2 span_id, 3 trace_state,
// 4 attributes, 5 dropped, 6 flags) without keeping it.
func (p *rawTraces) validLink(b []byte) bool {
	var id [16]byte
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1, 2, 3, 4:
			if f.wt != wireLen || f.num == 1 && !rdID(id[:], f.v) || f.num == 2 && !rdID(id[:8], f.v) ||
				f.num == 4 && !p.validKV(f.v) {
				return false
			}
		case 5:
			if f.wt != wireVarint {
				return false
			}
		case 6:
			if f.wt != wireI32 {
				return false
			}
		}
	}
	return !f.bad
}
