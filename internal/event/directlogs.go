package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sort"
	"strconv"
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// LogsFromProto is TracesFromProto for an OTLP ExportLogsServiceRequest:
// FromLogs of the decoded request, without pdata. ok=false (nothing
// mapped) for whatever it does not handle exactly as pdata; records is
// the request's log record count. It mirrors mapper.log and logEventID of
// mapping.go and values.go (TestDirectLogsMatchPdata, FuzzDirectLogs).
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
		res := m.rawResource(resAttrs)
		for li := r.recs.lo; li < r.recs.hi; li++ {
			m.rawLog(p, &res, resAttrs, &p.recs[li])
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
			if !p.scopeLogs(v) {
				return false
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

// rawHashValue is hashValue.
func rawHashValue(h hash.Hash, v *rawVal, depth int) {
	switch v.typ {
	case pcommon.ValueTypeStr, pcommon.ValueTypeInt:
		h.Write([]byte{byte(v.typ)})
		if depth > maxValueDepth {
			return
		}
		hashString(h, v.str())
	default:
		hashValue(h, v.pv(), depth)
	}
}

// rawHashMap is hashMap over kvs (a key's first value, for every key in
// sorted order, duplicates included, as pcommon.Map.Get and Range give).
func (p *rawLogs) rawHashMap(h hash.Hash, kvs []rawKV, depth int) {
	keys := p.keys[:0]
	for i := range kvs {
		keys = append(keys, kvs[i].key)
	}
	sort.Strings(keys)
	h.Write([]byte{'{'})
	for _, k := range keys {
		v, _ := getRaw(kvs, k)
		hashString(h, k)
		rawHashValue(h, v, depth+1)
	}
	h.Write([]byte{'}'})
	p.keys = keys[:0]
}

// rawLogEventID is logEventID.
func (p *rawLogs) rawLogEventID(lr *rawLogRec, resAttrs []rawKV) string {
	h := sha256.New()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], lr.time)
	h.Write(buf[:])
	h.Write(lr.tid[:])
	h.Write(lr.sid[:])
	binary.BigEndian.PutUint64(buf[:], uint64(int64(lr.severity)))
	h.Write(buf[:])
	hashString(h, lr.eventName)
	rawHashValue(h, &lr.body, 0)
	p.rawHashMap(h, p.kvs[lr.attrs.lo:lr.attrs.hi], 0)
	p.rawHashMap(h, resAttrs, 0)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return hex.EncodeToString(sum[:16])
}

// rawLog is mapper.log.
func (m *mapper) rawLog(p *rawLogs, res *resInfo, resAttrs []rawKV, lr *rawLogRec) {
	attrs := p.kvs[lr.attrs.lo:lr.attrs.hi]
	name := lr.eventName
	if name == "" {
		if v, ok := getRaw(attrs, "event.name"); ok {
			name = v.Str()
		}
	}
	if name != LogEventAudit && name != LogEventToolsSnapshot {
		m.drop(DropNotMCP)
		return
	}
	e := Event{
		EventID:         p.rawLogEventID(lr, resAttrs),
		Tenant:          res.tenant,
		Kind:            KindMessage,
		Source:          SourceLog,
		ServiceName:     res.serviceName,
		ServiceInstance: res.serviceInstance,
		HostName:        res.hostName,
		IngestedAt:      m.o.ReceivedAt,
		Outcome:         OutcomeOK,
	}
	switch {
	case lr.time != 0:
		e.Time = pcommon.Timestamp(lr.time).AsTime().UTC()
	case lr.observed != 0:
		e.Time = pcommon.Timestamp(lr.observed).AsTime().UTC()
	default:
		e.Time = m.o.ReceivedAt
	}
	if lr.tid != [16]byte{} {
		e.TraceID = hex.EncodeToString(lr.tid[:])
	}
	if lr.sid != [8]byte{} {
		e.SpanID = hex.EncodeToString(lr.sid[:])
	}
	var s scratch
	m.rawApplyAttrs(&e, &s, attrs)
	e.Observer = s.observer
	if e.Observer == "" {
		e.Observer = res.observer
	}
	if e.Observer == "" {
		e.Observer = ObserverUnknown
	}
	m.finishSession(&e)

	if name == LogEventToolsSnapshot {
		var d toolDef
		switch lr.body.typ {
		case pcommon.ValueTypeStr, pcommon.ValueTypeMap:
			d = toolDefFromBody(lr.body.pv())
		}
		if e.ToolName != "" {
			d.Name = e.ToolName
		}
		if e.ToolDescription != "" {
			d.Description, d.hasDescription = e.ToolDescription, true
		}
		if e.ToolInputSchema != "" {
			d.InputSchema = e.ToolInputSchema
		}
		if e.ToolAnnotations != "" {
			d.Annotations = e.ToolAnnotations
		}
		if d.Name == "" {
			m.drop(DropToolDefNoName)
			return
		}
		e.Kind = KindToolDefinition
		if e.Method == "" {
			e.Method = "tools/list"
		}
		e.ToolName = d.Name
		d.fill(&e)
		m.b.Events = append(m.b.Events, e)
		return
	}

	if e.StatusCode == 0 && e.ErrorType != "" {
		if n, err := strconv.ParseInt(e.ErrorType, 10, 32); err == nil {
			e.StatusCode = int32(n)
		}
	}
	if e.ErrorType != "" && e.ErrorType != "tool_error" {
		e.Outcome = OutcomeError
	}
	if plog.SeverityNumber(lr.severity) >= plog.SeverityNumberError && e.Outcome == OutcomeOK && e.ErrorType != "" {
		e.Outcome = OutcomeError
	}
	m.finishOutcome(&e, &s)
	if e.Method == "" {
		if e.ToolName != "" {
			e.Method = "tools/call"
		} else {
			m.drop(DropNotMCP)
			return
		}
	}
	var defs []toolDef
	if s.toolDefs != "" {
		parsed, ok := parseToolDefinitions(s.toolDefs)
		if !ok {
			m.drop(DropInvalidToolDefs)
		}
		defs = parsed
	}
	m.b.Events = append(m.b.Events, e)
	m.emitToolDefs(&e, defs)
}
