package event

import (
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// LogsFromProto is TracesFromProto for an OTLP ExportLogsServiceRequest,
// the only mapping of logs (FromLogs maps pdata's encoding with it).
// ok=false (nothing mapped) as for TracesFromProto; records is the
// request's log record count.
func LogsFromProto(body []byte, o MapOptions) (b Batch, records int, ok bool) {
	return LogsFromProtoString(string(body), o)
}

// LogsFromProtoString is LogsFromProto for a body held as a string.
func LogsFromProtoString(body string, o MapOptions) (b Batch, records int, ok bool) {
	p := rawLogsPool.Get().(*rawLogs)
	defer p.release()
	if !p.parse(body) {
		return Batch{}, 0, false
	}
	m := newMapper(o)
	m.b.Events = getEvents(len(p.recs))
	for ri := range p.lres {
		r := &p.lres[ri]
		resAttrs := p.kvs[r.attrs.lo:r.attrs.hi]
		res := m.resource(resAttrs)
		for li := r.recs.lo; li < r.recs.hi; li++ {
			m.log(p, &res, resAttrs, &p.recs[li])
		}
	}
	m.propagate()
	return m.b, len(p.recs), true
}

type rawLogRec struct {
	time, observed uint64
	severity       int32
	eventName      string
	body           rawVal
	attrs          span32
	tid            [16]byte
	sid            [8]byte
}

type rawLogRes struct {
	attrs span32
	recs  span32
}

// rawLogs is a parsed logs request; it reuses rawTraces' KeyValue and
// value readers (kvs) and string slicing.
type rawLogs struct {
	rawTraces
	lres []rawLogRes
	recs []rawLogRec
	keys []string // scratch for hashing attributes in key order
}

var rawLogsPool = sync.Pool{New: func() any { return new(rawLogs) }}

func (p *rawLogs) release() {
	if cap(p.kvs) > 1<<16 || cap(p.recs) > 1<<14 {
		*p = rawLogs{}
	}
	clear(p.kvs)
	clear(p.recs)
	p.full, p.str = nil, ""
	p.kvs, p.lres, p.recs, p.keys = p.kvs[:0], p.lres[:0], p.recs[:0], p.keys[:0]
	rawLogsPool.Put(p)
}

func (p *rawLogs) parse(s string) bool {
	body := unsafe.Slice(unsafe.StringData(s), len(s))
	p.str, p.full = s, body
	for pos := 0; pos < len(body); {
		num, wt, np, ok := rdTag(body, pos)
		if !ok {
			return false
		}
		pos = np
		if num == 1 {
			var v []byte
			if wt != wireLen {
				return false
			}
			if v, pos, ok = rdLen(body, pos); !ok || !p.resourceLogs(v) {
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

func (p *rawLogs) resourceLogs(b []byte) bool {
	r := rawLogRes{attrs: span32{int32(len(p.kvs)), 0}, recs: span32{int32(len(p.recs)), 0}}
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
			// 1000, the deprecated instrumentation_library_logs: decoded
			// by pdata (it must be valid), not mapped.
			nrecs, nkvs := len(p.recs), len(p.kvs)
			if !p.scopeLogs(v) {
				return false
			}
			if num == 1000 {
				p.recs, p.kvs = p.recs[:nrecs], p.kvs[:nkvs]
			}
			continue
		}
		pos, _ = skip(b, pos, wt)
	}
	r.recs.hi = int32(len(p.recs))
	p.lres = append(p.lres, r)
	return true
}

func (p *rawLogs) scopeLogs(b []byte) bool {
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
			switch num {
			case 1:
				if _, ok = p.scope(v, ""); !ok {
					return false
				}
			case 2:
				if !p.logRecord(v) {
					return false
				}
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	return true
}

func (p *rawLogs) logRecord(b []byte) bool {
	p.recs = append(p.recs, rawLogRec{})
	lr := &p.recs[len(p.recs)-1]
	lr.body.typ = pcommon.ValueTypeEmpty
	lr.attrs.lo = int32(len(p.kvs))
	seenBody := false
	// Attributes are collected first in kvs; a body may come in between.
	for pos := 0; pos < len(b); {
		num, wt, np, ok := rdTag(b, pos)
		if !ok {
			return false
		}
		pos = np
		switch num {
		case 1, 11: // fixed64
			if wt != wireI64 {
				return false
			}
			var n uint64
			if n, pos, ok = rdFixed64(b, pos); !ok {
				return false
			}
			if num == 1 {
				lr.time = n
			} else {
				lr.observed = n
			}
		case 2, 7: // varints
			if wt != wireVarint {
				return false
			}
			var n uint64
			if n, pos, ok = rdVarint(b, pos); !ok {
				return false
			}
			if num == 2 {
				lr.severity = int32(n)
			}
		case 8: // flags, fixed32
			if wt != wireI32 {
				return false
			}
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		case 3, 5, 6, 9, 10, 12: // length-delimited
			if wt != wireLen {
				return false
			}
			var v []byte
			if v, pos, ok = rdLen(b, pos); !ok {
				return false
			}
			switch num {
			case 5:
				if seenBody || !p.anyValue(v, &lr.body) {
					return false
				}
				seenBody = true
			case 6:
				if !p.keyValue(v) {
					return false
				}
			case 9:
				switch len(v) {
				case 0:
					lr.tid = [16]byte{}
				case 16:
					copy(lr.tid[:], v)
				default:
					return false
				}
			case 10:
				switch len(v) {
				case 0:
					lr.sid = [8]byte{}
				case 8:
					copy(lr.sid[:], v)
				default:
					return false
				}
			case 12:
				lr.eventName = p.strOf(v)
			}
		default:
			if pos, ok = skip(b, pos, wt); !ok {
				return false
			}
		}
	}
	lr.attrs.hi = int32(len(p.kvs))
	return true
}
