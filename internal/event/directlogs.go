package event

import (
	"sync"

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
	if !p.admit(body, p, o.Limits) {
		return Batch{}, 0, false
	}
	b = p.mapRecords(o, func(m *mapper, res *resInfo, resAttrs []rawKV, i int32) { m.log(p, res, resAttrs, &p.recs[i]) })
	return b, p.n, true
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

// rawLogs is a parsed logs request.
type rawLogs struct {
	walker
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
	p.reset()
	p.recs, p.keys = p.recs[:0], p.keys[:0]
	rawLogsPool.Put(p)
}

func (p *rawLogs) count() int { return len(p.recs) }

// record reads a log record (its scope is not used).
func (p *rawLogs) record(b []byte, _ string) bool {
	var ok bool
	if p.recs, ok = grow(&p.walker, p.recs); !ok {
		return false
	}
	p.recs = append(p.recs, rawLogRec{})
	lr := &p.recs[len(p.recs)-1]
	lr.body.typ = pcommon.ValueTypeEmpty
	lr.attrs.lo = int32(len(p.kvs))
	seenBody := false
	// Attributes are collected in kvs; a body in between keeps none there.
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1, 11: // time, observed time
			if f.wt != wireI64 {
				return false
			}
			if f.num == 1 {
				lr.time = f.n
			} else {
				lr.observed = f.n
			}
		case 2, 7: // severity, dropped count
			if f.wt != wireVarint {
				return false
			}
			if f.num == 2 {
				lr.severity = int32(f.n)
			}
		case 8: // flags
			if f.wt != wireI32 {
				return false
			}
		case 3, 5, 6, 9, 10, 12: // length-delimited
			if f.wt != wireLen {
				return false
			}
			ok := true
			switch f.num {
			case 5:
				ok = !seenBody && p.anyValue(f.v, &lr.body)
				seenBody = true
			case 6:
				ok = p.keyValue(f.v)
			case 9:
				ok = rdID(lr.tid[:], f.v)
			case 10:
				ok = rdID(lr.sid[:], f.v)
			case 12:
				lr.eventName = p.sub(f.v)
			}
			if !ok {
				return false
			}
		}
	}
	if f.bad {
		return false
	}
	lr.attrs.hi = int32(len(p.kvs))
	return true
}
